"""The default deployment's routing with its real classifier, as a new user meets it.

The classifier is trained exactly as ``midtier run`` trains it (``bot_configs/nlu``), the
routes are ``bot_configs/routing.yaml``, and the conversation is the one README.md's
Quickstart tells people to try.
"""

from __future__ import annotations

import pytest
from support.readme import quickstart_conversation
from support.server import DEFAULT_CONFIG

from connector.config import load_config
from connector.routing.decision import RouteDecision
from connector.routing.nlu import TierClassifier, train_or_load
from connector.routing.policy import Router
from connector.sessions import Leg, MidTierSession

# What people answer when the disputes bot asks "Which merchant is the charge from?" and
# "How much was the charge?". Each must reach the bot, not another provider.
ANSWERS = [
    "Amazon",
    "the coffee shop on Main St",
    "Coffee Corp",
    "Netflix",
    "Starbucks",
    "Uber Eats",
    "PayPal",
    "it was at Walmart",
    "a hotel in Paris",
    "Shell gas station",
    "$42.50",
    "42.50",
    "about $100",
    "$2,500",
    "yesterday",
]
# What must reach a person even while the disputes bot waits for one of those answers.
FOR_A_PERSON = [
    ("someone used my card without my permission", "reported fraud"),
    ("I think my account has been hacked", "reported fraud"),
    ("I lost my card", "reported a lost or stolen card"),
    ("my card was stolen", "reported a lost or stolen card"),
    ("I want to speak to a person", "asked for a person"),
    ("talk to a human", "asked for a person"),
]


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> TierClassifier:
    files = load_config(DEFAULT_CONFIG).nlu_files
    trained, _ = train_or_load(files, tmp_path_factory.mktemp("nlu-cache"))
    return trained


@pytest.fixture(scope="module")
def router() -> Router:
    return Router(load_config(DEFAULT_CONFIG).routing)


def _with(session: MidTierSession, provider: str, *, waiting: bool = False) -> MidTierSession:
    if session.legs:
        session.legs[-1].closed_at = session.legs[-1].opened_at
    leg = Leg(
        channel="webchat",
        channel_conversation_id="c1",
        provider=provider,
        provider_conversation_id=f"{provider}-1",
    )
    leg.data["expecting_input"] = waiting
    session.legs.append(leg)
    return session


def _decide(
    router: Router, classifier: TierClassifier, session: MidTierSession, text: str
) -> RouteDecision:
    return router.decide(session, classifier.classify(text))


def test_the_readme_conversation_reaches_the_desk(
    router: Router, classifier: TierClassifier
) -> None:
    balance, dispute, fraud = quickstart_conversation()
    session = MidTierSession(user_id="u1", channel="webchat", channel_conversation_id="c1")
    first = _decide(router, classifier, session, balance)
    assert (first.action, first.provider, first.intent) == ("open", "faq", "check_balance")
    second = _decide(router, classifier, _with(session, "faq"), dispute)
    assert (second.action, second.provider) == ("switch", "disputes")
    assert second.summary == "asked about a dispute"
    # The disputes bot now asks which merchant; the user reports fraud instead.
    third = _decide(router, classifier, _with(session, "disputes", waiting=True), fraud)
    assert (third.action, third.provider, third.intent) == ("switch", "agents", "report_fraud")
    assert third.confidence < router.config.interrupt_confidence  # the global bar is not met
    assert third.summary == "reported fraud"
    assert third.reason == "agents serves report_fraud; disputes does not"


@pytest.mark.parametrize("answer", ANSWERS)
def test_answers_to_the_disputes_bot_stay_with_it(
    router: Router, classifier: TierClassifier, answer: str
) -> None:
    session = _with(
        MidTierSession(user_id="u1", channel="webchat", channel_conversation_id="c1"),
        "disputes",
        waiting=True,
    )
    decision = _decide(router, classifier, session, answer)
    assert (decision.action, decision.provider) == ("stay", "disputes"), decision


@pytest.mark.parametrize(("text", "summary"), FOR_A_PERSON)
def test_what_must_reach_a_person_interrupts_the_disputes_bot(
    router: Router, classifier: TierClassifier, text: str, summary: str
) -> None:
    session = _with(
        MidTierSession(user_id="u1", channel="webchat", channel_conversation_id="c1"),
        "disputes",
        waiting=True,
    )
    decision = _decide(router, classifier, session, text)
    assert (decision.action, decision.provider, decision.summary) == ("switch", "agents", summary)


def test_the_shipped_routes_need_less_to_interrupt_for_a_person_than_for_a_bot(
    router: Router,
) -> None:
    assert router.interrupt_needed("agents") < router.interrupt_needed("faq")
    assert router.interrupt_needed("faq") == router.interrupt_needed("disputes") == 0.8

"""The next best action of routing.yaml: per intent or per confidence band, stay, switch,
ask the user to choose between the top candidates' providers, or escalate; and when it
leaves the rules' decision alone."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError
from support.server import DEFAULT_CONFIG

from connector.config import Route, RoutingConfig, load_config
from connector.errors import ConfigErrors
from connector.interfaces import IntentResult
from connector.routing.config import NextBest
from connector.routing.policy import Router
from connector.sessions import Leg, MidTierSession

RANKING = [
    ("fees", 0.55),
    ("dispute_charge", 0.25),
    ("transfer_limits", 0.1),
    ("talk_to_human", 0.05),
]


def _router(**nba: object) -> Router:
    config = RoutingConfig(
        fallback="agents",
        min_confidence=0.3,
        routes={
            "faq": Route(intents=["fees", "transfer_limits", "greet"]),
            "disputes": Route(intents=["dispute_charge"]),
            "agents": Route(intents=["talk_to_human", "report_fraud"], sticky=True),
        },
        next_best_action=NextBest.model_validate(nba),
    )
    return Router(config)


def _session(provider: str | None = None, *, waiting: bool = False) -> MidTierSession:
    session = MidTierSession(user_id="u1", channel="webchat", channel_conversation_id="c1")
    if provider:
        leg = Leg(channel="webchat", channel_conversation_id="c1", provider=provider,
                  provider_conversation_id="p1")  # fmt: skip
        leg.data["expecting_input"] = waiting
        session.legs.append(leg)
    return session


def _intent(name: str = "fees", confidence: float = 0.55) -> IntentResult:
    return IntentResult(name=name, confidence=confidence, ranking=RANKING)


def test_a_band_asks_between_the_providers_of_the_top_intents() -> None:
    router = _router(by_confidence=[{"below": 0.6, "action": "ask"}], titles={"fees": "Our fees"})
    decision = router.decide(_session(), _intent())
    assert (decision.action, decision.provider) == ("ask", None)
    # One choice per provider, best first: transfer_limits is faq's again and is left out.
    assert [(c.intent, c.provider, c.title) for c in decision.choices] == [
        ("fees", "faq", "Our fees"),
        ("dispute_charge", "disputes", "Dispute charge"),
        ("talk_to_human", "agents", "Talk to human"),
    ]
    assert decision.reason == (
        "confidence 0.55 under 0.60: asked the user to choose between fees (faq), "
        "dispute_charge (disputes), talk_to_human (agents)"
    )


def test_max_choices_caps_the_question_and_a_confident_message_is_not_asked() -> None:
    router = _router(by_confidence=[{"below": 0.6, "action": "ask"}], max_choices=2)
    assert [c.provider for c in router.decide(_session(), _intent()).choices] == ["faq", "disputes"]
    confident = router.decide(_session(), _intent(confidence=0.9))
    assert (confident.action, confident.provider) == ("open", "faq")


def test_with_one_provider_among_the_candidates_nobody_is_asked() -> None:
    router = _router(by_confidence=[{"below": 0.6, "action": "ask"}])
    alone = IntentResult(name="fees", confidence=0.5, ranking=[("fees", 0.5), ("greet", 0.3)])
    decision = router.decide(_session(), alone)
    assert (decision.action, decision.provider) == ("open", "faq")
    assert decision.reason.endswith("confidence 0.50 under 0.60: not asked, one provider serves it")


def test_an_intent_may_escalate_to_a_person_at_once() -> None:
    router = _router(by_intent={"dispute_charge": "escalate"})
    decision = router.decide(_session("faq"), _intent("dispute_charge", 0.9))
    assert (decision.action, decision.provider, decision.previous) == ("escalate", "agents", "faq")
    assert decision.reason == "next best action for dispute_charge: escalate to agents"


def test_escalate_to_names_another_provider_than_the_fallback() -> None:
    router = _router(by_confidence=[{"below": 0.4, "action": "escalate"}], escalate_to="disputes")
    decision = router.decide(_session("faq"), _intent("fees", 0.35))
    assert (decision.action, decision.provider, decision.next_best) == (
        "escalate",
        "disputes",
        "agents",
    )


def test_stay_keeps_the_current_provider_where_the_rules_would_switch() -> None:
    router = _router(by_intent={"dispute_charge": "stay"})
    decision = router.decide(_session("faq"), _intent("dispute_charge", 0.9))
    assert (decision.action, decision.provider) == ("stay", "faq")
    assert decision.reason.startswith("next best action for dispute_charge: stay with faq ")
    assert "the rules: switch to disputes" in decision.reason
    # Without a provider to stay with, the rules' decision stands.
    assert router.decide(_session(), _intent("dispute_charge", 0.9)).provider == "disputes"


def test_switch_leaves_the_rules_decision_as_it_is() -> None:
    plain = _router().decide(_session("faq"), _intent("dispute_charge", 0.9))
    decided = _router(by_intent={"dispute_charge": "switch"}).decide(
        _session("faq"), _intent("dispute_charge", 0.9)
    )
    assert decided.model_dump(exclude={"at"}) == plain.model_dump(exclude={"at"})


@pytest.mark.parametrize(
    ("session", "intent", "chosen"),
    [
        (_session("agents"), _intent(), False),  # a person keeps the conversation
        (_session("disputes", waiting=True), _intent(), False),  # the answer to its question
        (_session(), IntentResult(name=None, confidence=0.2, out_of_scope=True), False),
        (_session(), _intent(), True),  # the user chose this intent when asked
    ],
    ids=["sticky", "waiting", "out-of-scope", "chosen"],
)
def test_it_never_overrides_a_person_a_question_an_unknown_message_or_a_choice(
    session: MidTierSession, intent: IntentResult, chosen: bool
) -> None:
    nba = {"by_confidence": [{"below": 1.0, "action": "ask"}]}
    plain = _router().decide(session, intent)
    decided = _router(**nba).decide(session, intent, chosen=chosen)
    assert decided.model_dump(exclude={"at"}) == plain.model_dump(exclude={"at"})


def test_bands_out_of_order_are_refused() -> None:
    with pytest.raises(ValidationError) as info:
        NextBest.model_validate(
            {
                "by_confidence": [
                    {"below": 0.6, "action": "ask"},
                    {"below": 0.3, "action": "escalate"},
                ]
            }
        )
    assert "bands must go up by 'below'" in str(info.value)
    with pytest.raises(ValidationError):
        NextBest.model_validate({"by_intent": {"fees": "shout"}})


def test_an_unknown_escalation_provider_is_named_with_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG, config, ignore=shutil.ignore_patterns("__pycache__"))
    with (config / "routing.yaml").open("a") as routing:
        routing.write("next_best_action: {escalate_to: nobody}\n")
    with pytest.raises(ConfigErrors) as info:
        load_config(config)
    assert [str(e) for e in info.value.errors] == [
        "routing.yaml: next_best_action.escalate_to: 'nobody' is not a provider in providers.yaml"
    ]

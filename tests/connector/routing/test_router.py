"""Routing rules: stay, switch, fallback, conditions, sticky providers."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from connector.config import Route, RoutingConfig
from connector.interfaces import IntentResult
from connector.routing.policy import Router
from connector.sessions import Leg, MidTierSession


def _config(**routes: Route) -> RoutingConfig:
    return RoutingConfig(
        min_confidence=0.5,
        fallback="agents",
        default="faq",
        routes=routes
        or {
            "faq": Route(intents=["greet", "check_balance", "card_*"]),
            "disputes": Route(intents=["dispute_charge"], min_confidence=0.7),
            "disputes_backup": Route(intents=["dispute_charge"]),
            "agents": Route(intents=["report_fraud"], sticky=True),
        },
    )


def _session(provider: str | None = None, channel: str = "webchat") -> MidTierSession:
    session = MidTierSession(user_id="u1", channel=channel, channel_conversation_id="c1")
    if provider:
        session.legs.append(
            Leg(
                channel=channel,
                channel_conversation_id="c1",
                provider=provider,
                provider_conversation_id="p1",
            )
        )
    return session


def _intent(name: str | None, confidence: float = 0.9, oos: bool = False) -> IntentResult:
    return IntentResult(name=name, confidence=confidence, out_of_scope=oos)


def test_new_conversation_opens_with_the_provider_serving_the_intent() -> None:
    decision = Router(_config()).decide(_session(), _intent("check_balance"))
    assert (decision.action, decision.provider) == ("open", "faq")
    assert decision.previous is None


def test_glob_patterns_match_intents() -> None:
    router = Router(_config())
    assert router.providers_for("card_activation") == ["faq"]
    assert router.providers_for("unknown") == []


def test_stays_while_current_provider_serves_the_intent() -> None:
    decision = Router(_config()).decide(_session("faq"), _intent("greet"))
    assert (decision.action, decision.provider) == ("stay", "faq")


def test_switches_when_current_provider_cannot_serve() -> None:
    decision = Router(_config()).decide(_session("faq"), _intent("dispute_charge", 0.95))
    assert (decision.action, decision.provider, decision.previous) == ("switch", "disputes", "faq")
    assert decision.next_best == "disputes_backup"
    assert [c.provider for c in decision.alternatives] == ["disputes", "disputes_backup"]


def test_route_minimum_confidence_skips_to_next_candidate() -> None:
    decision = Router(_config()).decide(_session("faq"), _intent("dispute_charge", 0.6))
    assert decision.provider == "disputes_backup"
    rejected = decision.alternatives[0]
    assert rejected.provider == "disputes" and not rejected.eligible
    assert "below its minimum" in rejected.reason


def test_low_confidence_keeps_current_provider() -> None:
    decision = Router(_config()).decide(_session("disputes"), _intent("check_balance", 0.3))
    assert (decision.action, decision.provider) == ("stay", "disputes")
    assert "below" in decision.reason


def test_out_of_scope_in_a_new_conversation_goes_to_fallback() -> None:
    decision = Router(_config()).decide(_session(), _intent(None, 0.1, oos=True))
    assert (decision.action, decision.provider) == ("fallback", "agents")


def test_low_confidence_new_conversation_goes_to_default() -> None:
    decision = Router(_config()).decide(_session(), _intent("greet", 0.3))
    assert (decision.action, decision.provider) == ("open", "faq")
    assert decision.next_best == "agents"


def test_sticky_provider_keeps_the_conversation() -> None:
    decision = Router(_config()).decide(_session("agents"), _intent("check_balance", 0.99))
    assert (decision.action, decision.provider) == ("stay", "agents")


def test_intent_nobody_serves_goes_to_fallback() -> None:
    decision = Router(_config()).decide(_session("faq"), _intent("book_flight", 0.99))
    assert (decision.action, decision.provider) == ("fallback", "agents")


def test_unhealthy_and_full_providers_are_skipped() -> None:
    loads = {"disputes_backup": 3}
    config = _config(
        faq=Route(intents=["greet"]),
        disputes=Route(intents=["dispute_charge"]),
        disputes_backup=Route(intents=["dispute_charge"], max_open_legs=3),
        agents=Route(intents=[], sticky=True),
    )
    router = Router(
        config,
        unavailable=lambda name: "unhealthy" if name == "disputes" else None,
        open_legs=loads,
    )
    decision = router.decide(_session("faq"), _intent("dispute_charge"))
    assert decision.provider == "agents"
    reasons = {c.provider: c.reason for c in decision.alternatives}
    assert reasons == {
        "disputes": "unhealthy",
        "disputes_backup": "at capacity (3 open conversations)",
    }
    loads["disputes_backup"] = 2
    assert router.decide(_session("faq"), _intent("dispute_charge")).provider == "disputes_backup"


def test_channel_condition() -> None:
    config = _config(
        faq=Route(intents=["greet"], channels=["sms"]),
        agents=Route(intents=["greet"]),
    )
    decision = Router(config).decide(_session(channel="webchat"), _intent("greet"))
    assert decision.provider == "agents"
    assert "does not serve channel 'webchat'" in decision.alternatives[0].reason


def test_a_provider_waiting_for_an_answer_is_not_interrupted_lightly() -> None:
    session = _session("disputes")
    session.legs[-1].data["expecting_input"] = True
    router = Router(_config())
    waiting = router.decide(session, _intent("check_balance", 0.7))
    assert (waiting.action, waiting.provider) == ("stay", "disputes")
    assert "waiting for an answer" in waiting.reason
    sure = router.decide(session, _intent("check_balance", 0.95))
    assert (sure.action, sure.provider) == ("switch", "faq")


def _waiting(provider: str = "disputes") -> MidTierSession:
    session = _session(provider)
    session.legs[-1].data["expecting_input"] = True
    return session


def _interrupting(**agents: object) -> RoutingConfig:
    return RoutingConfig(
        min_confidence=0.45,
        interrupt_confidence=0.8,
        fallback="agents",
        default="faq",
        routes={
            "faq": Route(intents=["check_balance"]),
            "disputes": Route(intents=["dispute_charge"]),
            "agents": Route.model_validate(
                {"intents": ["report_fraud", "talk_to_human"], "sticky": True, **agents}
            ),
        },
    )


def test_a_route_with_its_own_interrupt_confidence_takes_over_a_waiting_bot() -> None:
    router = Router(_interrupting(interrupt_confidence=0.5))
    fraud = router.decide(_waiting(), _intent("report_fraud", 0.74))
    assert (fraud.action, fraud.provider, fraud.previous) == ("switch", "agents", "disputes")
    # the global threshold still holds for the other routes
    balance = router.decide(_waiting(), _intent("check_balance", 0.74))
    assert (balance.action, balance.provider) == ("stay", "disputes")
    # and the route's own threshold is a floor too
    unsure = router.decide(_waiting(), _intent("report_fraud", 0.49))
    assert (unsure.action, unsure.provider) == ("stay", "disputes")
    [candidate] = unsure.alternatives
    assert not candidate.eligible
    assert candidate.reason == (
        "confidence 0.49 below 0.50 to interrupt disputes, which is waiting for an answer"
    )


def test_without_a_route_setting_the_global_interrupt_confidence_applies() -> None:
    router = Router(_interrupting())
    assert router.interrupt_needed("agents") == 0.8
    stays = router.decide(_waiting(), _intent("report_fraud", 0.74))
    assert (stays.action, stays.provider) == ("stay", "disputes")
    assert "waiting for an answer" in stays.reason
    assert router.decide(_waiting(), _intent("report_fraud", 0.85)).provider == "agents"


def test_a_route_may_demand_more_than_the_global_interrupt_confidence() -> None:
    router = Router(_interrupting(interrupt_confidence=0.95))
    assert router.decide(_waiting(), _intent("report_fraud", 0.9)).provider == "disputes"
    assert router.decide(_waiting(), _intent("report_fraud", 0.96)).provider == "agents"


def test_interrupt_confidence_only_matters_while_a_bot_waits() -> None:
    router = Router(_interrupting(interrupt_confidence=0.95))
    decision = router.decide(_session("disputes"), _intent("report_fraud", 0.6))
    assert (decision.action, decision.provider) == ("switch", "agents")


def test_an_interrupt_below_the_route_minimum_is_refused_with_its_key() -> None:
    with pytest.raises(ValidationError) as info:
        _interrupting(interrupt_confidence=0.3)
    [error] = info.value.errors()
    assert error["loc"] == ("routes", "agents", "interrupt_confidence")
    assert "below the minimum confidence 0.45" in error["msg"]
    with pytest.raises(ValidationError):
        _interrupting(interrupt_confidence=1.5)


def test_decisions_carry_a_summary_for_people_and_the_detail_behind_it() -> None:
    config = _interrupting(interrupt_confidence=0.5)
    config.labels = {"report_fraud": "reported fraud", "out_of_scope": "nobody could help"}
    router = Router(config)
    fraud = router.decide(_waiting(), _intent("report_fraud", 0.74))
    assert fraud.summary == "reported fraud"
    assert fraud.reason == "agents serves report_fraud; disputes does not"
    # no label: a phrase from the intent's name
    assert router.decide(_session(), _intent("talk_to_human")).summary == (
        "asked about talk to human"
    )
    assert router.decide(_session(), _intent(None, 0.1, oos=True)).summary == "nobody could help"
    answer = router.decide(_waiting(), _intent("check_balance", 0.6))
    assert answer.summary == "answered the question disputes asked"
    assert router.decide(_session("disputes"), _intent(None, 0.1, oos=True)).summary == (
        "carried on with disputes"
    )


def test_out_of_scope_reads_plainly_without_labels() -> None:
    decision = Router(_config()).decide(_session(), _intent(None, 0.1, oos=True))
    assert decision.summary == "the assistant could not help with this"
    assert decision.reason == "out of scope; new conversation"

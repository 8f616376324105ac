"""Conditions say which conversations a provider takes, not which it keeps: a provider
keeps the conversation it has after its hours, at its capacity (one of its open legs is this
conversation's) and, for the intent it was opened for, below its minimum success rate. A new
intent still needs the provider's success rate for it."""

from __future__ import annotations

from datetime import UTC, datetime

from connector.config import RoutingConfig
from connector.interfaces import IntentResult
from connector.routing.explain import explain, new_session
from connector.routing.policy import Router
from connector.sessions import LEG_INTENT, Leg, MidTierSession

TUESDAY_NIGHT = datetime(2026, 12, 1, 22, 0, tzinfo=UTC)  # 23:00 in Berlin
HOURS = {"timezone": "Europe/Berlin", "open": {"mon-fri": ["09:00-18:00"]}}


def _config(**faq: object) -> RoutingConfig:
    return RoutingConfig.model_validate(
        {
            "fallback": "agents",
            "routes": {
                "faq": {"intents": ["greet", "fees"], **faq},
                "agents": {"intents": [], "sticky": True},
            },
            "success_rate": {"min_outcomes": 10},
        }
    )


def _with_faq(opened_for: str = "greet") -> MidTierSession:
    session = MidTierSession(user_id="u1", channel="webchat", channel_conversation_id="c1")
    leg = Leg(channel="webchat", channel_conversation_id="c1", provider="faq")
    leg.data[LEG_INTENT] = opened_for
    session.legs.append(leg)
    return session


def _intent(name: str) -> IntentResult:
    return IntentResult(name=name, confidence=0.9)


def test_a_provider_at_capacity_keeps_its_conversations_and_takes_no_new_one() -> None:
    router = Router(_config(max_open_legs=1), open_legs={"faq": 1})
    kept = router.decide(_with_faq(), _intent("greet"))
    assert (kept.action, kept.provider) == ("stay", "faq")
    new = router.decide(new_session("webchat"), _intent("greet"))
    assert new.provider == "agents"
    assert new.alternatives[0].reason == "at capacity (1 open conversations)"


def test_a_provider_after_its_hours_keeps_its_conversations_and_takes_no_new_one() -> None:
    router = Router(_config(hours=HOURS), clock=lambda: TUESDAY_NIGHT)
    assert router.decide(_with_faq(), _intent("fees")).provider == "faq"
    new = router.decide(new_session("webchat"), _intent("fees"))
    assert new.provider == "agents"
    assert new.alternatives[0].reason.startswith("outside its hours at Tue 23:00")


def test_below_its_success_rate_it_keeps_its_intent_but_not_a_new_one() -> None:
    router = Router(_config(min_success_rate=0.5), success=lambda _p, _i: (1, 10))
    assert router.decide(_with_faq("greet"), _intent("greet")).provider == "faq"
    moved = router.decide(_with_faq("greet"), _intent("fees"))
    assert (moved.action, moved.provider) == ("fallback", "agents")
    assert "success rate 10% for fees (1 of 10) below its minimum 50%" in moved.reason


def test_explain_says_the_provider_keeps_what_it_has() -> None:
    router = Router(
        _config(max_open_legs=1, hours=HOURS),
        open_legs={"faq": 1},
        clock=lambda: TUESDAY_NIGHT,
    )
    found = explain(router, _intent("greet"), _with_faq(), "hello", stored=True, at=TUESDAY_NIGHT)
    [faq] = [r for r in found["routes"] if r["provider"] == "faq"]
    details = {c["name"]: (c["holds"], c["detail"]) for c in faq["conditions"]}
    assert details["capacity"] == (True, "1 of 1 open conversations, this one among them")
    assert details["hours"][0] is True
    assert details["hours"][1].endswith("; keeps the conversation it has")
    assert faq["eligible"] is True

"""The success-rate condition: a route's ``min_success_rate`` for the message's intent,
measured from outcomes over ``success_rate``'s window (``connector.outcomes``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from support.clock import FakeClock

from connector.config import Route, RoutingConfig
from connector.interfaces import IntentResult
from connector.outcomes import SuccessRates
from connector.records import Changes, OutcomeEntry
from connector.routing.explain import explain, new_session
from connector.routing.policy import Router
from connector.sessions import Leg, MidTierSession
from connector.store import MemoryStore


def _config(min_outcomes: int = 10, window_h: float = 24.0) -> RoutingConfig:
    return RoutingConfig(
        fallback="agents",
        routes={
            "refunds_bot": Route(intents=["refund", "hours"], min_success_rate=0.6),
            "faq": Route(intents=["refund", "hours"]),
            "agents": Route(intents=[], sticky=True),
        },
        success_rate={"window_h": window_h, "min_outcomes": min_outcomes},
    )


def _measured(**counts: tuple[int, int]) -> Callable[[str, str], tuple[int, int]]:
    """(successes, outcomes) per ``provider__intent``."""

    def rate(provider: str, intent: str) -> tuple[int, int]:
        return counts.get(f"{provider}__{intent}", (0, 0))

    return rate


def _intent(name: str, confidence: float = 0.9) -> IntentResult:
    return IntentResult(name=name, confidence=confidence)


def _with(provider: str) -> MidTierSession:
    session = MidTierSession(user_id="u1", channel="webchat", channel_conversation_id="c1")
    session.legs.append(
        Leg(channel="webchat", channel_conversation_id="c1", provider=provider, data={})
    )
    return session


def test_a_provider_below_its_minimum_is_passed_by_for_the_next() -> None:
    router = Router(_config(), success=_measured(refunds_bot__refund=(5, 10)))
    decision = router.decide(new_session("webchat"), _intent("refund"))
    assert decision.provider == "faq"
    reasons = {c.provider: c.reason for c in decision.alternatives}
    assert reasons["refunds_bot"] == ("success rate 50% for refund (5 of 10) below its minimum 60%")


def test_a_provider_at_its_minimum_takes_it() -> None:
    router = Router(_config(), success=_measured(refunds_bot__refund=(6, 10)))
    assert router.decide(new_session("webchat"), _intent("refund")).provider == "refunds_bot"


def test_too_few_outcomes_to_judge_hold() -> None:
    router = Router(_config(min_outcomes=20), success=_measured(refunds_bot__refund=(0, 19)))
    assert router.decide(new_session("webchat"), _intent("refund")).provider == "refunds_bot"
    [condition] = [
        c
        for c in router.conditions("refunds_bot", 0.9, "webchat", "refund")
        if c.name == "success_rate"
    ]
    assert condition.holds
    assert condition.detail == "19 outcome(s) for refund, fewer than the 20 needed to judge"


def test_the_rate_is_the_intents_own() -> None:
    router = Router(
        _config(), success=_measured(refunds_bot__refund=(1, 10), refunds_bot__hours=(9, 10))
    )
    assert router.decide(new_session("webchat"), _intent("refund")).provider == "faq"
    assert router.decide(new_session("webchat"), _intent("hours")).provider == "refunds_bot"


def test_the_current_provider_below_its_minimum_loses_the_conversation() -> None:
    router = Router(_config(), success=_measured(refunds_bot__refund=(2, 10)))
    decision = router.decide(_with("refunds_bot"), _intent("refund"))
    assert (decision.action, decision.provider) == ("switch", "faq")


def test_a_route_without_a_minimum_checks_no_rate() -> None:
    router = Router(_config(), success=_measured(faq__refund=(0, 100)))
    names = [c.name for c in router.conditions("faq", 0.9, "webchat", "refund")]
    assert "success_rate" not in names


def test_explain_shows_the_condition() -> None:
    router = Router(_config(), success=_measured(refunds_bot__refund=(3, 10)))
    session = new_session("webchat")
    found = explain(router, _intent("refund"), session, "refund me", stored=False, at=FakeClock()())
    [row] = [r for r in found["routes"] if r["provider"] == "refunds_bot"]
    assert {
        "name": "success_rate",
        "holds": False,
        "detail": ("success rate 30% for refund (3 of 10) below its minimum 60%"),
    } in row["conditions"]
    assert row["eligible"] is False


def _outcome(leg: str, success: bool, intent: str = "refund") -> OutcomeEntry:
    kind = "resolved" if success else "handed_off"
    return OutcomeEntry(
        leg_id=leg,
        session_id="s",
        provider="refunds_bot",
        intent=intent,
        kind=kind,
        success=success,
    )


async def test_rates_count_the_window_the_config_names() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    session, _ = await store.find_or_create("webchat", "c1", "u1")

    async def keep(*outcomes: OutcomeEntry) -> None:
        current = await store.get(session.id)
        assert current is not None
        stamped = [o.model_copy(update={"at": clock()}) for o in outcomes]
        await store.commit(
            Changes(session=current, expected_version=current.version, outcomes=stamped)
        )

    config = _config(window_h=24.0)
    rates = SuccessRates(store, lambda: config, clock=clock)
    await keep(_outcome("l1", False), _outcome("l2", False))
    clock.advance(timedelta(hours=20).total_seconds())
    await keep(_outcome("l3", True), _outcome("l4", True, intent="hours"))
    await rates.refresh()
    assert rates("refunds_bot", "refund") == (1, 3)
    assert rates("refunds_bot", "hours") == (1, 1)
    assert rates("faq", "refund") == (0, 0)
    clock.advance(timedelta(hours=5).total_seconds())  # the first two leave the window
    await rates.refresh()
    assert rates("refunds_bot", "refund") == (1, 1)
    config = _config(window_h=48.0)  # a reload widens it
    await rates.refresh()
    assert rates("refunds_bot", "refund") == (1, 3)

"""The provider pool alone: every call within its deadline, errors translated once, and
circuits, health and open legs kept. Nothing else of the core is built."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from support.doubles import RecordingProvider, make_config

from connector.activity import Activity, HandoffEventNames
from connector.config import Route
from connector.errors import ProviderError, ProviderTimeout
from connector.pool import ProviderPool
from connector.provider_protocol import HandoffContext
from connector.sessions import Leg, MidTierSession


class Buggy(RecordingProvider):
    """A provider with a bug: it raises what no provider should."""

    async def deliver(self, leg: Leg, activity: Activity) -> list[Activity]:
        raise KeyError("oops")

    async def health(self) -> bool:
        raise RuntimeError("probe crashed")


def _pool(tmp_path: Path, **providers: RecordingProvider) -> ProviderPool:
    routes = {name: Route(intents=[name]) for name in providers}
    config = make_config(tmp_path, list(providers), routes)  # timeout_s 0.5 each
    return ProviderPool(config, providers)


def _leg(provider: str) -> Leg:
    return Leg(
        channel="test",
        channel_conversation_id="c1",
        provider=provider,
        provider_conversation_id=f"{provider}-1",
    )


def _message(text: str = "hi") -> Activity:
    return Activity(type="message", text=text)


async def test_a_provider_that_hangs_is_cut_off_at_its_deadline(tmp_path: Path) -> None:
    slow = RecordingProvider("slow")
    slow.hang = asyncio.Event()  # never set
    pool = _pool(tmp_path, slow=slow)
    with pytest.raises(ProviderTimeout, match=r"no answer to message within 0\.5s"):
        await pool.deliver(_leg("slow"), _message())


async def test_whatever_a_provider_raises_becomes_a_provider_error(tmp_path: Path) -> None:
    pool = _pool(tmp_path, buggy=Buggy("buggy"))
    with pytest.raises(ProviderError, match=r"failed on message \(KeyError\)") as caught:
        await pool.deliver(_leg("buggy"), _message())
    assert not isinstance(caught.value, ProviderTimeout)
    assert caught.value.provider == "buggy"


async def test_failures_open_the_circuit_and_an_answered_message_closes_it(
    tmp_path: Path,
) -> None:
    bot = RecordingProvider("bot")
    pool = _pool(tmp_path, bot=bot)
    bot.fail_deliver = True
    for _ in range(pool.breakers.failures):
        with pytest.raises(ProviderError):
            await pool.deliver(_leg("bot"), _message())
    assert pool.unavailable("bot") == "circuit open after repeated failures"
    pool.breakers.clock = lambda: 1e12  # the cooldown is over: half-open
    bot.fail_deliver = False
    assert await pool.deliver(_leg("bot"), _message("again")) != []
    assert pool.breakers.state("bot") == "closed"
    assert pool.unavailable("bot") is None


async def test_a_failed_open_counts_against_the_circuit(tmp_path: Path) -> None:
    bot = RecordingProvider("bot")
    bot.fail_open = True
    pool = _pool(tmp_path, bot=bot)
    session = MidTierSession(user_id="u", channel="test", channel_conversation_id="c1")
    context = HandoffContext(session_id=session.id, user_id="u", channel="test", reason="r")
    for _ in range(pool.breakers.failures):
        with pytest.raises(ProviderError, match="cannot open"):
            await pool.open("bot", session, _leg("bot"), context)
    assert pool.breakers.state("bot") == "open"


async def test_calls_nobody_waits_on_are_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pool = _pool(tmp_path, buggy=Buggy("buggy"))
    with caplog.at_level(logging.WARNING, "midtier.pool"):
        await pool.status(_leg("buggy"), "accepted")
    assert "handoff.status to buggy failed" in caplog.text


async def test_a_status_reaches_the_provider_as_a_handoff_status_event(tmp_path: Path) -> None:
    bot = RecordingProvider("bot")
    pool = _pool(tmp_path, bot=bot)
    await pool.status(_leg("bot"), "completed", "done")
    [event] = bot.events(HandoffEventNames.STATUS)
    assert event.value == {"state": "completed", "message": "done"}


async def test_a_probe_that_raises_or_says_no_marks_the_provider_unhealthy(
    tmp_path: Path,
) -> None:
    fine, down = RecordingProvider("fine"), RecordingProvider("down")
    down.healthy = False
    pool = _pool(tmp_path, fine=fine, down=down, buggy=Buggy("buggy"))
    await pool.probe()
    assert pool.healthy == {"fine": True, "down": False, "buggy": False}
    assert pool.unavailable("buggy") == "unhealthy (health check failed)"


async def test_open_legs_are_counted_per_provider(tmp_path: Path) -> None:
    pool = _pool(tmp_path, a=RecordingProvider("a"), b=RecordingProvider("b"))
    pool.leg_opened("a", None)
    pool.leg_opened("b", "a")
    pool.leg_closed("a")  # never below zero
    assert dict(pool.open_legs) == {"a": 0, "b": 1}


async def test_an_unknown_provider_is_a_provider_error(tmp_path: Path) -> None:
    pool = _pool(tmp_path, a=RecordingProvider("a"))
    with pytest.raises(ProviderError, match="is not configured"):
        await pool.deliver(_leg("ghost"), _message())

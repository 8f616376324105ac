"""The :class:`~connector.store_protocol.SessionMap` contract, second half: what is asked of
many sessions at once (listing, expiry, counts and queues by open leg, idle pages). Every
backend must pass it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from connector.errors import ConflictError
from connector.sessions import MidTierSession
from connector.store_protocol import SessionMap
from tests.connector.store.contract import FakeClock, leg, with_leg

PART = SessionMap


async def on_provider(
    store: SessionMap, conversation: str, provider: str | None, *, closed: bool = False
) -> MidTierSession:
    """A saved session of webchat ``conversation`` with an open leg of ``provider`` (none
    if None), closed if asked."""
    session, _ = await store.find_or_create("webchat", conversation, "u-1")
    if provider is not None:
        session.legs.append(leg(provider, f"{provider}-{conversation}", conversation))
    session.status = "closed" if closed else "active"
    return await store.save(session)


async def test_list_sessions_filters_by_status_and_current_provider_newest_first(
    store: SessionMap, clock: FakeClock
) -> None:
    on_bot = await with_leg(store, "bot", "b-1")
    on_desk, _ = await store.find_or_create("webchat", "c-2", "u-2")
    on_desk.legs.append(leg("desk", "d-1", "c-2"))
    on_desk = await store.save(on_desk)
    closed, _ = await store.find_or_create("webchat", "c-3", "u-3")
    closed.status = "closed"
    closed = await store.save(closed)
    # a session whose only leg is closed has no current provider
    left, _ = await store.find_or_create("webchat", "c-4", "u-4")
    gone = leg("bot", "b-2", "c-4")
    gone.closed_at = clock()
    left.legs.append(gone)
    left = await store.save(left)

    def ids(sessions: list[MidTierSession]) -> list[str]:
        return [s.id for s in sessions]

    assert ids(await store.list_sessions()) == [left.id, closed.id, on_desk.id, on_bot.id]
    assert ids(await store.list_sessions(limit=2)) == [left.id, closed.id]
    assert ids(await store.list_sessions(status="active")) == [left.id, on_desk.id, on_bot.id]
    assert ids(await store.list_sessions(status="closed")) == [closed.id]
    assert ids(await store.list_sessions(provider="bot")) == [on_bot.id]
    assert ids(await store.list_sessions(status="active", provider="desk")) == [on_desk.id]
    assert await store.list_sessions(status="closed", provider="desk") == []


async def test_expire_closes_idle_sessions_and_their_open_leg(
    store: SessionMap, clock: FakeClock
) -> None:
    idle = await with_leg(store, "bot", "b-1")
    clock.advance(600)
    busy, _ = await store.find_or_create("webchat", "c-2", "u-2")
    assert await store.expire(clock() - timedelta(seconds=300)) == 1
    expired = await store.get(idle.id)
    assert expired is not None
    assert expired.status == "closed" and expired.version == idle.version + 1
    assert expired.current_leg is None
    assert expired.legs[-1].close_reason == "expired"
    assert expired.legs[-1].closed_at is not None
    still = await store.get(busy.id)
    assert still is not None and still.status == "active"
    with pytest.raises(ConflictError):
        await store.save(idle)  # the pre-expiry copy is stale
    assert await store.expire(clock() - timedelta(seconds=300)) == 0
    _, created = await store.find_or_create("webchat", "c-1", "u-1")
    assert created


async def test_expire_leaves_a_leg_closed_before_as_it_was(
    store: SessionMap, clock: FakeClock
) -> None:
    session = await with_leg(store, "bot", "b-1")
    ended = clock()
    session.legs[-1].closed_at = ended
    session.legs[-1].close_reason = "hand_back"
    await store.save(session)
    clock.advance(600)
    assert await store.expire(clock()) == 1
    expired = await store.get(session.id)
    assert expired is not None and expired.status == "closed"
    assert (expired.legs[-1].close_reason, expired.legs[-1].closed_at) == ("hand_back", ended)


async def test_open_leg_counts_are_active_sessions_per_provider_of_their_open_leg(
    store: SessionMap, clock: FakeClock
) -> None:
    assert await store.open_leg_counts() == {}
    await on_provider(store, "c-1", "bot")
    await on_provider(store, "c-2", "bot")
    await on_provider(store, "c-3", "desk")
    await on_provider(store, "c-4", None)  # no leg yet
    await on_provider(store, "c-5", "bot", closed=True)  # closed with its leg left open
    left = await on_provider(store, "c-6", "bot")
    left.legs[-1].closed_at = clock()  # its only leg closed: no current provider
    await store.save(left)
    switched = await on_provider(store, "c-7", "bot")
    switched.legs[-1].closed_at = clock()
    switched.legs.append(leg("desk", "d-7", "c-7"))
    await store.save(switched)
    assert await store.open_leg_counts() == {"bot": 2, "desk": 2}


async def test_open_conversations_map_each_open_leg_of_a_provider_to_its_session(
    store: SessionMap, clock: FakeClock
) -> None:
    assert await store.open_conversations("desk") == {}
    waiting = await on_provider(store, "c-1", "desk")
    await on_provider(store, "c-2", "bot")
    await on_provider(store, "c-3", "desk", closed=True)
    handed_back = await on_provider(store, "c-4", "desk")
    handed_back.legs[-1].closed_at = clock()
    handed_back.legs.append(leg("bot", "b-4", "c-4"))
    await store.save(handed_back)
    transferred = await on_provider(store, "c-5", "bot")
    transferred.legs[-1].closed_at = clock()
    transferred.legs.append(leg("desk", "d-5", "c-5"))
    transferred = await store.save(transferred)
    assert await store.open_conversations("desk") == {
        "desk-c-1": waiting.id,
        "d-5": transferred.id,
    }
    assert await store.open_conversations("nobody") == {}


async def test_open_conversations_forget_a_session_once_expiry_closed_it(
    store: SessionMap, clock: FakeClock
) -> None:
    idle = await on_provider(store, "c-1", "desk")
    clock.advance(600)
    busy = await on_provider(store, "c-2", "desk")
    assert await store.open_conversations("desk") == {"desk-c-1": idle.id, "desk-c-2": busy.id}
    assert await store.expire(clock() - timedelta(seconds=300)) == 1
    assert await store.open_conversations("desk") == {"desk-c-2": busy.id}
    assert await store.open_leg_counts() == {"desk": 1}


async def test_idle_sessions_are_active_ones_not_written_since_longest_idle_first(
    store: SessionMap, clock: FakeClock
) -> None:
    oldest = await on_provider(store, "c-1", "bot")
    clock.advance(10)
    older = await on_provider(store, "c-2", None)
    clock.advance(10)
    await on_provider(store, "c-3", "bot", closed=True)
    clock.advance(100)
    await on_provider(store, "c-4", "bot")
    cutoff = clock() - timedelta(seconds=50)
    assert await store.idle_sessions(cutoff) == [oldest.id, older.id]
    assert await store.idle_sessions(cutoff, limit=1) == [oldest.id]
    assert await store.idle_sessions(cutoff, limit=0) == []
    assert await store.idle_sessions(oldest.updated_at) == []  # idle since before, strictly
    fresh = await store.get(oldest.id)
    assert fresh is not None
    await store.save(fresh)  # written to now: no longer idle
    assert await store.idle_sessions(cutoff) == [older.id]
    assert await store.expire(cutoff) == 1
    assert await store.idle_sessions(cutoff) == []


async def test_idle_sessions_page_through_every_idle_session_in_idle_order(
    store: SessionMap, clock: FakeClock
) -> None:
    idle = []
    for n in range(7):
        idle.append((await on_provider(store, f"c-{n}", "bot")).id)
        clock.advance(1)
    cutoff = clock()
    await on_provider(store, "c-busy", "bot")  # written at the cutoff: not idle
    pages = []
    # A sweep writes each page it read (as expiry closes it), then asks for the next one.
    for _ in range(len(idle)):
        page = await store.idle_sessions(cutoff, limit=3)
        if not page:
            break
        pages.append(page)
        for session_id in page:
            session = await store.get(session_id)
            assert session is not None
            session.status = "closed"
            await store.save(session)
    assert pages == [idle[0:3], idle[3:6], idle[6:7]]

"""The SessionStore contract: one suite, run against every backend."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connector.errors import ConflictError, NotFound
from connector.interfaces import SessionStore
from connector.records import AuthCodeRecord, Changes, InboundEntry, InboxEntry, OutboxEntry
from connector.routing.decision import RouteDecision
from connector.sessions import Leg, MidTierSession, TranscriptEntry, new_id
from connector.store import MemoryStore, SqliteStore

BACKENDS = ["memory", "sqlite"]


class FakeClock:
    """A clock that stands still until the test advances it."""

    def __init__(self) -> None:
        self.current = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=BACKENDS)
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[SessionStore]:
    backend: SessionStore
    if request.param == "memory":
        backend = MemoryStore(clock=clock)
    else:
        backend = SqliteStore(tmp_path / "data" / "midtier.db", clock=clock)
    await backend.start()
    try:
        yield backend
    finally:
        await backend.close()


def leg(provider: str, conversation: str, channel_conversation: str = "c-1") -> Leg:
    return Leg(
        channel="webchat",
        channel_conversation_id=channel_conversation,
        provider=provider,
        provider_conversation_id=conversation,
    )


async def with_leg(store: SessionStore, provider: str, conversation: str) -> MidTierSession:
    """A new session on webchat conversation c-1 with one open leg, saved."""
    session, _ = await store.find_or_create("webchat", "c-1", "u-1")
    session.legs.append(leg(provider, conversation))
    return await store.save(session)


def outbox_entry(entry_id: str, conversation: str, at: datetime) -> OutboxEntry:
    return OutboxEntry(
        id=entry_id,
        session_id="mts_x",
        channel="webchat",
        conversation_id=conversation,
        activity={"type": "message", "text": entry_id},
        next_attempt_at=at,
    )


# --------------------------------------------------------------------------- sessions


async def test_find_or_create_creates_once_then_finds(store: SessionStore) -> None:
    first, created = await store.find_or_create("webchat", "c-1", "u-1")
    again, created_again = await store.find_or_create("webchat", "c-1", "u-1")
    assert created and not created_again
    assert again.id == first.id
    assert (first.channel, first.channel_conversation_id, first.user_id) == (
        "webchat",
        "c-1",
        "u-1",
    )
    assert first.status == "active" and first.legs == []


async def test_find_or_create_concurrent_calls_create_one_session(store: SessionStore) -> None:
    results = await asyncio.gather(
        *(store.find_or_create("webchat", "c-1", "u-1") for _ in range(20))
    )
    assert len({session.id for session, _ in results}) == 1
    assert sum(created for _, created in results) == 1


async def test_find_or_create_after_close_creates_a_new_session(store: SessionStore) -> None:
    old, _ = await store.find_or_create("webchat", "c-1", "u-1")
    old.status = "closed"
    await store.save(old)
    new, created = await store.find_or_create("webchat", "c-1", "u-1")
    assert created and new.id != old.id
    assert new.status == "active"


async def test_get_returns_stored_session_or_none(store: SessionStore) -> None:
    session, _ = await store.find_or_create("webchat", "c-1", "u-1")
    found = await store.get(session.id)
    assert found is not None and found.id == session.id
    assert await store.get("mts_unknown") is None


async def test_by_channel_returns_newest_session_even_if_closed(store: SessionStore) -> None:
    assert await store.by_channel("webchat", "c-1") is None
    old, _ = await store.find_or_create("webchat", "c-1", "u-1")
    old.status = "closed"
    await store.save(old)
    found = await store.by_channel("webchat", "c-1")
    assert found is not None and found.id == old.id and found.status == "closed"
    new, _ = await store.find_or_create("webchat", "c-1", "u-1")
    found = await store.by_channel("webchat", "c-1")
    assert found is not None and found.id == new.id
    assert await store.by_channel("slack", "c-1") is None


async def test_by_user_lists_sessions_newest_first(store: SessionStore) -> None:
    a, _ = await store.find_or_create("webchat", "c-1", "u-1")
    b, _ = await store.find_or_create("slack", "c-2", "u-1")
    await store.find_or_create("webchat", "c-3", "u-2")
    await store.save(a)  # now the most recently updated
    assert [s.id for s in await store.by_user("u-1")] == [a.id, b.id]
    assert await store.by_user("u-9") == []


async def test_save_bumps_version_and_updated_at_without_changing_argument(
    store: SessionStore, clock: FakeClock
) -> None:
    session, _ = await store.find_or_create("webchat", "c-1", "u-1")
    clock.advance(5)
    session.slots["order"] = "A-1"
    saved = await store.save(session)
    assert saved.version == session.version + 1
    assert saved.updated_at >= clock.current > session.updated_at
    stored = await store.get(session.id)
    assert stored is not None
    assert (stored.version, stored.slots) == (saved.version, {"order": "A-1"})
    assert stored.updated_at == saved.updated_at


async def test_save_of_stale_copy_raises_conflict(store: SessionStore) -> None:
    session, _ = await store.find_or_create("webchat", "c-1", "u-1")
    copy_a = await store.get(session.id)
    copy_b = await store.get(session.id)
    assert copy_a is not None and copy_b is not None
    copy_a.slots["a"] = 1
    await store.save(copy_a)
    copy_b.slots["b"] = 2
    with pytest.raises(ConflictError):
        await store.save(copy_b)
    stored = await store.get(session.id)
    assert stored is not None and stored.slots == {"a": 1}


async def test_save_inserts_a_never_stored_session_once(store: SessionStore) -> None:
    session = MidTierSession(user_id="u-1", channel="webchat", channel_conversation_id="c-1")
    saved = await store.save(session)
    assert saved.version == 1
    found, created = await store.find_or_create("webchat", "c-1", "u-1")
    assert not created and found.id == session.id
    with pytest.raises(ConflictError):
        await store.save(session)  # the same version-0 copy again


async def test_save_of_unknown_session_with_a_version_raises_conflict(
    store: SessionStore,
) -> None:
    ghost = MidTierSession(
        user_id="u-1", channel="webchat", channel_conversation_id="c-1", version=3
    )
    with pytest.raises(ConflictError):
        await store.save(ghost)
    assert await store.get(ghost.id) is None


async def test_save_of_second_active_session_for_a_conversation_raises_conflict(
    store: SessionStore,
) -> None:
    await store.find_or_create("webchat", "c-1", "u-1")
    rival = MidTierSession(user_id="u-1", channel="webchat", channel_conversation_id="c-1")
    with pytest.raises(ConflictError):
        await store.save(rival)
    assert await store.get(rival.id) is None


async def test_returned_sessions_do_not_share_state_with_the_store(store: SessionStore) -> None:
    session, _ = await store.find_or_create("webchat", "c-1", "u-1")
    session.slots["mutated"] = True
    session.legs.append(leg("bot", "b-1"))
    stored = await store.get(session.id)
    assert stored is not None and stored.slots == {} and stored.legs == []


async def test_by_provider_finds_session_by_its_leg_after_save(store: SessionStore) -> None:
    session = await with_leg(store, "bot", "b-1")
    found = await store.by_provider("bot", "b-1")
    assert found is not None and found.id == session.id
    assert await store.by_provider("bot", "b-2") is None
    assert await store.by_provider("desk", "b-1") is None


async def test_by_provider_ignores_legs_without_provider_conversation(
    store: SessionStore,
) -> None:
    await with_leg(store, "bot", "")
    assert await store.by_provider("bot", "") is None


async def test_by_provider_resolves_old_and_new_leg_after_switch(
    store: SessionStore, clock: FakeClock
) -> None:
    session = await with_leg(store, "bot", "b-1")
    old = session.legs[-1]
    old.closed_at = clock()
    old.close_reason = "switch"
    session.legs.append(leg("desk", "d-1"))
    session = await store.save(session)
    assert session.current_provider == "desk"
    for provider, conversation in [("bot", "b-1"), ("desk", "d-1")]:
        found = await store.by_provider(provider, conversation)
        assert found is not None and found.id == session.id
        assert found.current_provider == "desk"


async def test_by_provider_key_reused_by_newer_session_resolves_to_it(
    store: SessionStore,
) -> None:
    old = await with_leg(store, "bot", "shared")
    old.status = "closed"
    await store.save(old)
    new, _ = await store.find_or_create("webchat", "c-1", "u-1")
    new.legs.append(leg("bot", "shared"))
    await store.save(new)
    found = await store.by_provider("bot", "shared")
    assert found is not None and found.id == new.id


async def test_list_sessions_filters_by_status_and_current_provider_newest_first(
    store: SessionStore, clock: FakeClock
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
    store: SessionStore, clock: FakeClock
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


async def on_provider(
    store: SessionStore, conversation: str, provider: str | None, *, closed: bool = False
) -> MidTierSession:
    """A saved session of webchat ``conversation`` with an open leg of ``provider`` (none
    if None), closed if asked."""
    session, _ = await store.find_or_create("webchat", conversation, "u-1")
    if provider is not None:
        session.legs.append(leg(provider, f"{provider}-{conversation}", conversation))
    session.status = "closed" if closed else "active"
    return await store.save(session)


async def test_open_leg_counts_are_active_sessions_per_provider_of_their_open_leg(
    store: SessionStore, clock: FakeClock
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
    store: SessionStore, clock: FakeClock
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


async def test_idle_sessions_are_active_ones_not_written_since_longest_idle_first(
    store: SessionStore, clock: FakeClock
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


# --------------------------------------------------------------------------- transcript


async def test_transcript_assigns_increasing_seq_and_keeps_order(store: SessionStore) -> None:
    session, _ = await store.find_or_create("webchat", "c-1", "u-1")
    appended = [
        await store.append_transcript(session.id, TranscriptEntry(speaker="user", text=str(i)))
        for i in range(5)
    ]
    assert [e.seq for e in appended] == [1, 2, 3, 4, 5]
    entries = await store.transcript(session.id)
    assert [(e.seq, e.text) for e in entries] == [(i + 1, str(i)) for i in range(5)]
    assert [e.text for e in await store.transcript(session.id, last=2)] == ["3", "4"]
    assert len(await store.transcript(session.id, last=50)) == 5
    assert await store.transcript(session.id, last=0) == []
    assert await store.transcript("mts_unknown") == []


async def test_transcript_concurrent_appends_get_distinct_seq(store: SessionStore) -> None:
    session, _ = await store.find_or_create("webchat", "c-1", "u-1")
    appended = await asyncio.gather(
        *(
            store.append_transcript(session.id, TranscriptEntry(speaker="bot", text=str(i)))
            for i in range(20)
        )
    )
    assert sorted(e.seq for e in appended) == list(range(1, 21))
    assert [e.seq for e in await store.transcript(session.id)] == list(range(1, 21))


async def test_transcript_is_kept_per_session(store: SessionStore) -> None:
    a, _ = await store.find_or_create("webchat", "c-1", "u-1")
    b, _ = await store.find_or_create("webchat", "c-2", "u-2")
    await store.append_transcript(a.id, TranscriptEntry(speaker="user", text="a"))
    entry = await store.append_transcript(b.id, TranscriptEntry(speaker="user", text="b"))
    assert entry.seq == 1
    assert [e.text for e in await store.transcript(a.id)] == ["a"]


async def test_append_to_unknown_session_raises_not_found(store: SessionStore) -> None:
    with pytest.raises(NotFound):
        await store.append_transcript("mts_unknown", TranscriptEntry(speaker="user", text="x"))
    with pytest.raises(NotFound):
        await store.append_decision("mts_unknown", RouteDecision(action="stay", provider="bot"))


async def test_decisions_are_returned_in_order(store: SessionStore) -> None:
    session, _ = await store.find_or_create("webchat", "c-1", "u-1")
    first = RouteDecision(action="open", provider="bot", intent="greet", confidence=0.9)
    second = RouteDecision(action="switch", provider="desk", previous="bot", reason="agent")
    await store.append_decision(session.id, first)
    await store.append_decision(session.id, second)
    assert await store.decisions(session.id) == [first, second]
    assert await store.decisions("mts_unknown") == []


# --------------------------------------------------------------------------- dedupe, codes


async def test_seen_reports_a_key_until_its_ttl_passes(
    store: SessionStore, clock: FakeClock
) -> None:
    assert await store.seen("in:webchat:m1", 60) is False
    assert await store.seen("in:webchat:m1", 60) is True
    assert await store.seen("in:webchat:m2", 60) is False
    clock.advance(59)
    assert await store.seen("in:webchat:m1", 60) is True
    clock.advance(1)
    assert await store.seen("in:webchat:m1", 60) is False  # expired: recorded afresh
    assert await store.seen("in:webchat:m1", 60) is True


async def test_seen_concurrent_calls_report_new_once(store: SessionStore) -> None:
    results = await asyncio.gather(*(store.seen("k", 60) for _ in range(10)))
    assert results.count(False) == 1


async def test_code_can_be_taken_once(store: SessionStore, clock: FakeClock) -> None:
    record = AuthCodeRecord(
        session_id="mts_x", provider="desk", expires_at=clock() + timedelta(seconds=60)
    )
    await store.put_code("hash-1", record)
    assert await store.take_code("hash-1") == record
    assert await store.take_code("hash-1") is None
    assert await store.take_code("hash-unknown") is None


async def test_expired_code_is_returned_until_expire_drops_it(
    store: SessionStore, clock: FakeClock
) -> None:
    for code in ("hash-1", "hash-2"):
        await store.put_code(
            code, AuthCodeRecord(session_id="mts_x", provider="desk", expires_at=clock())
        )
    clock.advance(1)
    taken = await store.take_code("hash-1")
    assert taken is not None and taken.expires_at < clock()  # the caller checks expiry
    await store.expire(clock())
    assert await store.take_code("hash-2") is None


# --------------------------------------------------------------------------- outbox


async def test_outbox_pending_in_put_order_and_put_is_idempotent(
    store: SessionStore, clock: FakeClock
) -> None:
    put = [
        outbox_entry(entry_id, "c-1", clock() - timedelta(seconds=i))
        for i, entry_id in enumerate(["o-3", "o-1", "o-2"])
    ]
    for entry in put:
        await store.outbox_put(entry)
    await store.outbox_put(outbox_entry("o-9", "c-2", clock()))
    await store.outbox_put(outbox_entry("o-1", "c-1", clock()))  # again: ignored
    pending = await store.outbox_pending("webchat", "c-1")
    assert pending == put
    assert await store.outbox_pending("slack", "c-1") == []


async def test_outbox_due_orders_by_next_attempt_then_put_order(
    store: SessionStore, clock: FakeClock
) -> None:
    t = clock()
    await store.outbox_put(outbox_entry("late", "c-1", t + timedelta(seconds=30)))
    await store.outbox_put(outbox_entry("b", "c-1", t))
    await store.outbox_put(outbox_entry("a", "c-2", t - timedelta(seconds=5)))
    await store.outbox_put(outbox_entry("c", "c-1", t))
    assert [e.id for e in await store.outbox_due(t)] == ["a", "b", "c"]
    assert [e.id for e in await store.outbox_due(t, limit=2)] == ["a", "b"]
    assert [e.id for e in await store.outbox_due(t + timedelta(minutes=1))] == [
        "a",
        "b",
        "c",
        "late",
    ]


async def test_outbox_retry_counts_attempt_and_reschedules(
    store: SessionStore, clock: FakeClock
) -> None:
    t = clock()
    await store.outbox_put(outbox_entry("o-1", "c-1", t))
    await store.outbox_put(outbox_entry("o-2", "c-1", t))
    later = t + timedelta(seconds=10)
    await store.outbox_retry("o-1", later, "503 from platform")
    await store.outbox_retry("o-unknown", later, "ignored")
    assert [e.id for e in await store.outbox_due(t)] == ["o-2"]
    assert [e.id for e in await store.outbox_due(later)] == ["o-2", "o-1"]
    retried = (await store.outbox_pending("webchat", "c-1"))[0]
    assert (retried.id, retried.attempts, retried.last_error) == ("o-1", 1, "503 from platform")
    assert retried.next_attempt_at == later
    await store.outbox_retry("o-1", later, "again")
    again = (await store.outbox_pending("webchat", "c-1"))[0]
    assert (again.attempts, again.last_error) == (2, "again")


async def test_outbox_heads_are_each_conversations_oldest_entry_when_it_is_due(
    store: SessionStore, clock: FakeClock
) -> None:
    t = clock()
    await store.outbox_put(outbox_entry("c1-head", "c-1", t))
    await store.outbox_put(outbox_entry("c1-next", "c-1", t - timedelta(seconds=9)))
    await store.outbox_put(outbox_entry("c2-head", "c-2", t - timedelta(seconds=5)))
    await store.outbox_put(outbox_entry("c3-head", "c-3", t + timedelta(seconds=30)))
    await store.outbox_put(outbox_entry("c3-next", "c-3", t))
    # An entry behind another is never a head, however early it is due.
    assert [e.id for e in await store.outbox_heads(t)] == ["c2-head", "c1-head"]
    assert [e.id for e in await store.outbox_heads(t, limit=1)] == ["c2-head"]
    later = t + timedelta(minutes=1)
    assert [e.id for e in await store.outbox_heads(later)] == ["c2-head", "c1-head", "c3-head"]
    await store.outbox_done("c1-head")
    await store.outbox_retry("c2-head", t + timedelta(seconds=10), "503")
    assert [e.id for e in await store.outbox_heads(t)] == ["c1-next"]
    heads = await store.outbox_heads(later)
    assert [e.id for e in heads] == ["c1-next", "c2-head", "c3-head"]
    assert (heads[1].attempts, heads[1].last_error) == (1, "503")


async def test_outbox_done_removes_the_entry(store: SessionStore, clock: FakeClock) -> None:
    await store.outbox_put(outbox_entry("o-1", "c-1", clock()))
    await store.outbox_put(outbox_entry("o-2", "c-1", clock()))
    await store.outbox_done("o-1")
    await store.outbox_done("o-unknown")
    assert [e.id for e in await store.outbox_pending("webchat", "c-1")] == ["o-2"]
    assert [e.id for e in await store.outbox_due(clock())] == ["o-2"]


# --------------------------------------------------------------------------- ids


async def test_session_ids_are_unguessable(store: SessionStore) -> None:
    sessions = [(await store.find_or_create("webchat", f"c-{i}", "u-1"))[0] for i in range(20)]
    ids = {s.id for s in sessions}
    assert len(ids) == 20
    for session_id in [*ids, new_id("leg")]:
        prefix, _, token = session_id.partition("_")
        assert prefix in ("mts", "leg")
        assert re.fullmatch(r"[A-Za-z0-9_-]+", token)
        assert len(token) * 6 >= 128  # base64url: 6 bits a character


async def test_inbox_keeps_callbacks_in_put_order_until_done(store: SessionStore) -> None:
    def entry(entry_id: str, conversation: str) -> InboxEntry:
        return InboxEntry(
            id=entry_id,
            provider="remote",
            conversation=conversation,
            activities=[{"type": "message", "text": entry_id}],
            action={"action": "hand_back", "reason": "done"} if entry_id == "i-3" else None,
        )

    for entry_id, conversation in [("i-2", "c-1"), ("i-1", "c-2"), ("i-3", "c-1")]:
        await store.inbox_put(entry(entry_id, conversation))
    await store.inbox_put(entry("i-2", "c-1"))  # again: ignored
    pending = await store.inbox_pending("remote", "c-1")
    assert [e.id for e in pending] == ["i-2", "i-3"]
    assert pending[1].action == {"action": "hand_back", "reason": "done"}
    assert pending[0].activities == [{"type": "message", "text": "i-2"}]
    assert await store.inbox_pending("other", "c-1") == []
    assert await store.inbox_keys() == [("remote", "c-1"), ("remote", "c-2")]
    await store.inbox_done("i-2")
    await store.inbox_done("nope")  # unknown ids are ignored
    assert [e.id for e in await store.inbox_pending("remote", "c-1")] == ["i-3"]
    await store.inbox_done("i-3")
    assert await store.inbox_keys() == [("remote", "c-2")]


# ---------------------------------------------------------------------- durable inbound


def arrival(
    text: str, ref: str | None = None, conversation: str = "c-1", **fields: object
) -> InboundEntry:
    return InboundEntry(
        id=new_id("in"),
        channel="webchat",
        conversation=conversation,
        user_id="u-1",
        activity={"type": "message", "text": text},
        ref=ref,
        dedupe_key=f"in:webchat:{conversation}:{ref}" if ref else None,
        **fields,  # type: ignore[arg-type]
    )


async def test_inbound_put_records_the_message_its_session_and_its_transcript_line(
    store: SessionStore,
) -> None:
    recorded = await store.inbound_put(
        arrival("hi", "m1", channel_state={"resume": "hash"}), ttl_seconds=60
    )
    assert recorded is not None and recorded.session_id
    session = await store.get(recorded.session_id)
    assert session is not None and session.channel_conversation_id == "c-1"
    assert session.user_id == "u-1" and session.channel_state == {"resume": "hash"}
    [line] = await store.transcript(session.id)
    assert (line.speaker, line.text, line.ref) == ("user", "hi", "m1")
    assert [e.id for e in await store.inbound_pending("webchat", "c-1")] == [recorded.id]
    again = await store.inbound_put(arrival("ho", "m2"), ttl_seconds=60)
    assert again is not None and again.session_id == session.id  # the same active session
    assert (await store.get(session.id)).channel_state == {"resume": "hash"}  # type: ignore[union-attr]


async def test_inbound_put_of_a_repeated_key_writes_nothing(
    store: SessionStore, clock: FakeClock
) -> None:
    first = await store.inbound_put(arrival("hi", "m1"), ttl_seconds=60)
    assert first is not None
    assert await store.inbound_put(arrival("hi", "m1"), ttl_seconds=60) is None
    assert [e.text for e in await store.transcript(first.session_id)] == ["hi"]
    assert len(await store.inbound_pending("webchat", "c-1")) == 1
    clock.advance(61)  # the key expired: the same id is a new message again
    assert await store.inbound_put(arrival("hi", "m1"), ttl_seconds=60) is not None


async def test_inbound_without_a_key_is_never_a_duplicate(store: SessionStore) -> None:
    for _ in range(2):
        assert await store.inbound_put(arrival("hi"), ttl_seconds=60) is not None
    assert len(await store.inbound_pending("webchat", "c-1")) == 2


async def test_inbound_pending_keeps_record_order_per_conversation(store: SessionStore) -> None:
    for n in range(5):
        await store.inbound_put(arrival(f"a{n}", f"a{n}", conversation="a"), ttl_seconds=60)
        await store.inbound_put(arrival(f"b{n}", f"b{n}", conversation="b"), ttl_seconds=60)
    pending = await store.inbound_pending("webchat", "a")
    assert [e.activity["text"] for e in pending] == [f"a{n}" for n in range(5)]
    assert await store.inbound_keys() == [("webchat", "a"), ("webchat", "b")]


async def test_an_activity_that_is_not_a_message_gets_no_transcript_line(
    store: SessionStore,
) -> None:
    entry = arrival("")
    entry.activity = {"type": "conversationUpdate"}
    recorded = await store.inbound_put(entry, ttl_seconds=60)
    assert recorded is not None and await store.transcript(recorded.session_id) == []


async def test_commit_applies_a_whole_unit_of_work(store: SessionStore) -> None:
    recorded = await store.inbound_put(arrival("hi", "m1"), ttl_seconds=60)
    assert recorded is not None
    session = await store.get(recorded.session_id)
    assert session is not None
    session.legs.append(leg("faq", "faq-1"))
    out = OutboxEntry(
        id="o1", session_id=session.id, channel="webchat", conversation_id="c-1", activity={}
    )
    saved = await store.commit(
        Changes(
            session=session,
            expected_version=session.version,
            transcript=[TranscriptEntry(speaker="bot", text="hello")],
            decisions=[RouteDecision(action="open", provider="faq", message_id=recorded.id)],
            outbox=[out],
            inbound_done=[recorded.id],
        )
    )
    assert saved.version == session.version + 1 and saved.current_provider == "faq"
    assert await store.get(session.id) == saved
    assert [e.text for e in await store.transcript(session.id)] == ["hi", "hello"]
    assert [d.message_id for d in await store.decisions(session.id)] == [recorded.id]
    assert [e.id for e in await store.outbox_pending("webchat", "c-1")] == ["o1"]
    assert await store.inbound_pending("webchat", "c-1") == []
    assert (await store.by_provider("faq", "faq-1")) == saved


async def test_commit_on_a_stale_version_writes_nothing(store: SessionStore) -> None:
    recorded = await store.inbound_put(arrival("hi", "m1"), ttl_seconds=60)
    assert recorded is not None
    session = await store.get(recorded.session_id)
    assert session is not None
    await store.save(session)  # someone else moved it on
    with pytest.raises(ConflictError):
        await store.commit(
            Changes(
                session=session,
                expected_version=session.version,
                transcript=[TranscriptEntry(speaker="bot", text="hello")],
                inbound_done=[recorded.id],
            )
        )
    assert [e.text for e in await store.transcript(session.id)] == ["hi"]
    assert len(await store.inbound_pending("webchat", "c-1")) == 1


async def test_transcript_pages_go_back_from_a_seq(store: SessionStore) -> None:
    session, _ = await store.find_or_create("webchat", "c-1", "u-1")
    for n in range(1, 8):
        await store.append_transcript(session.id, TranscriptEntry(speaker="user", text=f"t{n}"))
    newest = await store.transcript(session.id, last=3)
    assert [e.seq for e in newest] == [5, 6, 7]
    older = await store.transcript(session.id, last=3, before=newest[0].seq)
    assert [e.text for e in older] == ["t2", "t3", "t4"]
    assert [e.seq for e in await store.transcript(session.id, before=3)] == [1, 2]


# --------------------------------------------------------------------------- continuation


def move(session: MidTierSession, channel: str, conversation: str, user: str) -> None:
    """Join ``session`` to another channel conversation, as a continuation does."""
    session.channel, session.channel_conversation_id, session.user_id = (
        channel,
        conversation,
        user,
    )


@pytest.mark.parametrize("how", ["save", "commit"])
async def test_a_moved_session_is_found_on_its_new_channel_conversation_only(
    store: SessionStore, how: str
) -> None:
    session, _ = await store.find_or_create("webchat", "c-1", "u-1")
    move(session, "sms", "+15550001", "+15550001")
    if how == "save":
        moved = await store.save(session)
    else:
        moved = await store.commit(Changes(session=session, expected_version=session.version))
    found = await store.by_channel("sms", "+15550001")
    assert found is not None and found.id == session.id and found.version == moved.version
    assert await store.by_channel("webchat", "c-1") is None
    assert [s.id for s in await store.by_user("+15550001")] == [session.id]
    assert await store.by_user("u-1") == []
    arrived = arrival("hi", "m1", conversation="+15550001").model_copy(
        update={"channel": "sms", "dedupe_key": None}
    )
    recorded = await store.inbound_put(arrived, ttl_seconds=60)
    assert recorded is not None and recorded.session_id == session.id
    fresh, created = await store.find_or_create("webchat", "c-1", "u-1")
    assert created and fresh.id != session.id


async def test_moving_onto_a_conversation_with_an_active_session_raises_conflict(
    store: SessionStore,
) -> None:
    there, _ = await store.find_or_create("sms", "+15550001", "+15550001")
    session, _ = await store.find_or_create("webchat", "c-1", "u-1")
    move(session, "sms", "+15550001", "+15550001")
    with pytest.raises(ConflictError):
        await store.commit(Changes(session=session, expected_version=session.version))
    found = await store.by_channel("webchat", "c-1")
    assert found is not None and found.id == session.id  # nothing was written
    found = await store.by_channel("sms", "+15550001")
    assert found is not None and found.id == there.id


async def test_by_channel_prefers_the_active_session_to_a_newer_closed_one(
    store: SessionStore, clock: FakeClock
) -> None:
    session, _ = await store.find_or_create("webchat", "c-1", "u-1")
    clock.advance(1)
    newer, _ = await store.find_or_create("sms", "+15550001", "+15550001")
    newer.status = "closed"
    await store.save(newer)
    move(session, "sms", "+15550001", "+15550001")
    await store.save(session)
    found = await store.by_channel("sms", "+15550001")
    assert found is not None and found.id == session.id


async def test_by_identity_finds_active_sessions_whose_verified_claims_carry_it(
    store: SessionStore, clock: FakeClock
) -> None:
    phone = "phone:+16505551234"
    proved, _ = await store.find_or_create("sms", "+16505551234", "+16505551234")
    proved.claims = {"sub": "+16505551234", "verified": True, "identities": [phone]}
    await store.save(proved)
    clock.advance(1)
    claimed, _ = await store.find_or_create("webchat", "c-1", "u-1")
    claimed.claims = {"sub": "u-1", "verified": False, "identities": [phone]}
    await store.save(claimed)
    assert [s.id for s in await store.by_identity(phone)] == [proved.id]
    assert await store.by_identity("phone:+16505550000") == []

    clock.advance(1)
    other, _ = await store.find_or_create("whatsapp", "16505551234", "16505551234")
    other.claims = {"sub": "16505551234", "verified": True, "identities": [phone]}
    other = await store.save(other)
    assert [s.id for s in await store.by_identity(phone)] == [other.id, proved.id]

    other.status = "closed"
    await store.save(other)
    stored = await store.get(proved.id)
    assert stored is not None
    stored.claims = {"sub": "+16505551234", "verified": True}  # no longer proved
    await store.save(stored)
    assert await store.by_identity(phone) == []


async def test_an_expired_session_is_no_longer_found_by_identity(
    store: SessionStore, clock: FakeClock
) -> None:
    phone = "phone:+16505551234"
    session, _ = await store.find_or_create("sms", "+16505551234", "+16505551234")
    session.claims = {"sub": "+16505551234", "verified": True, "identities": [phone]}
    await store.save(session)
    clock.advance(10)
    assert await store.expire(clock()) == 1
    assert await store.by_identity(phone) == []


async def test_a_peeked_code_stays_until_taken(store: SessionStore, clock: FakeClock) -> None:
    record = AuthCodeRecord(
        session_id="mts_x", provider="", expires_at=clock() + timedelta(seconds=60)
    )
    await store.put_code("hash-1", record)
    assert await store.peek_code("hash-1") == record
    assert await store.peek_code("hash-1") == record
    assert await store.take_code("hash-1") == record
    assert await store.peek_code("hash-1") is None
    assert await store.peek_code("hash-unknown") is None

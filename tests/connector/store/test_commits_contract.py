"""The :class:`~connector.store_protocol.Commits` contract: what handling one event wrote,
applied in one transaction, or (on a stale ``expected_version``) not at all. Every backend
must pass it.

A unit of work writes into every other part (the session, its history, the outbox, and the
inbound and inbox entries it processed), so these tests read it back through them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from connector.activity import now
from connector.errors import ConflictError, RepeatedMessage
from connector.records import AuthCodeRecord, Changes, InboxEntry, OutboxEntry
from connector.routing.decision import RouteDecision
from connector.sessions import MidTierSession, TranscriptEntry
from connector.store_protocol import Commits, SessionStore
from tests.connector.store.contract import FakeClock, arrival, leg, outbox_entry

PART = Commits


def callback(entry_id: str) -> InboxEntry:
    """A provider callback on remote conversation r-1."""
    return InboxEntry(id=entry_id, provider="remote", conversation="r-1")


async def recorded_session(store: SessionStore) -> tuple[MidTierSession, str]:
    """The session of a recorded user message on webchat c-1, and the message's id."""
    recorded = await store.inbound_put(arrival("hi", "m1"), ttl_seconds=60)
    assert recorded is not None
    session = await store.get(recorded.session_id)
    assert session is not None
    return session, recorded.id


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


async def test_commit_stores_the_codes_of_the_unit_of_work_and_a_stale_one_none(
    store: SessionStore,
) -> None:
    session, _ = await recorded_session(store)
    record = AuthCodeRecord(session_id=session.id, provider="faq", expires_at=now())
    stale = record.model_copy(update={"expires_at": now() + timedelta(minutes=1)})
    changes = Changes(session=session, expected_version=session.version, codes=[("h1", record)])
    await store.commit(changes)
    with pytest.raises(ConflictError):
        await store.commit(
            Changes(session=session, expected_version=session.version, codes=[("h2", stale)])
        )
    assert await store.take_code("h1") == record
    assert await store.take_code("h1") is None  # taken once, as one put on its own
    assert await store.take_code("h2") is None


async def test_commit_drops_the_outbox_entries_it_is_done_with_and_queues_the_new_ones(
    store: SessionStore, clock: FakeClock
) -> None:
    session, _ = await recorded_session(store)
    for entry_id in ("o-1", "o-2", "o-3"):
        await store.outbox_put(outbox_entry(entry_id, "c-1", clock()))
    saved = await store.commit(
        Changes(
            session=session,
            expected_version=session.version,
            outbox=[outbox_entry("o-4", "c-1", clock())],
            outbox_done=["o-1", "o-3", "o-unknown"],
        )
    )
    assert saved.version == session.version + 1
    assert [e.id for e in await store.outbox_pending("webchat", "c-1")] == ["o-2", "o-4"]
    assert [e.id for e in await store.outbox_heads(clock())] == ["o-2"]


async def test_commit_drops_the_inbox_and_inbound_entries_it_processed_and_their_keys(
    store: SessionStore,
) -> None:
    session, message_id = await recorded_session(store)
    await store.inbox_put(callback("i-1"))
    await store.inbox_put(callback("i-2"))
    await store.commit(
        Changes(
            session=session,
            expected_version=session.version,
            inbound_done=[message_id],
            inbox_done=["i-1"],
        )
    )
    assert [e.id for e in await store.inbox_pending("remote", "r-1")] == ["i-2"]
    assert await store.inbound_keys() == []
    latest = await store.get(session.id)
    assert latest is not None
    await store.commit(Changes(session=latest, expected_version=latest.version, inbox_done=["i-2"]))
    assert await store.inbox_keys() == []


async def test_a_stale_commit_drops_no_entry_and_queues_nothing(
    store: SessionStore, clock: FakeClock
) -> None:
    session, message_id = await recorded_session(store)
    await store.outbox_put(outbox_entry("o-1", "c-1", clock()))
    await store.inbox_put(callback("i-1"))
    moved_on = await store.save(session)  # another unit of work committed first
    with pytest.raises(ConflictError):
        await store.commit(
            Changes(
                session=session,
                expected_version=session.version,
                decisions=[RouteDecision(action="stay", provider="bot", message_id=message_id)],
                outbox=[outbox_entry("o-2", "c-1", clock())],
                outbox_done=["o-1"],
                inbox_done=["i-1"],
                inbound_done=[message_id],
            )
        )
    assert [e.id for e in await store.outbox_pending("webchat", "c-1")] == ["o-1"]
    assert [e.id for e in await store.inbox_pending("remote", "r-1")] == ["i-1"]
    assert [e.id for e in await store.inbound_pending("webchat", "c-1")] == [message_id]
    assert await store.decisions(session.id) == []
    assert await store.get(session.id) == moved_on


async def test_commit_of_a_never_stored_session_inserts_it_with_its_history(
    store: SessionStore,
) -> None:
    session = MidTierSession(user_id="u-1", channel="webchat", channel_conversation_id="c-1")
    saved = await store.commit(
        Changes(
            session=session,
            expected_version=0,
            transcript=[TranscriptEntry(speaker="bot", text="welcome")],
        )
    )
    assert saved.version == 1 and await store.get(session.id) == saved
    assert [e.text for e in await store.transcript(session.id)] == ["welcome"]
    found, created = await store.find_or_create("webchat", "c-1", "u-1")
    assert not created and found.id == session.id
    with pytest.raises(ConflictError):  # the same never-stored copy again
        await store.commit(Changes(session=session, expected_version=0))


async def test_commit_with_a_dedupe_key_remembers_it_with_the_rest(
    store: SessionStore, clock: FakeClock
) -> None:
    session, _ = await recorded_session(store)
    line = TranscriptEntry(speaker="user", text="again", ref="m2")
    await store.commit(
        Changes(
            session=session,
            expected_version=session.version,
            transcript=[line, TranscriptEntry(speaker="bot", text="sure")],
            dedupe_key="in:webchat:c-1:m2",
            dedupe_ttl_s=60,
        )
    )
    assert [e.text for e in await store.transcript(session.id)] == ["hi", "again", "sure"]
    # The key is remembered as one that inbound_put wrote would be: a repeat is refused.
    assert await store.inbound_put(arrival("again", "m2"), ttl_seconds=60) is None
    clock.advance(61)
    assert await store.inbound_put(arrival("again", "m2"), ttl_seconds=60) is not None


async def test_commit_with_a_dedupe_key_already_remembered_writes_nothing(
    store: SessionStore, clock: FakeClock
) -> None:
    session, _ = await recorded_session(store)
    with pytest.raises(RepeatedMessage):
        await store.commit(
            Changes(
                session=session,
                expected_version=session.version,
                transcript=[TranscriptEntry(speaker="bot", text="twice")],
                outbox=[outbox_entry("o-twice", "c-1", clock())],
                dedupe_key="in:webchat:c-1:m1",  # recorded by inbound_put above
                dedupe_ttl_s=60,
            )
        )
    assert [e.text for e in await store.transcript(session.id)] == ["hi"]
    assert await store.outbox_pending("webchat", "c-1") == []
    assert (await store.get(session.id)).version == session.version  # type: ignore[union-attr]


async def test_pages_of_the_transcript_begin_and_end_inside_what_one_commit_wrote(
    store: SessionStore,
) -> None:
    session, _ = await recorded_session(store)  # line 1: "hi"
    for n in range(3):  # lines 2-4, 5-7, 8-10: three of each commit, and a decision
        said = [TranscriptEntry(speaker="bot", text=f"{n}.{k}") for k in range(3)]
        session = await store.commit(
            Changes(
                session=session,
                expected_version=session.version,
                transcript=said,
                decisions=[RouteDecision(action="stay", provider="faq", intent=f"i{n}")],
            )
        )
    await store.append_decision(session.id, RouteDecision(action="stay", provider="faq"))
    alone = await store.append_transcript(session.id, TranscriptEntry(speaker="bot", text="z"))
    assert alone.seq == 11
    everything = await store.transcript(session.id)
    assert [e.seq for e in everything] == list(range(1, 12))
    assert [e.text for e in everything][:5] == ["hi", "0.0", "0.1", "0.2", "1.0"]
    page = await store.transcript(session.id, last=4, before=9)
    assert [(e.seq, e.text) for e in page] == [(5, "1.0"), (6, "1.1"), (7, "1.2"), (8, "2.0")]
    assert [e.seq for e in await store.transcript(session.id, last=5, before=9)] == [4, 5, 6, 7, 8]
    assert [e.text for e in await store.transcript(session.id, last=2, before=4)] == ["0.0", "0.1"]
    assert [e.seq for e in await store.transcript(session.id, before=6)] == [1, 2, 3, 4, 5]
    assert [e.seq for e in await store.transcript(session.id, last=3)] == [9, 10, 11]
    intents = [d.intent for d in await store.decisions(session.id)]
    assert intents == ["i0", "i1", "i2", None]

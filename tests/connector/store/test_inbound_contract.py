"""The :class:`~connector.store_protocol.InboundStore` contract: a user's activity recorded,
with its dedupe key, its session and its transcript line, in one transaction, and kept until
processed. Every backend must pass it.

What ``inbound_put`` writes is read back through the session map and the history."""

from __future__ import annotations

from typing import Protocol

from connector.store_protocol import History, InboundStore, SessionMap
from tests.connector.store.contract import FakeClock, arrival

PART = InboundStore


class Recording(InboundStore, SessionMap, History, Protocol):
    """The durable inbound, and the session map and history it writes into."""


async def test_inbound_put_records_the_message_its_session_and_its_transcript_line(
    store: Recording,
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
    store: Recording, clock: FakeClock
) -> None:
    first = await store.inbound_put(arrival("hi", "m1"), ttl_seconds=60)
    assert first is not None
    assert await store.inbound_put(arrival("hi", "m1"), ttl_seconds=60) is None
    assert [e.text for e in await store.transcript(first.session_id)] == ["hi"]
    assert len(await store.inbound_pending("webchat", "c-1")) == 1
    clock.advance(61)  # the key expired: the same id is a new message again
    assert await store.inbound_put(arrival("hi", "m1"), ttl_seconds=60) is not None


async def test_inbound_without_a_key_is_never_a_duplicate(store: InboundStore) -> None:
    for _ in range(2):
        assert await store.inbound_put(arrival("hi"), ttl_seconds=60) is not None
    assert len(await store.inbound_pending("webchat", "c-1")) == 2


async def test_inbound_pending_keeps_record_order_per_conversation(store: InboundStore) -> None:
    for n in range(5):
        await store.inbound_put(arrival(f"a{n}", f"a{n}", conversation="a"), ttl_seconds=60)
        await store.inbound_put(arrival(f"b{n}", f"b{n}", conversation="b"), ttl_seconds=60)
    pending = await store.inbound_pending("webchat", "a")
    assert [e.activity["text"] for e in pending] == [f"a{n}" for n in range(5)]
    assert await store.inbound_keys() == [("webchat", "a"), ("webchat", "b")]


async def test_an_activity_that_is_not_a_message_gets_no_transcript_line(
    store: Recording,
) -> None:
    entry = arrival("")
    entry.activity = {"type": "conversationUpdate"}
    recorded = await store.inbound_put(entry, ttl_seconds=60)
    assert recorded is not None and await store.transcript(recorded.session_id) == []

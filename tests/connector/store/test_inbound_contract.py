"""The :class:`~connector.store_protocol.InboundStore` contract: a user's activity recorded,
with its dedupe key, its session and its transcript line, in one transaction, and kept until
processed. Every backend must pass it.

What ``inbound_put`` writes is read back through the session map and the history."""

from __future__ import annotations

from typing import Protocol

from connector.sessions import Leg
from connector.store_protocol import History, InboundStore, SessionMap
from tests.connector.store.contract import FakeClock, arrival, leg

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


async def test_inbound_pending_returns_each_entry_as_it_was_recorded(
    store: Recording,
) -> None:
    entry = arrival(
        "hi",
        "m1",
        claims={"sub": "u-1", "verified": True},
        address={"serviceUrl": "http://127.0.0.1:1/"},
        channel_state={"resume": "hash"},
    )
    recorded = await store.inbound_put(entry, ttl_seconds=60)
    assert recorded is not None and recorded.session_id
    assert recorded == entry.model_copy(update={"session_id": recorded.session_id})
    assert await store.inbound_pending("webchat", "c-1") == [recorded]
    [line] = await store.transcript(recorded.session_id)
    assert (line.at, line.activity) == (entry.created_at, entry.activity)


async def test_an_activity_that_is_not_a_message_gets_no_transcript_line(
    store: Recording,
) -> None:
    entry = arrival("")
    entry.activity = {"type": "conversationUpdate"}
    recorded = await store.inbound_put(entry, ttl_seconds=60)
    assert recorded is not None and await store.transcript(recorded.session_id) == []


# ------------------------------------------------------------------ the leg a line names


async def joined(store: Recording, *legs: Leg) -> str:
    """The id of webchat conversation c-1's active session, saved with ``legs``."""
    session, _ = await store.find_or_create("webchat", "c-1", "u-1")
    session.legs = list(legs)
    return (await store.save(session)).id


async def users_line(
    store: Recording, conversation: str = "c-1"
) -> tuple[str, str | None, str | None]:
    """Record a message on ``conversation``: its session, and the provider and leg its
    transcript line names."""
    recorded = await store.inbound_put(arrival("hi", conversation=conversation), ttl_seconds=60)
    assert recorded is not None
    line = (await store.transcript(recorded.session_id))[-1]
    assert (line.speaker, line.text) == ("user", "hi")
    return recorded.session_id, line.provider, line.leg_id


async def test_the_users_line_names_the_sessions_open_leg(store: Recording) -> None:
    bot = leg("bot", "b-1")
    session_id = await joined(store, bot)
    assert await users_line(store) == (session_id, "bot", bot.id)


async def test_the_users_line_names_the_leg_opened_by_a_switch(
    store: Recording, clock: FakeClock
) -> None:
    bot, desk = leg("bot", "b-1"), leg("desk", "d-1")
    bot.closed_at, bot.close_reason = clock(), "switch"
    session_id = await joined(store, bot, desk)
    assert await users_line(store) == (session_id, "desk", desk.id)


async def test_the_users_line_names_no_leg_once_the_sessions_last_leg_is_closed(
    store: Recording, clock: FakeClock
) -> None:
    bot, desk = leg("bot", "b-1"), leg("desk", "d-1")
    bot.closed_at, bot.close_reason = clock(), "switch"
    desk.closed_at, desk.close_reason = clock(), "hand_back"
    session_id = await joined(store, bot, desk)
    assert await users_line(store) == (session_id, None, None)


async def test_the_users_line_names_no_leg_when_its_session_has_none(store: Recording) -> None:
    session_id = await joined(store)
    assert await users_line(store) == (session_id, None, None)
    _, provider, leg_id = await users_line(store, "c-new")  # a session inbound_put made
    assert (provider, leg_id) == (None, None)


async def test_the_users_line_goes_to_a_new_session_without_leg_after_its_session_closed(
    store: Recording,
) -> None:
    session, _ = await store.find_or_create("webchat", "c-1", "u-1")
    session.legs.append(leg("bot", "b-1"))  # left open when the session was closed
    session.status = "closed"
    await store.save(session)
    session_id, provider, leg_id = await users_line(store)
    assert session_id != session.id and (provider, leg_id) == (None, None)
    assert await store.transcript(session.id) == []


async def test_inbound_target_names_the_active_session_a_record_would_go_to(
    store: Recording,
) -> None:
    assert await store.inbound_target(arrival("hi", "m1")) is None  # no session yet
    recorded = await store.inbound_put(arrival("hi", "m1"), ttl_seconds=60)
    assert recorded is not None
    assert await store.inbound_target(arrival("ho", "m2")) == recorded.session_id
    assert await store.inbound_target(arrival("ho")) == recorded.session_id  # no key
    assert await store.inbound_target(arrival("ho", "m2", conversation="c-2")) is None
    # It writes nothing: the message is still new to inbound_put.
    assert await store.inbound_put(arrival("ho", "m2"), ttl_seconds=60) is not None


async def test_inbound_target_of_a_repeat_or_of_a_closed_session_is_none(
    store: Recording, clock: FakeClock
) -> None:
    recorded = await store.inbound_put(arrival("hi", "m1"), ttl_seconds=60)
    assert recorded is not None
    assert await store.inbound_target(arrival("hi", "m1")) is None  # the key is remembered
    clock.advance(61)
    assert await store.inbound_target(arrival("hi", "m1")) == recorded.session_id
    session = await store.get(recorded.session_id)
    assert session is not None
    session.status = "closed"
    await store.save(session)
    assert await store.inbound_target(arrival("ho", "m2")) is None

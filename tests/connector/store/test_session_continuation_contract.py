"""The :class:`~connector.store_protocol.SessionMap` contract for continuation: a session
joined to another channel conversation is found there only, however the move was written
(``save`` or a unit of work's ``commit``), and a session is found by the identities its
verified claims carry. Every backend must pass it."""

from __future__ import annotations

import pytest

from connector.errors import ConflictError
from connector.records import Changes
from connector.sessions import MidTierSession
from connector.store_protocol import SessionMap, SessionStore
from tests.connector.store.contract import FakeClock, arrival

PART = SessionMap


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
    # Every reader of the channel key agrees, inbound_put's included.
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


async def test_moving_onto_a_conversation_with_an_active_session_by_save_raises_conflict(
    store: SessionMap,
) -> None:
    there, _ = await store.find_or_create("sms", "+15550001", "+15550001")
    session, _ = await store.find_or_create("webchat", "c-1", "u-1")
    move(session, "sms", "+15550001", "+15550001")
    with pytest.raises(ConflictError):
        await store.save(session)
    found = await store.by_channel("webchat", "c-1")
    assert found is not None and found.id == session.id and found.version == session.version
    found = await store.by_channel("sms", "+15550001")
    assert found is not None and found.id == there.id


async def test_by_channel_prefers_the_active_session_to_a_newer_closed_one(
    store: SessionMap, clock: FakeClock
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
    store: SessionMap, clock: FakeClock
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
    store: SessionMap, clock: FakeClock
) -> None:
    phone = "phone:+16505551234"
    session, _ = await store.find_or_create("sms", "+16505551234", "+16505551234")
    session.claims = {"sub": "+16505551234", "verified": True, "identities": [phone]}
    await store.save(session)
    clock.advance(10)
    assert await store.expire(clock()) == 1
    assert await store.by_identity(phone) == []

"""The :class:`~connector.store_protocol.SessionMap` contract, first half: creating, finding
and saving sessions, and the legs they are found by. Every backend must pass it."""

from __future__ import annotations

import asyncio
import re

import pytest

from connector.errors import ConflictError
from connector.sessions import MidTierSession, new_id
from connector.store_protocol import SessionMap
from tests.connector.store.contract import FakeClock, leg, with_leg

PART = SessionMap


async def test_find_or_create_creates_once_then_finds(store: SessionMap) -> None:
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


async def test_find_or_create_concurrent_calls_create_one_session(store: SessionMap) -> None:
    results = await asyncio.gather(
        *(store.find_or_create("webchat", "c-1", "u-1") for _ in range(20))
    )
    assert len({session.id for session, _ in results}) == 1
    assert sum(created for _, created in results) == 1


async def test_find_or_create_after_close_creates_a_new_session(store: SessionMap) -> None:
    old, _ = await store.find_or_create("webchat", "c-1", "u-1")
    old.status = "closed"
    await store.save(old)
    new, created = await store.find_or_create("webchat", "c-1", "u-1")
    assert created and new.id != old.id
    assert new.status == "active"


async def test_get_returns_stored_session_or_none(store: SessionMap) -> None:
    session, _ = await store.find_or_create("webchat", "c-1", "u-1")
    found = await store.get(session.id)
    assert found is not None and found.id == session.id
    assert await store.get("mts_unknown") is None


async def test_by_channel_returns_newest_session_even_if_closed(store: SessionMap) -> None:
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


async def test_by_user_lists_sessions_newest_first(store: SessionMap) -> None:
    a, _ = await store.find_or_create("webchat", "c-1", "u-1")
    b, _ = await store.find_or_create("slack", "c-2", "u-1")
    await store.find_or_create("webchat", "c-3", "u-2")
    await store.save(a)  # now the most recently updated
    assert [s.id for s in await store.by_user("u-1")] == [a.id, b.id]
    assert await store.by_user("u-9") == []


async def test_save_bumps_version_and_updated_at_without_changing_argument(
    store: SessionMap, clock: FakeClock
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


async def test_save_of_stale_copy_raises_conflict(store: SessionMap) -> None:
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


async def test_save_inserts_a_never_stored_session_once(store: SessionMap) -> None:
    session = MidTierSession(user_id="u-1", channel="webchat", channel_conversation_id="c-1")
    saved = await store.save(session)
    assert saved.version == 1
    found, created = await store.find_or_create("webchat", "c-1", "u-1")
    assert not created and found.id == session.id
    with pytest.raises(ConflictError):
        await store.save(session)  # the same version-0 copy again


async def test_save_of_unknown_session_with_a_version_raises_conflict(
    store: SessionMap,
) -> None:
    ghost = MidTierSession(
        user_id="u-1", channel="webchat", channel_conversation_id="c-1", version=3
    )
    with pytest.raises(ConflictError):
        await store.save(ghost)
    assert await store.get(ghost.id) is None


async def test_save_of_second_active_session_for_a_conversation_raises_conflict(
    store: SessionMap,
) -> None:
    await store.find_or_create("webchat", "c-1", "u-1")
    rival = MidTierSession(user_id="u-1", channel="webchat", channel_conversation_id="c-1")
    with pytest.raises(ConflictError):
        await store.save(rival)
    assert await store.get(rival.id) is None


async def test_returned_sessions_do_not_share_state_with_the_store(store: SessionMap) -> None:
    session, _ = await store.find_or_create("webchat", "c-1", "u-1")
    session.slots["mutated"] = True
    session.legs.append(leg("bot", "b-1"))
    stored = await store.get(session.id)
    assert stored is not None and stored.slots == {} and stored.legs == []


async def test_by_provider_finds_session_by_its_leg_after_save(store: SessionMap) -> None:
    session = await with_leg(store, "bot", "b-1")
    found = await store.by_provider("bot", "b-1")
    assert found is not None and found.id == session.id
    assert await store.by_provider("bot", "b-2") is None
    assert await store.by_provider("desk", "b-1") is None


async def test_by_provider_ignores_legs_without_provider_conversation(
    store: SessionMap,
) -> None:
    await with_leg(store, "bot", "")
    assert await store.by_provider("bot", "") is None


async def test_by_provider_resolves_old_and_new_leg_after_switch(
    store: SessionMap, clock: FakeClock
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


async def test_by_provider_finds_a_new_leg_with_the_provider_the_session_already_had(
    store: SessionMap, clock: FakeClock
) -> None:
    session = await with_leg(store, "bot", "b-1")
    session.legs[-1].closed_at = clock()
    session.legs.append(leg("bot", "b-2"))  # no key column changes: same provider, same chat
    session = await store.save(session)
    found = await store.by_provider("bot", "b-2")
    assert found is not None and found.id == session.id


async def test_by_provider_key_reused_by_newer_session_resolves_to_it(
    store: SessionMap,
) -> None:
    old = await with_leg(store, "bot", "shared")
    old.status = "closed"
    await store.save(old)
    new, _ = await store.find_or_create("webchat", "c-1", "u-1")
    new.legs.append(leg("bot", "shared"))
    await store.save(new)
    found = await store.by_provider("bot", "shared")
    assert found is not None and found.id == new.id


async def test_session_ids_are_unguessable(store: SessionMap) -> None:
    sessions = [(await store.find_or_create("webchat", f"c-{i}", "u-1"))[0] for i in range(20)]
    ids = {s.id for s in sessions}
    assert len(ids) == 20
    for session_id in [*ids, new_id("leg")]:
        prefix, _, token = session_id.partition("_")
        assert prefix in ("mts", "leg")
        assert re.fullmatch(r"[A-Za-z0-9_-]+", token)
        assert len(token) * 6 >= 128  # base64url: 6 bits a character

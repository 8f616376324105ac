"""The SQLite store reads back the sessions it committed from memory: what it must never do
with them (write over another process's change, hand out what SQL changed since)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from connector.errors import ConflictError
from connector.locks import LocalLocks
from connector.records import Changes, OutboxEntry
from connector.sessions import MidTierSession, TranscriptEntry
from connector.store import SqliteStore
from connector.store.sqlite_cache import KeptChanged, SessionCache
from connector.work import Turns
from tests.connector.store.contract import FakeClock, arrival


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[tuple[SqliteStore, SqliteStore]]:
    """The server's store and another one on the same file (as ``midtier`` run from a shell
    would open it): each its own connection and its own memory of sessions."""
    path = tmp_path / "midtier.db"
    server, other = SqliteStore(path, clock=FakeClock()), SqliteStore(path)
    await server.start()
    await other.start()
    try:
        yield server, other
    finally:
        await other.close()
        await server.close()


async def test_a_session_another_process_changed_is_not_written_over_from_memory(
    stores: tuple[SqliteStore, SqliteStore],
) -> None:
    server, other = stores
    session, _ = await server.find_or_create("webchat", "c-1", "u-1")
    session = await server.commit(Changes(session=session, expected_version=session.version))
    theirs = await other.get(session.id)
    assert theirs is not None
    theirs.slots["order"] = "A-2"
    theirs = await other.save(theirs)

    mine = await server.get(session.id)  # what the server committed, not what is in the file
    assert mine is not None and mine.version == session.version
    mine.slots["order"] = "B-1"
    with pytest.raises(ConflictError):
        await server.commit(Changes(session=mine, expected_version=mine.version))
    assert await other.get(session.id) == theirs
    assert await server.get(session.id) == theirs  # read from the file after the conflict


async def test_a_session_a_message_created_is_read_back_from_memory_and_checked_on_save(
    stores: tuple[SqliteStore, SqliteStore],
) -> None:
    server, other = stores
    recorded = await server.inbound_put(arrival("hello", ref="m1"), 60)
    assert recorded is not None and recorded.session_id is not None
    theirs = await other.get(recorded.session_id)  # in the file: committed with the message
    assert theirs is not None and theirs.channel_conversation_id == "c-1"
    theirs.slots["order"] = "A-2"
    await other.save(theirs)

    mine = await server.get(recorded.session_id)  # as created, not as the file has it now
    assert mine is not None and mine.version == 1 and mine.slots == {}
    assert await server.get(recorded.session_id) == mine  # the next reader parses the JSON
    with pytest.raises(ConflictError):
        await server.commit(Changes(session=mine, expected_version=mine.version))
    assert (await server.get(recorded.session_id)) == await other.get(recorded.session_id)


async def test_a_session_saved_elsewhere_meanwhile_fails_its_save_from_memory_too(
    stores: tuple[SqliteStore, SqliteStore],
) -> None:
    server, other = stores
    session, _ = await server.find_or_create("webchat", "c-1", "u-1")
    session = await server.save(session)
    theirs = await other.get(session.id)
    assert theirs is not None
    theirs = await other.save(theirs)
    mine = await server.get(session.id)
    assert mine is not None
    with pytest.raises(ConflictError):
        await server.save(mine)
    assert await server.get(session.id) == theirs


async def test_a_session_expired_in_sql_is_read_back_closed(tmp_path: Path) -> None:
    clock = FakeClock()
    store = SqliteStore(tmp_path / "midtier.db", clock=clock)
    await store.start()
    try:
        session, _ = await store.find_or_create("webchat", "c-1", "u-1")
        line = TranscriptEntry(speaker="user", text="hi")
        session = await store.commit(
            Changes(session=session, expected_version=session.version, transcript=[line])
        )
        clock.advance(60)
        assert await store.expire(clock() - timedelta(seconds=30)) == 1
        found = await store.get(session.id)
        assert found is not None
        assert (found.status, found.version) == ("closed", session.version + 1)
    finally:
        await store.close()


def _json(version: int, session_id: str = "mts_1") -> str:
    return _session(version, session_id).model_dump_json()


def _version(cache: SessionCache, session_id: str) -> int | None:
    found = cache.take(session_id)
    return found.version if found is not None else None


def test_the_cache_keeps_the_newer_version_when_an_older_commit_resumes_late() -> None:
    cache = SessionCache()
    cache.put("mts_1", 3, _json(3))
    cache.put("mts_1", 2, _json(2))
    assert _version(cache, "mts_1") == 3
    cache.put("mts_1", 4, _json(4))
    assert _version(cache, "mts_1") == 4
    cache.drop("mts_1")
    assert _version(cache, "mts_1") is None


def test_the_cache_forgets_the_least_recently_written_session_beyond_its_size() -> None:
    cache = SessionCache(size=2)
    cache.put("mts_1", 1, _json(1, "mts_1"))
    cache.put("mts_2", 1, _json(1, "mts_2"))
    cache.put("mts_1", 2, _json(2, "mts_1"))  # written again: now the most recent
    cache.put("mts_3", 1, _json(1, "mts_3"))
    assert [_version(cache, s) for s in ("mts_1", "mts_2", "mts_3")] == [2, None, 1]


def _session(version: int, session_id: str = "mts_1") -> MidTierSession:
    return MidTierSession(
        id=session_id,
        user_id="u-1",
        channel="webchat",
        channel_conversation_id="c-1",
        version=version,
    )


def test_a_kept_session_goes_to_one_reader_and_the_next_one_parses_the_json() -> None:
    cache = SessionCache(check=True)
    session = _session(2)
    cache.put(session.id, 2, session.model_dump_json())
    cache.keep(session)
    assert cache.take(session.id) is session
    again = cache.take(session.id)  # the first reader owns it: this one gets its own copy
    assert again is not None and again is not session and again == session


def test_a_session_kept_at_another_version_than_the_last_commit_is_not_kept() -> None:
    cache = SessionCache(check=True)
    cache.put("mts_1", 3, _session(3).model_dump_json())
    older = _session(2)
    cache.keep(older)
    taken = cache.take("mts_1")
    assert taken is not older and taken is not None and taken.version == 3
    newer = _session(3)
    cache.keep(newer)
    cache.put("mts_1", 4, _session(4).model_dump_json())  # committed again: forget it
    taken = cache.take("mts_1")
    assert taken is not newer and taken is not None and taken.version == 4
    cache.keep(_session(4))
    cache.drop("mts_1")
    assert cache.take("mts_1") is None


def test_a_kept_session_changed_after_its_commit_is_caught_when_checked() -> None:
    cache = SessionCache(check=True)
    session = _session(1)
    cache.put(session.id, 1, session.model_dump_json())
    cache.keep(session)
    session.slots["order"] = "A-1"  # not committed
    with pytest.raises(KeptChanged):
        cache.take(session.id)
    unchecked = SessionCache(check=False)
    unchecked.put(session.id, 1, _session(1).model_dump_json())
    unchecked.keep(_session(1))
    assert unchecked.take(session.id) is not None


async def test_units_of_work_start_from_the_session_the_last_one_committed(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "midtier.db")
    await store.start()
    try:
        found, _ = await store.find_or_create("webchat", "c-1", "u-1")
        turns = Turns(store, LocalLocks(), _no_dispatch)
        async with turns.turn(found.id) as turn:
            turn.session.slots["order"] = "A-1"
            first = turn.session
        async with turns.turn(found.id) as turn:
            assert turn.session is first  # no copy read back from JSON
            turn.session.slots["order"] = "A-2"
        async with turns.turn(found.id) as turn:
            assert turn.session is first
            turn.abandon()  # ended without a commit: not handed on
        async with turns.turn(found.id) as turn:
            assert turn.session is not first and turn.session.slots == {"order": "A-2"}
            second = turn.session
        with pytest.raises(ValueError):
            async with turns.turn(found.id) as turn:
                assert turn.session is second
                turn.session.slots["order"] = "never"
                raise ValueError("the unit of work fails")
        async with turns.turn(found.id) as turn:
            assert turn.session is not second and turn.session.slots == {"order": "A-2"}
    finally:
        await store.close()


async def _no_dispatch(entries: list[OutboxEntry]) -> None:
    return None

"""The SQLite store reads back the sessions it committed from memory: what it must never do
with them (write over another process's change, hand out what SQL changed since)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from connector.errors import ConflictError
from connector.records import Changes
from connector.sessions import TranscriptEntry
from connector.store import SqliteStore
from connector.store.sqlite_cache import SessionCache
from tests.connector.store.contract import FakeClock


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


def test_the_cache_keeps_the_newer_version_when_an_older_commit_resumes_late() -> None:
    cache = SessionCache()
    cache.put("mts_1", 3, '{"v": 3}')
    cache.put("mts_1", 2, '{"v": 2}')
    assert cache.get("mts_1") == '{"v": 3}'
    cache.put("mts_1", 4, '{"v": 4}')
    assert cache.get("mts_1") == '{"v": 4}'
    cache.drop("mts_1")
    assert cache.get("mts_1") is None


def test_the_cache_forgets_the_least_recently_written_session_beyond_its_size() -> None:
    cache = SessionCache(size=2)
    cache.put("mts_1", 1, "one")
    cache.put("mts_2", 1, "two")
    cache.put("mts_1", 2, "one again")  # written again: now the most recent
    cache.put("mts_3", 1, "three")
    assert [cache.get(s) for s in ("mts_1", "mts_2", "mts_3")] == ["one again", None, "three"]

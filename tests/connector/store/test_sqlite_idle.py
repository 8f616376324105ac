"""The SQLite store's idle index moves a session at most once a minute: the reads that order
sessions by their last save are still exact while it lags behind the saves."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from connector.sessions import MidTierSession
from connector.store import SqliteStore
from connector.store import sqlite_statements as sql
from connector.store.sqlite_rows import to_us
from tests.connector.store.contract import FakeClock


@pytest.fixture
async def lagging(
    tmp_path: Path, clock: FakeClock
) -> AsyncIterator[tuple[SqliteStore, list[MidTierSession], datetime]]:
    """Ten sessions made a second apart, then saved again a second apart in the opposite
    order (all within a minute: none moved in the idle index), and the time they started."""
    store = SqliteStore(tmp_path / "midtier.db", clock=clock)
    await store.start()
    started = clock()
    made = []
    for n in range(10):
        session, _ = await store.find_or_create("webchat", f"c-{n}", f"u-{n}")
        made.append(session)
        clock.advance(1)
    saved = {}
    for session in reversed(made):
        saved[session.id] = await store.save(session)
        clock.advance(1)
    try:
        yield store, [saved[s.id] for s in made], started
    finally:
        await store.close()


def _idle_at(store: SqliteStore, session_id: str) -> int:
    with sqlite3.connect(store.path) as db:
        [(idle_at,)] = db.execute("SELECT idle_at FROM sessions WHERE id = ?", (session_id,))
    db.close()
    return int(idle_at)


async def test_a_save_within_a_minute_of_the_last_move_leaves_the_idle_index_alone(
    lagging: tuple[SqliteStore, list[MidTierSession], datetime], clock: FakeClock
) -> None:
    store, sessions, started = lagging
    first, last = sessions[0], sessions[-1]
    assert _idle_at(store, first.id) == to_us(started)  # saved 19 s later, not moved
    clock.advance(45)  # 65 s after the first was made, 46 s after its last save
    first = await store.save(first)
    assert _idle_at(store, first.id) == to_us(first.updated_at)  # moved
    last = await store.save(last)  # made at 9 s: not a minute yet
    assert _idle_at(store, last.id) == to_us(started + timedelta(seconds=9))
    clock.advance(sql.IDLE_STEP_US / 1e6)
    first = await store.save(first)  # a minute after its last save: moved at once
    assert _idle_at(store, first.id) == to_us(first.updated_at)
    assert [await store.get(s.id) for s in (first, last)] == [first, last]


async def test_idle_sessions_come_longest_idle_first_while_the_index_lags(
    lagging: tuple[SqliteStore, list[MidTierSession], datetime],
) -> None:
    store, sessions, started = lagging
    ids = [s.id for s in sessions]
    # Last saved at +10 s (the tenth) ... +19 s (the first): the index holds +0 ... +9 s.
    late = started + timedelta(seconds=100)
    assert await store.idle_sessions(late, limit=3) == ids[::-1][:3]
    assert await store.idle_sessions(late) == ids[::-1]
    assert await store.idle_sessions(started + timedelta(seconds=13)) == ids[::-1][:3]
    assert await store.idle_sessions(started + timedelta(seconds=10)) == []


async def test_the_newest_sessions_of_a_status_come_first_while_the_index_lags(
    lagging: tuple[SqliteStore, list[MidTierSession], datetime],
) -> None:
    store, sessions, _ = lagging
    ids = [s.id for s in sessions]
    assert [s.id for s in await store.list_sessions(status="active", limit=3)] == ids[:3]
    assert [s.id for s in await store.list_sessions(status="active")] == ids
    assert [s.id for s in await store.list_sessions(limit=2)] == ids[:2]
    assert await store.list_sessions(status="active", limit=0) == []
    assert [s.id for s in await store.by_user("u-4")] == [ids[4]]


async def test_expire_closes_only_the_sessions_last_saved_before_its_time_page_by_page(
    lagging: tuple[SqliteStore, list[MidTierSession], datetime],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store, sessions, started = lagging
    monkeypatch.setattr(sql, "EXPIRE_PAGE", 2)
    # The first five were saved last (+15 ... +19 s), though they went into the index first.
    assert await store.expire(started + timedelta(seconds=15)) == 5
    active = await store.list_sessions(status="active")
    assert [s.id for s in active] == [s.id for s in sessions[:5]]
    closed = await store.list_sessions(status="closed")
    assert {s.id for s in closed} == {s.id for s in sessions[5:]}

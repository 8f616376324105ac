"""The SQLite connection of the embedded store: writes committed in groups on the event loop
(``synchronous = normal``), checkpoints on a thread, nothing asked for lost at close."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from connector.store import sqlite_schema as sql
from connector.store.sqlite_db import CHECKPOINT_EVERY, Database

PRAGMAS = sql.PRAGMAS + "PRAGMA synchronous = NORMAL;\n"


async def _database(path: Path, window_s: float = 0.0) -> Database:
    db = Database(str(path), PRAGMAS, on_loop=True, commit_window_s=window_s)
    await db.open()
    await db.run(lambda conn: conn.execute("CREATE TABLE t (x INTEGER NOT NULL)"))
    return db


def _rows(path: Path) -> list[int]:
    """What another connection (another process) reads from the file."""
    with sqlite3.connect(path) as other:
        rows = [x for (x,) in other.execute("SELECT x FROM t ORDER BY x")]
    other.close()
    return rows


async def test_transactions_asked_for_in_one_turn_share_one_commit_and_fail_alone(
    tmp_path: Path,
) -> None:
    db = await _database(tmp_path / "store.db")
    commits: list[str] = []
    assert db._conn is not None
    db._conn.set_trace_callback(lambda s: commits.append(s) if s == "COMMIT" else None)
    runs: list[int] = []

    def insert(x: int) -> Callable[[sqlite3.Connection], int]:
        def write(conn: sqlite3.Connection) -> int:
            runs.append(x)
            conn.execute("INSERT INTO t (x) VALUES (?)", (x,))
            if x == 3:
                raise ValueError("this unit fails")
            return x

        return write

    results = await asyncio.gather(
        *(db.transaction(insert(x)) for x in range(1, 6)), return_exceptions=True
    )
    assert results[:2] == [1, 2] and results[3:] == [4, 5]
    assert isinstance(results[2], ValueError)
    assert commits == ["COMMIT"]  # five units of work, one commit
    assert _rows(tmp_path / "store.db") == [1, 2, 4, 5]  # the failed one rolled back alone
    # The group ran again without the failed unit: those before it twice, it and those
    # after it once.
    assert runs == [1, 2, 3, 1, 2, 4, 5]
    await db.close()


async def test_a_group_that_fails_nowhere_runs_its_statements_and_one_commit(
    tmp_path: Path,
) -> None:
    db = await _database(tmp_path / "store.db")
    statements: list[str] = []
    assert db._conn is not None
    db._conn.set_trace_callback(statements.append)

    def insert_two(x: int) -> Callable[[sqlite3.Connection], None]:
        def write(conn: sqlite3.Connection) -> None:
            conn.executemany("INSERT INTO t (x) VALUES (?)", [(x,), (x + 10,)])

        return write

    await asyncio.gather(*(db.transaction(insert_two(x)) for x in range(1, 4)))
    inserts = [f"INSERT INTO t (x) VALUES ({x})" for x in (1, 11, 2, 12, 3, 13)]
    assert statements == ["BEGIN IMMEDIATE", *inserts, "COMMIT"]  # no savepoint per unit
    assert _rows(tmp_path / "store.db") == [1, 2, 3, 11, 12, 13]
    await db.close()


async def test_a_single_statement_that_aborts_the_transaction_leaves_the_others_whole(
    tmp_path: Path,
) -> None:
    db = await _database(tmp_path / "store.db")
    await db.run(
        lambda conn: conn.execute("CREATE TABLE u (x INTEGER UNIQUE ON CONFLICT ROLLBACK)")
    )
    await db.run(lambda conn: conn.execute("INSERT INTO u (x) VALUES (7)"))
    results = await asyncio.gather(
        db.execute("INSERT INTO t (x) VALUES (1)"),
        db.execute("INSERT INTO u (x) VALUES (7)"),  # ON CONFLICT ROLLBACK: ends the transaction
        db.execute("INSERT INTO t (x) VALUES (3)"),
        return_exceptions=True,
    )
    assert results[0] == 1 and results[2] == 1
    assert isinstance(results[1], sqlite3.IntegrityError)
    assert _rows(tmp_path / "store.db") == [1, 3]
    await db.close()


async def test_a_single_statement_that_fails_in_a_group_is_undone_alone(tmp_path: Path) -> None:
    db = await _database(tmp_path / "store.db")
    results = await asyncio.gather(
        db.execute("INSERT INTO t (x) VALUES (1)"),
        db.execute("INSERT INTO t (x) VALUES (NULL)"),  # NOT NULL: this statement fails
        db.transaction(lambda conn: conn.execute("INSERT INTO t (x) VALUES (3)").rowcount),
        return_exceptions=True,
    )
    assert results[0] == 1 and results[2] == 1
    assert isinstance(results[1], sqlite3.IntegrityError)
    assert _rows(tmp_path / "store.db") == [1, 3]
    await db.close()


async def test_a_transaction_alone_in_its_turn_that_fails_writes_nothing(tmp_path: Path) -> None:
    db = await _database(tmp_path / "store.db")

    def half(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t (x) VALUES (1)")
        raise ValueError("this unit fails after its first write")

    with pytest.raises(ValueError, match="first write"):
        await db.transaction(half)
    await db.execute("INSERT INTO t (x) VALUES (2)")
    assert _rows(tmp_path / "store.db") == [2]
    await db.close()


async def test_a_write_is_in_the_file_when_its_await_returns(tmp_path: Path) -> None:
    db = await _database(tmp_path / "store.db")
    await db.execute("INSERT INTO t (x) VALUES (7)")
    assert _rows(tmp_path / "store.db") == [7]
    await db.close()


async def test_a_write_asked_for_by_a_cancelled_caller_is_committed_by_close(
    tmp_path: Path,
) -> None:
    db = await _database(tmp_path / "store.db")
    waiting = asyncio.create_task(db.execute("INSERT INTO t (x) VALUES (9)"))
    await asyncio.sleep(0)  # the write is asked for; its commit waits for the end of the turn
    waiting.cancel()
    await db.close()
    assert _rows(tmp_path / "store.db") == [9]
    with pytest.raises(asyncio.CancelledError):
        await waiting


@pytest.mark.parametrize(("window_s", "commits"), [(0.0, 2), (0.2, 1)])
async def test_writes_asked_for_within_the_commit_window_share_its_commit(
    tmp_path: Path, window_s: float, commits: int
) -> None:
    db = await _database(tmp_path / "store.db", window_s)
    seen: list[str] = []
    assert db._conn is not None
    db._conn.set_trace_callback(lambda s: seen.append(s) if s == "COMMIT" else None)
    first = asyncio.create_task(db.execute("INSERT INTO t (x) VALUES (1)"))
    await asyncio.sleep(0.02)  # a later turn of the loop (within the window, if there is one)
    assert first.done() == (window_s == 0)
    await db.execute("INSERT INTO t (x) VALUES (2)")
    await first
    assert len(seen) == commits
    assert _rows(tmp_path / "store.db") == [1, 2]
    await db.close()


async def test_writes_waiting_for_the_commit_window_are_committed_by_close(
    tmp_path: Path,
) -> None:
    db = await _database(tmp_path / "store.db", window_s=30.0)
    waiting = asyncio.create_task(db.execute("INSERT INTO t (x) VALUES (5)"))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    await db.close()
    assert await waiting == 1
    assert _rows(tmp_path / "store.db") == [5]


async def test_writes_after_close_are_refused(tmp_path: Path) -> None:
    db = await _database(tmp_path / "store.db")
    await db.close()
    with pytest.raises(RuntimeError, match="not started"):
        await db.execute("INSERT INTO t (x) VALUES (1)")


async def test_the_loop_connection_leaves_checkpoints_to_the_thread(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    db = await _database(path)
    assert db._conn is not None
    [(pages,)] = db._conn.execute("PRAGMA wal_autocheckpoint").fetchall()
    assert pages == 0  # no checkpoint (and its fsync) on the event loop
    before = path.stat().st_size  # pages reach the database file only by a checkpoint
    for x in range(CHECKPOINT_EVERY):
        await db.execute("INSERT INTO t (x) VALUES (?)", (x,))
    running = db._checkpointing  # the last commit started one, on the thread
    assert running is not None
    await running
    assert path.stat().st_size > before  # the WAL's pages copied into the file
    await db.close()
    assert len(_rows(path)) == CHECKPOINT_EVERY

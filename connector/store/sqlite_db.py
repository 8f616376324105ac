"""One SQLite connection, used by the event loop without waiting on the disk.

A function that holds a whole transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``) runs with
nothing else between its statements: that is what a unit of work needs and what a
statement-at-a-time client (aiosqlite's public API) cannot give.

Where the function runs depends on what a commit costs:

- ``synchronous = NORMAL`` (the default): on the event loop itself. In WAL mode a commit
  appends to the ``-wal`` file, a write into the page cache with no fsync; a thread hand-off
  costs more CPU (some 40 us each way) than a small transaction (some 15 us). The one step
  that waits on the disk, the checkpoint that copies the WAL into the database and fsyncs,
  is taken off the loop: automatic checkpoints are off on the loop's connection, and a
  second connection on a worker thread checkpoints every ``CHECKPOINT_EVERY`` calls.

  Writes are committed in groups: the transactions (and single writes) that tasks ask for
  within ``commit_window_s`` of the first one (0: in one turn of the event loop) run in one
  ``BEGIN IMMEDIATE`` ... ``COMMIT`` at its end (one that raises is rolled back alone: the
  group runs again without it, :mod:`.sqlite_group`), and each caller's await returns once
  that ``COMMIT`` is done. A commit's cost is mostly the pages it writes to the WAL, and
  concurrent conversations write the same pages (the tables' and indexes' last pages): a
  group writes each once. A window (1 ms by default in ``midtier run``) lets units of work
  that finish a little apart share a commit too, at the cost of that much latency per
  write: with 4 conversations under callgrind it cut WAL commits per message from 1.0 to
  0.3; with 16 at full speed one turn of the loop already grouped about 3 (``docs/benchmarks.md``).
- ``synchronous = FULL``: every commit fsyncs, so every call runs on the connection's own
  worker thread and the loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import stat
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from connector.store.sqlite_group import Unit, run_group

T = TypeVar("T")

log = logging.getLogger("midtier.store")

IN_MEMORY = ":memory:"
CHECKPOINT_EVERY = 200  # commits (of groups) between two checkpoints
FILE_MODE = 0o600  # the store holds conversations: readable by its owner only
DIR_MODE = 0o700


def prepare_file(path: str) -> None:
    """Create the database file (and its directory) readable by the owner only.

    SQLite gives its ``-wal`` and ``-shm`` files the mode of the database file, so they
    follow. A file that exists with wider permissions is narrowed.
    """
    file = Path(path)
    if not file.parent.exists():
        file.parent.mkdir(parents=True, mode=DIR_MODE, exist_ok=True)
    fd = os.open(file, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) & 0o077:
            os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


class Database:
    """A ``sqlite3`` connection in autocommit mode, used from the loop or from one worker
    thread only (``on_loop``, see the module's docstring)."""

    def __init__(
        self, path: str, pragmas: str, *, on_loop: bool = False, commit_window_s: float = 0.0
    ) -> None:
        self.path = path
        self._pragmas = pragmas
        self._on_loop = on_loop
        self._window = commit_window_s
        self._pool: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._checkpointer: sqlite3.Connection | None = None  # on the worker thread
        self._commits = 0
        self._checkpointing: asyncio.Future[None] | None = None
        # What the loop's turn asked for: each function, its caller's future, and whether it
        # runs one statement only (atomic by itself: its failure needs no second run).
        self._group: list[Unit] = []

    async def open(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="midtier-sqlite")
        try:
            if self._on_loop:
                self._connect(None, checkpoints=False)
                if self.path != IN_MEMORY:
                    loop = asyncio.get_running_loop()
                    await loop.run_in_executor(self._pool, self._open_checkpointer)
            else:
                await asyncio.get_running_loop().run_in_executor(self._pool, self._connect, None)
        except BaseException:
            self._disconnect()
            self._pool.shutdown(wait=False)
            self._pool = None
            raise

    def _connect(self, _: None, checkpoints: bool = True) -> None:
        if self.path != IN_MEMORY:
            prepare_file(self.path)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.executescript(self._pragmas)
            if not checkpoints:
                conn.execute("PRAGMA wal_autocheckpoint = 0")
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _open_checkpointer(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 5000")
        self._checkpointer = conn

    async def close(self) -> None:
        if self._pool is None:
            return
        if self._group:  # asked for before the close (a caller may have been cancelled)
            self._commit_group()
        pool, self._pool = self._pool, None
        loop = asyncio.get_running_loop()
        if self._checkpointing is not None:
            await asyncio.shield(self._checkpointing)
        if self._checkpointer is not None:
            await loop.run_in_executor(pool, self._checkpoint_and_close)
        await loop.run_in_executor(pool, self._disconnect)
        pool.shutdown(wait=True)

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(connection, *args)``, on the loop or on the connection's thread."""
        if self._pool is None:
            raise RuntimeError(f"SQLite store {self.path!r} is not started")
        if self._on_loop:
            return fn(self._conn, *args)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._call, fn, args)

    def _call(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        return fn(self._conn, *args)

    async def fetchall(self, statement: str, params: Any = ()) -> list[Any]:
        return await self.run(_fetchall, statement, params)

    async def execute(self, statement: str, params: Any = ()) -> int:
        """Run one statement (a write: committed when this returns); its row count."""
        if self._on_loop:
            return await self.transaction(lambda conn: _execute(conn, statement, params), one=True)
        return await self.run(_execute, statement, params)

    async def executemany(self, statement: str, params: list[Any]) -> int:
        if self._on_loop:
            return await self.transaction(lambda conn: _executemany(conn, statement, params))
        return await self.run(_executemany, statement, params)

    async def transaction(self, fn: Callable[[sqlite3.Connection], T], *, one: bool = False) -> T:
        """``fn(connection)`` all or nothing: committed when this returns, rolled back if it
        raises (with the exception raised here). ``one``: ``fn`` runs a single statement."""
        if not self._on_loop:
            return await self.run(_transaction, fn)
        if self._pool is None:
            raise RuntimeError(f"SQLite store {self.path!r} is not started")
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T] = loop.create_future()
        self._group.append((fn, done, one))
        if len(self._group) == 1:
            if self._window > 0:
                loop.call_later(self._window, self._commit_group)
            else:
                loop.call_soon(self._commit_group)
        return await done

    def _commit_group(self) -> None:
        """Run the transactions asked for since the group's first (in its turn of the loop,
        or within the commit window); commit them together."""
        group, self._group = self._group, []
        if not group:  # committed by close() before its time came
            return
        conn = self._conn
        if conn is None:  # closed meanwhile
            for _, done, _ in group:
                if not done.done():
                    done.set_exception(RuntimeError(f"SQLite store {self.path!r} is closed"))
            return
        try:
            outcomes = run_group(conn, group)
        except sqlite3.Error as exc:  # the disk, not a unit: none of them is committed
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            outcomes = [(done, None, exc) for _, done, _ in group]
        for done, result, error in outcomes:
            if done.done():  # its caller was cancelled; what it wrote stands
                continue
            if error is None:
                done.set_result(result)
            else:
                done.set_exception(error)
        self._committed()

    # ------------------------------------------------------------------ checkpoints

    def _committed(self) -> None:
        """Count a commit; every ``CHECKPOINT_EVERY`` of them, checkpoint on the thread."""
        if self._checkpointer is None:
            return
        self._commits += 1
        if self._commits < CHECKPOINT_EVERY or self._checkpointing is not None:
            return
        self._commits = 0
        assert self._pool is not None
        loop = asyncio.get_running_loop()
        self._checkpointing = future = loop.run_in_executor(self._pool, self._checkpoint)
        future.add_done_callback(self._checkpointed)

    def _checkpoint(self) -> None:
        assert self._checkpointer is not None
        # PASSIVE: copies what no reader still needs, never waits on writers or readers.
        self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _checkpointed(self, future: asyncio.Future[None]) -> None:
        self._checkpointing = None
        if not future.cancelled() and future.exception() is not None:
            log.warning("SQLite checkpoint failed: %s", future.exception())

    def _checkpoint_and_close(self) -> None:
        conn, self._checkpointer = self._checkpointer, None
        if conn is None:
            return
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:  # another process reads: the next start checkpoints
            log.info("SQLite checkpoint at close skipped: %s", exc)
        finally:
            conn.close()


def _fetchall(conn: sqlite3.Connection, statement: str, params: Any) -> list[Any]:
    return conn.execute(statement, params).fetchall()


def _execute(conn: sqlite3.Connection, statement: str, params: Any) -> int:
    return conn.execute(statement, params).rowcount


def _executemany(conn: sqlite3.Connection, statement: str, params: list[Any]) -> int:
    return conn.executemany(statement, params).rowcount


def _transaction(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result

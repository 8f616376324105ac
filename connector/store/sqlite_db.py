"""One SQLite connection on its own thread, for the event loop to use without blocking.

Every call runs a function on the connection's thread, so the loop never touches the disk,
and a function that holds a whole transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``) runs with
nothing else between its statements: that is what a unit of work needs and what a
statement-at-a-time client (aiosqlite's public API) cannot give.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

IN_MEMORY = ":memory:"
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
    """A ``sqlite3`` connection in autocommit mode, used from one worker thread only."""

    def __init__(self, path: str, pragmas: str) -> None:
        self.path = path
        self._pragmas = pragmas
        self._pool: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    async def open(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="midtier-sqlite")
        try:
            await self.run(self._connect)
        except BaseException:
            self._pool.shutdown(wait=False)
            self._pool = None
            raise

    def _connect(self, _: None) -> None:
        if self.path != IN_MEMORY:
            prepare_file(self.path)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.executescript(self._pragmas)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    async def close(self) -> None:
        if self._pool is None:
            return
        pool, self._pool = self._pool, None
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(pool, self._disconnect)
        pool.shutdown(wait=True)

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(connection, *args)`` on the connection's thread."""
        if self._pool is None:
            raise RuntimeError(f"SQLite store {self.path!r} is not started")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._call, fn, args)

    def _call(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        return fn(self._conn, *args)

    async def fetchall(self, statement: str, params: Any = ()) -> list[Any]:
        return await self.run(_fetchall, statement, params)

    async def execute(self, statement: str, params: Any = ()) -> int:
        """Run one statement; its row count."""
        return await self.run(_execute, statement, params)

    async def executemany(self, statement: str, params: list[Any]) -> int:
        return await self.run(_executemany, statement, params)

    async def transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(connection)`` inside ``BEGIN IMMEDIATE``; committed if it returns, rolled
        back if it raises."""
        return await self.run(_transaction, fn)


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

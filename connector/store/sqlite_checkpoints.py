"""The checkpoints of a database the event loop commits to (``sqlite_db.Database`` with
``on_loop``): automatic checkpoints are off on the loop's connection, and a connection of
their own, on the database's worker thread, copies the WAL into the database (and fsyncs)
every ``CHECKPOINT_EVERY`` commits, and truncates the WAL at close."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger("midtier.store")

CHECKPOINT_EVERY = 200  # commits (of groups) between two checkpoints


class Checkpoints:
    """``open`` and ``close`` run on ``pool``'s thread (``run_in_executor``)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None
        self._commits = 0
        self.running: asyncio.Future[None] | None = None

    def open(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 5000")
        self._conn = conn

    def committed(self, pool: ThreadPoolExecutor) -> None:
        """Count a commit; every ``CHECKPOINT_EVERY`` of them, checkpoint on the thread."""
        if self._conn is None:
            return
        self._commits += 1
        if self._commits < CHECKPOINT_EVERY or self.running is not None:
            return
        self._commits = 0
        self.running = future = asyncio.get_running_loop().run_in_executor(pool, self._passive)
        future.add_done_callback(self._done)

    async def finish(self, pool: ThreadPoolExecutor) -> None:
        """Wait for the checkpoint under way, then truncate the WAL and close."""
        if self.running is not None:
            await asyncio.shield(self.running)
        if self._conn is not None:
            await asyncio.get_running_loop().run_in_executor(pool, self._truncate_and_close)

    def _passive(self) -> None:
        assert self._conn is not None
        # PASSIVE: copies what no reader still needs, never waits on writers or readers.
        self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _done(self, future: asyncio.Future[None]) -> None:
        self.running = None
        if not future.cancelled() and (error := future.exception()) is not None:
            log.warning("SQLite checkpoint failed: %s", error)

    def _truncate_and_close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:  # another process reads: the next start checkpoints
            log.info("SQLite checkpoint at close skipped: %s", exc)
        finally:
            conn.close()

"""The embedded default session store: one SQLite file. This module holds the session map,
dedupe keys and commits; the history is :mod:`.sqlite_history`, the queues
:mod:`.sqlite_queues`, the legs' outcomes :mod:`.sqlite_outcomes`, the authorization codes
:mod:`.sqlite_codes`.

One connection runs every statement (:mod:`.sqlite_db`): on the event loop itself with
``synchronous = NORMAL``, where a commit is a write into the page cache and the checkpoints
that fsync run on a worker thread; on its own worker thread with ``FULL``, where every
commit fsyncs. Single operations are single statements in autocommit mode (see
:mod:`connector.store.sqlite_statements`); a unit of work (``commit``) and the recording of a
user's message (``inbound_put``) are one ``BEGIN IMMEDIATE`` transaction each, run whole.
WAL journaling lets a second process (``midtier sessions``) read while the server writes.
``normal`` (the default): a commit survives the process being killed; ``full``: also the
machine losing power, at the price of an fsync per commit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from connector.activity import now
from connector.errors import ConflictError
from connector.records import Changes
from connector.sessions import MidTierSession
from connector.store import sqlite_migrate
from connector.store import sqlite_schema as schema
from connector.store import sqlite_statements as sql
from connector.store import sqlite_tx as tx
from connector.store.common import Clock, Stamper, close_expired, new_session
from connector.store.sqlite_cache import SessionCache
from connector.store.sqlite_codes import SqliteCodes
from connector.store.sqlite_db import Database
from connector.store.sqlite_history import SqliteHistory
from connector.store.sqlite_outcomes import SqliteOutcomes
from connector.store.sqlite_queues import SqliteQueues
from connector.store.sqlite_rows import (
    idle_params,
    insert_params,
    list_params,
    session_from,
    to_us,
    update_params,
)

Synchronous = Literal["normal", "full"]


class SqliteStore(SqliteHistory, SqliteQueues, SqliteOutcomes, SqliteCodes):
    """A :class:`~connector.interfaces.SessionStore` in one SQLite file.

    ``path`` is a file path (its parent directories are created by :meth:`start`) or
    ``":memory:"``. ``clock`` supplies the current time; tests pass one they control.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        clock: Clock = now,
        synchronous: Synchronous = "normal",
        commit_window_s: float = 0.0,
    ) -> None:
        self.path = str(path)
        self._clock = clock
        self._stamp = Stamper(clock)
        self._pragmas = schema.PRAGMAS + f"PRAGMA synchronous = {synchronous.upper()};\n"
        self._options: dict[str, Any] = {  # the Database's
            "on_loop": synchronous == "normal",
            "commit_window_s": commit_window_s,
        }
        self._conn: Database | None = None
        self._seq = 0  # the queues' last place given: the file's highest when started
        self._cache = SessionCache()

    @property
    def _db(self) -> Database:
        if self._conn is None:
            raise RuntimeError(f"SqliteStore({self.path!r}) is not started")
        return self._conn

    async def start(self) -> None:
        """Open the file (created readable by its owner only) and create the schema if
        needed (idempotent).

        Raises ``ConfigError`` when the file was written by a newer schema version.
        """
        if self._conn is not None:
            return
        db = Database(self.path, self._pragmas, **self._options)
        await db.open()
        try:
            await sqlite_migrate.migrate(db, self.path)
            [(highest,)] = await db.fetchall(sql.MAX_QUEUE_SEQ)
        except BaseException:
            await db.close()
            raise
        self._conn, self._seq = db, int(highest or 0)

    async def close(self) -> None:
        """Close the connection; ``start`` may open it again."""
        db, self._conn = self._conn, None
        self._cache.clear()  # another process may write the file before it is opened again
        if db is not None:
            await db.close()

    # ------------------------------------------------------------------ sessions

    async def find_or_create(
        self, channel: str, channel_conversation_id: str, user_id: str
    ) -> tuple[MidTierSession, bool]:
        """The active session for a channel conversation, created if missing (bool: created).

        Atomic through the unique index on active sessions: of concurrent creators one
        inserts, the others read its session.
        """
        key = (channel, channel_conversation_id)
        for _ in range(3):
            rows = await self._db.fetchall(sql.SELECT_ACTIVE, key)
            if rows:
                return session_from(next(iter(rows))), False
            session = new_session(user_id, channel, channel_conversation_id, self._stamp())
            if await self._db.fetchall(sql.INSERT_NEW, insert_params(session)):
                return session, True
        # Only if the winner's session was closed again between our insert and read, thrice.
        raise ConflictError(f"could not find or create a session for {channel}:{key[1]}")

    async def _one(self, statement: str, params: tuple[Any, ...]) -> MidTierSession | None:
        rows = await self._db.fetchall(statement, params)
        for row in rows:
            return session_from(row)
        return None

    async def get(self, session_id: str) -> MidTierSession | None:
        """The session with this id, if any (as this process last committed it, if it did:
        :mod:`.sqlite_cache` says why that is safe)."""
        found = self._cache.take(session_id)
        return found if found is not None else await self._one(sql.SELECT_BY_ID, (session_id,))

    def keep(self, session: MidTierSession) -> None:
        """Hand ``session`` itself to the next ``get`` of it (see :mod:`.sqlite_cache`)."""
        self._cache.keep(session)

    async def by_channel(self, channel: str, channel_conversation_id: str) -> MidTierSession | None:
        """The newest session of a channel conversation, active or closed."""
        return await self._one(sql.SELECT_BY_CHANNEL, (channel, channel_conversation_id))

    async def by_provider(
        self, provider: str, provider_conversation_id: str
    ) -> MidTierSession | None:
        """The session any leg of which has this provider conversation (the latest saved)."""
        return await self._one(sql.SELECT_BY_PROVIDER, (provider, provider_conversation_id))

    async def by_user(self, user_id: str) -> list[MidTierSession]:
        """Every session of a user, most recently updated first."""
        return [session_from(r) for r in await self._db.fetchall(sql.SELECT_BY_USER, (user_id,))]

    async def by_identity(self, identity: str) -> list[MidTierSession]:
        """Active sessions whose verified claims carry ``identity``, newest update first."""
        rows = await self._db.fetchall(sql.SELECT_BY_IDENTITY, (identity,))
        return [session_from(r) for r in rows]

    async def save(self, session: MidTierSession) -> MidTierSession:
        """Write if ``session.version`` is current (0 for a new session), else ``ConflictError``.

        Returns a copy with the version bumped and ``updated_at`` set; ``session`` itself is
        not changed, but the copy shares its nested objects (legs, claims...).
        """

        def write(saved: MidTierSession, data: str, due: bool) -> Awaitable[None]:
            return self._db.run(tx.save, saved, session.version, data, due)

        return await self._write(session, session.version, write)

    async def list_sessions(
        self, *, status: str | None = None, provider: str | None = None, limit: int = 100
    ) -> list[MidTierSession]:
        """Newest (``updated_at``) first. ``provider`` filters on the open leg's provider."""
        limit = max(limit, 0)
        if status is None and provider is None:
            rows = await self._db.fetchall(sql.LIST_ALL, (limit,))
        elif status is None:
            rows = await self._db.fetchall(sql.LIST_BY_PROVIDER, (provider, limit))
        elif provider is None:
            rows = await self._db.fetchall(sql.LIST_BY_STATUS, list_params(status, limit))
        else:
            rows = await self._db.fetchall(sql.LIST_BY_STATUS_PROVIDER, (status, provider, limit))
        return [session_from(r) for r in rows]

    async def expire(self, idle_before: datetime) -> int:
        """Close active sessions not updated since ``idle_before``; return how many.

        Each one's open leg is closed with reason ``"expired"`` and its version is bumped, so
        a holder of an older copy gets ``ConflictError`` on save; a session saved meanwhile
        is left alone. Also drops expired dedupe keys and authorization codes.
        """
        page, at, count = idle_params(idle_before, sql.EXPIRE_PAGE), self._stamp(), 0
        while True:
            rows = await self._db.fetchall(sql.SELECT_IDLE, page)
            params, ids = [], []
            for row in rows:
                session = session_from(row)
                expected = session.version
                close_expired(session, at)
                session.version += 1
                session.updated_at = at
                params.append(update_params(session, expected))
                ids.append(session.id)
            try:
                closed = await self._db.executemany(sql.UPDATE_SAVED, params) if params else 0
            finally:  # which of them were closed (not saved meanwhile) is not known here
                for session_id in ids:
                    self._cache.drop(session_id)
            count += closed
            if len(rows) < sql.EXPIRE_PAGE or closed == 0:  # the last page, or no progress
                break
        current = to_us(self._clock())
        await self._db.execute(sql.PURGE_DEDUPE, (current,))
        await self._db.execute(sql.PURGE_CODES, (current,))
        return count

    async def open_leg_counts(self) -> dict[str, int]:
        """How many active sessions have an open leg with each provider, counted in SQL."""
        rows = await self._db.fetchall(sql.OPEN_LEG_COUNTS)
        return {str(provider): int(n) for provider, n in rows}

    async def open_conversations(self, provider: str) -> dict[str, str]:
        """Provider conversation id -> session id of the active sessions whose open leg is
        with ``provider``."""
        rows = await self._db.fetchall(sql.OPEN_CONVERSATIONS, (provider,))
        return {str(conversation): str(session_id) for conversation, session_id in rows}

    async def idle_sessions(self, before: datetime, limit: int = 100) -> list[str]:
        """Ids of active sessions not updated since ``before``, longest idle first."""
        rows = await self._db.fetchall(sql.SELECT_IDLE_IDS, idle_params(before, limit))
        return [str(session_id) for (session_id,) in rows]

    # ------------------------------------------------------------------ dedupe

    async def seen(self, key: str, ttl_seconds: float) -> bool:
        """Record ``key`` for ``ttl_seconds``; True if it was already recorded and unexpired."""
        return await self._db.execute(sql.SEEN, (key, *self.seen_window(ttl_seconds))) == 0

    # ------------------------------------------------------------------ commit

    async def commit(self, changes: Changes) -> MidTierSession:
        """Apply a unit of work in one transaction: everything, or nothing."""
        seqs = [self.next_seq() for _ in changes.outbox]
        seen = self.seen_window(changes.dedupe_ttl_s)

        def write(saved: MidTierSession, data: str, due: bool) -> Awaitable[None]:
            return self._db.transaction(
                lambda conn: tx.commit(conn, changes, saved, seqs, seen, data, due)
            )

        return await self._write(changes.session, changes.expected_version, write)

    async def _write(
        self,
        read: MidTierSession,
        expected: int,
        write: Callable[[MidTierSession, str, bool], Awaitable[None]],
    ) -> MidTierSession:
        """The next version of ``read`` (stored at ``expected``), written by ``write(saved,
        its JSON, whether its idle_at is due to move)``; what was committed is kept in the
        cache, and a session whose write failed (a conflict, a repeat, the disk) is dropped
        from it, to be read from the file again."""
        saved = read.model_copy(update={"version": expected + 1, "updated_at": self._stamp()})
        data = saved.model_dump_json()
        try:
            await write(saved, data, _due(read, saved))
        except BaseException:
            self._cache.drop(saved.id)
            raise
        self._cache.put(saved.id, saved.version, data)
        return saved


def _due(read: MidTierSession, saved: MidTierSession) -> bool:
    """Whether ``saved`` comes a minute or more after the save of the copy it was made from,
    so that its place in sessions_idle is sure to move (idle_at is never after that save)."""
    return to_us(saved.updated_at) - to_us(read.updated_at) >= sql.IDLE_STEP_US

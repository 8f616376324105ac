"""The SQLite store's queues: the outbox, the provider inbox and the durable inbound.

Each entry is kept until the part that consumes it says it is done, in the order of its
``seq``: one counter for the three queues, continued from the highest place in the file when
the store starts. Recording a user's activity (``inbound_put``) is one ``BEGIN IMMEDIATE``
transaction with its dedupe key, its session and its transcript entry
(:func:`connector.store.sqlite_tx.inbound_put`).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from connector.records import InboundEntry, InboxEntry, OutboxEntry
from connector.sessions import MidTierSession
from connector.store import sqlite_statements as sql
from connector.store import sqlite_tx as tx
from connector.store.common import Clock, Stamper, as_utc, new_session
from connector.store.sqlite_cache import SessionCache
from connector.store.sqlite_db import Database
from connector.store.sqlite_rows import outbox_from, outbox_params, to_us


class SqliteQueues:
    """The queues' methods of :class:`~connector.store.sqlite.SqliteStore` (as
    :class:`~connector.store.memory_queues.MemoryQueues` are the memory store's): on the
    store's connection (``_db``), with its ``clock`` and ``stamp``, so that a session created
    by ``inbound_put`` orders with those it saves. ``_seq`` is the highest place the file's
    queues hold, set when the store starts.
    """

    _seq: int
    _clock: Clock
    _cache: SessionCache
    _stamp: Stamper

    @property
    def _db(self) -> Database:
        raise NotImplementedError  # the store's open connection

    def next_seq(self) -> int:
        """A queue entry's place: rising, unique, the clock's microseconds where it can (so
        that order holds across restarts even if the file's highest seq was lost)."""
        self._seq = max(self._seq + 1, time.time_ns() // 1000)
        return self._seq

    # ------------------------------------------------------------------ inbound

    async def inbound_put(self, entry: InboundEntry, ttl_seconds: float) -> InboundEntry | None:
        """Record a user's activity with its dedupe key and session, in one transaction.

        None for a duplicate (nothing written).
        """
        current = as_utc(self._clock())
        seen = self.seen_window(ttl_seconds, current)

        created: list[tuple[MidTierSession, str]] = []

        def fresh() -> tuple[MidTierSession, str]:  # only if the conversation has no session
            session = new_session(
                entry.user_id,
                entry.channel,
                entry.conversation,
                current,
                updated_at=self._stamp(),
                channel_state=entry.channel_state,
            )
            created[:] = [(session, session.model_dump_json())]  # a group's rerun makes anew
            return created[0]

        seq = self.next_seq()
        stored = await self._db.transaction(
            lambda conn: tx.inbound_put(conn, entry, seen, fresh, seq)
        )
        if stored is not None and created and created[0][0].id == stored.session_id:
            # The processing that follows reads it at once: from here, not from the file.
            session, data = created[0]
            self._cache.put(session.id, session.version, data)
            self._cache.keep(session)
        return stored

    def seen_window(self, ttl_seconds: float, at: datetime | None = None) -> tuple[int, int]:
        """A dedupe key's expiry if remembered now (or ``at``), and now: microseconds."""
        current = as_utc(self._clock()) if at is None else at
        return to_us(current + timedelta(seconds=ttl_seconds)), to_us(current)

    async def inbound_target(self, entry: InboundEntry) -> str | None:
        """The active session ``entry`` would be recorded into (None: none yet, or a repeat)."""
        key = (entry.channel, entry.conversation)
        if entry.dedupe_key is None:
            rows = await self._db.fetchall(sql.ACTIVE_ID, key)
        else:
            params = (*key, entry.dedupe_key, to_us(as_utc(self._clock())))
            rows = await self._db.fetchall(sql.ACTIVE_ID_UNSEEN, params)
        return str(rows[0][0]) if rows else None

    async def inbound_pending(self, channel: str, conversation: str) -> list[InboundEntry]:
        """Unprocessed activities of one channel conversation, in record order."""
        rows = await self._db.fetchall(sql.INBOUND_PENDING, (channel, conversation))
        return [InboundEntry.model_validate_json(data) for (data,) in rows]

    async def inbound_keys(self) -> list[tuple[str, str]]:
        """Every (channel, conversation) with activities waiting, oldest first."""
        rows = await self._db.fetchall(sql.INBOUND_KEYS)
        return [(str(channel), str(conversation)) for channel, conversation in rows]

    # ------------------------------------------------------------------ outbox

    async def outbox_put(self, entry: OutboxEntry) -> None:
        """Queue an entry; putting an id that is already queued does nothing."""
        await self._db.execute(sql.OUTBOX_PUT, outbox_params(entry, self.next_seq()))

    async def outbox_pending(self, channel: str, conversation_id: str) -> list[OutboxEntry]:
        """Entries not yet delivered for one conversation, in the order they were put."""
        rows = await self._db.fetchall(sql.OUTBOX_PENDING, (channel, conversation_id))
        return [outbox_from(r) for r in rows]

    async def outbox_due(self, before: datetime, limit: int = 100) -> list[OutboxEntry]:
        """Entries whose next attempt is at or before ``before``: earliest first, then put order."""
        rows = await self._db.fetchall(sql.OUTBOX_DUE, (to_us(before), max(limit, 0)))
        return [outbox_from(r) for r in rows]

    async def outbox_heads(self, before: datetime, limit: int = 100) -> list[OutboxEntry]:
        """Each conversation's oldest entry, where its next attempt is at or before ``before``:
        earliest first, then put order."""
        rows = await self._db.fetchall(sql.OUTBOX_HEADS, (to_us(before), max(limit, 0)))
        return [outbox_from(r) for r in rows]

    async def outbox_done(self, entry_id: str) -> None:
        """Forget a delivered entry (unknown ids are ignored)."""
        await self._db.execute(sql.OUTBOX_DONE, (entry_id,))

    async def outbox_retry(self, entry_id: str, next_attempt_at: datetime, error: str) -> None:
        """Count a failed attempt and schedule the next (unknown ids are ignored)."""
        await self._db.execute(sql.OUTBOX_RETRY, (to_us(next_attempt_at), error, entry_id))

    # ------------------------------------------------------------------ provider inbox

    async def inbox_put(self, entry: InboxEntry) -> None:
        """Keep an accepted provider callback (an id already kept is ignored)."""
        seq = self.next_seq()
        params = (entry.id, seq, entry.provider, entry.conversation, entry.model_dump_json())
        await self._db.execute(sql.INBOX_PUT, params)

    async def inbox_pending(self, provider: str, conversation: str) -> list[InboxEntry]:
        """Callbacks of one provider conversation not yet applied, in the order they were put."""
        rows = await self._db.fetchall(sql.INBOX_PENDING, (provider, conversation))
        return [InboxEntry.model_validate_json(row[0]) for row in rows]

    async def inbox_keys(self) -> list[tuple[str, str]]:
        """Every (provider, conversation) with callbacks waiting, oldest first."""
        rows = await self._db.fetchall(sql.INBOX_KEYS)
        return [(str(row[0]), str(row[1])) for row in rows]

    async def inbox_done(self, entry_id: str) -> None:
        """Forget an applied callback (unknown ids are ignored)."""
        await self._db.execute(sql.INBOX_DONE, (entry_id,))

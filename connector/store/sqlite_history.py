"""The SQLite store's history: each session's transcript and route decisions, in one table.

A row holds what one unit of work wrote of a session's history (its lines, its decisions,
or both), appended after the session's last row (:data:`~.sqlite_schema.HISTORY`), so that
the writes of one message land on the pages its others write too. A unit of work's rows are
written by :func:`connector.store.sqlite_tx.commit`; this part holds the single appends and
the reads.
"""

from __future__ import annotations

from typing import Any

from connector.errors import NotFound
from connector.routing.decision import RouteDecision
from connector.sessions import TranscriptEntry
from connector.store import sqlite_statements as sql
from connector.store.sqlite_db import Database
from connector.store.sqlite_rows import (
    decisions_from,
    history_params,
    lines_from,
    newest_lines_from,
)


class SqliteHistory:
    """The history methods of :class:`~connector.store.sqlite.SqliteStore`, on its
    connection (``_db``)."""

    @property
    def _db(self) -> Database:
        raise NotImplementedError  # the store's open connection

    async def append_transcript(self, session_id: str, entry: TranscriptEntry) -> TranscriptEntry:
        """Append ``entry`` with the next ``seq`` and return a copy carrying it.

        Raises ``NotFound`` for an unknown session.
        """
        for (seq,) in await self._append(history_params(session_id, [entry], [])):
            return entry.model_copy(update={"seq": seq})
        raise NotFound(f"unknown session {session_id}")

    async def transcript(
        self, session_id: str, *, last: int | None = None, before: int | None = None
    ) -> list[TranscriptEntry]:
        """Oldest first; ``last`` keeps only the newest entries (``last <= 0``: none);
        ``before`` only those with a lower ``seq``."""
        below = sql.NO_SEQ_LIMIT if before is None else before
        if last is None:
            rows = await self._db.fetchall(sql.SELECT_TRANSCRIPT, (session_id, below))
            return lines_from(rows, below)
        if last <= 0:
            return []
        found = await self._db.fetchall(sql.SELECT_TRANSCRIPT_LAST, (session_id, below, last))
        return newest_lines_from(found, below, last)

    async def append_decision(self, session_id: str, decision: RouteDecision) -> None:
        """Record a route decision; raises ``NotFound`` for an unknown session."""
        if not await self._append(history_params(session_id, [], [decision])):
            raise NotFound(f"unknown session {session_id}")

    async def _append(self, params: tuple[Any, ...]) -> list[Any]:
        """One row appended (with the writes of the same turn of the loop); its seq, or no
        row for an unknown session."""
        return await self._db.transaction(
            lambda conn: conn.execute(sql.APPEND_KNOWN, params).fetchall(), one=True
        )

    async def decisions(self, session_id: str) -> list[RouteDecision]:
        """The session's route decisions, oldest first."""
        return decisions_from(await self._db.fetchall(sql.SELECT_DECISIONS, (session_id,)))

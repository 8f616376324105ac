"""The SQLite store's outcomes: how each leg ended for its provider, a row per leg
(:data:`OUTCOMES`, schema 10), kept by the unit of work that decided it
(:func:`connector.store.sqlite_tx.commit`) and counted here.

A leg's row follows :class:`~connector.records.OutcomeEntry`: an explicit outcome replaces
what the row says, one that is not only replaces an outcome that is not explicit either,
and ``switched`` stays once set (:data:`KEEP`). In an UPDATE every expression reads the row
as it was, so the ``CASE`` of each column sees the old ``explicit``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from connector.records import OutcomeCount, OutcomeEntry
from connector.store.sqlite_db import Database
from connector.store.sqlite_rows import from_us, to_us

OUTCOMES = """
CREATE TABLE IF NOT EXISTS outcomes (
    leg_id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    provider TEXT NOT NULL,
    intent TEXT NOT NULL,
    kind TEXT NOT NULL,
    success INTEGER NOT NULL,
    detail TEXT NOT NULL,
    explicit INTEGER NOT NULL,
    switched INTEGER NOT NULL,
    at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS outcomes_at ON outcomes(at);
"""

_REPLACES = "excluded.explicit OR NOT explicit"
KEEP = f"""
INSERT INTO outcomes(leg_id, session_id, provider, intent, kind, success, detail, explicit,
                     switched, at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(leg_id) DO UPDATE SET
    kind = CASE WHEN {_REPLACES} THEN excluded.kind ELSE kind END,
    success = CASE WHEN {_REPLACES} THEN excluded.success ELSE success END,
    detail = CASE WHEN {_REPLACES} THEN excluded.detail ELSE detail END,
    at = CASE WHEN {_REPLACES} THEN excluded.at ELSE at END,
    explicit = explicit OR excluded.explicit,
    switched = switched OR excluded.switched
"""
_SUMS = "SUM(success), COUNT(*), SUM(switched) FROM outcomes WHERE at >= ?"
COUNTS = f"SELECT provider, intent, {_SUMS} GROUP BY provider, intent ORDER BY provider, intent"
COUNTS_BUCKETED = f"""
SELECT provider, intent, at / ? AS bucket, {_SUMS}
GROUP BY provider, intent, bucket ORDER BY provider, intent, bucket
"""
PURGE = "DELETE FROM outcomes WHERE at < ?"


def outcome_params(outcomes: Iterable[OutcomeEntry]) -> list[tuple[Any, ...]]:
    """The parameters of :data:`KEEP` for each outcome."""
    return [
        (
            o.leg_id,
            o.session_id,
            o.provider,
            o.intent,
            o.kind,
            int(o.success),
            o.detail,
            int(o.explicit),
            int(o.switched),
            to_us(o.at),
        )
        for o in outcomes
    ]


class SqliteOutcomes:
    """The outcome methods of :class:`~connector.store.sqlite.SqliteStore`, on its
    connection (``_db``)."""

    @property
    def _db(self) -> Database:
        raise NotImplementedError  # the store's open connection

    async def outcome_counts(
        self, since: datetime, *, bucket_s: int | None = None
    ) -> list[OutcomeCount]:
        """Successes, totals and switches since ``since`` per provider and intent (and
        bucket of ``bucket_s`` seconds since the epoch), counted in SQL."""
        if bucket_s is None:
            rows = await self._db.fetchall(COUNTS, (to_us(since),))
            return [OutcomeCount(p, i, int(g), int(n), int(s)) for p, i, g, n, s in rows]
        width = int(bucket_s) * 1_000_000
        rows = await self._db.fetchall(COUNTS_BUCKETED, (width, to_us(since)))
        return [
            OutcomeCount(p, i, int(g), int(n), int(s), from_us(b * width))
            for p, i, b, g, n, s in rows
        ]

    async def outcomes_purge(self, before: datetime) -> int:
        """Forget the outcomes older than ``before``; return how many."""
        return await self._db.execute(PURGE, (to_us(before),))

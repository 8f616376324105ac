"""The SQLite store's transactions: functions run whole on the connection's thread.

Each takes the ``sqlite3`` connection; :class:`~connector.store.sqlite_db.Database` runs
``inbound_put`` and ``commit`` inside one ``BEGIN IMMEDIATE`` (all or nothing).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from connector.errors import ConflictError, RepeatedMessage
from connector.records import Changes, InboundEntry
from connector.sessions import MidTierSession
from connector.store import sqlite_statements as sql
from connector.store.common import user_entry
from connector.store.sqlite_outcomes import KEEP, outcome_params
from connector.store.sqlite_rows import (
    code_params,
    history_params,
    insert_params,
    outbox_params,
    touched_params,
    update_params,
)


def save(
    conn: sqlite3.Connection, saved: MidTierSession, expected: int, data: str, due: bool
) -> None:
    """Write ``saved`` (``data``: its JSON) over the row at version ``expected`` (0: insert),
    or ConflictError. ``due``: the save it follows was a minute or more before, so that
    its idle_at moves (UPDATE_MOVED, not UPDATE_TOUCHED, first)."""
    try:
        if expected == 0:
            cursor = conn.execute(sql.INSERT_SAVED, insert_params(saved, data))
        else:
            cursor = conn.execute(
                sql.UPDATE_MOVED if due else sql.UPDATE_TOUCHED,
                touched_params(saved, expected, data, move=due),
            )
            if cursor.rowcount != 1 and not due:  # idle_at due to move, a key changed...
                moved = touched_params(saved, expected, data, move=True)
                cursor = conn.execute(sql.UPDATE_MOVED, moved)
            if cursor.rowcount != 1:  # a key changed (or the version is stale: then 0 again)
                cursor = conn.execute(sql.UPDATE_SAVED, update_params(saved, expected, data))
    except sqlite3.IntegrityError as exc:
        raise ConflictError(
            f"session {saved.id}: its channel conversation has another active session"
        ) from exc
    if cursor.rowcount != 1:
        raise ConflictError(
            f"session {saved.id}: version {expected} is not current"
            " (changed since read, or never stored)"
        )


def inbound_put(
    conn: sqlite3.Connection,
    entry: InboundEntry,
    seen: tuple[int, int],
    fresh: Callable[[], tuple[MidTierSession, str]],
    seq: int,
) -> InboundEntry | None:
    if entry.dedupe_key is not None:
        expires, current = seen
        if conn.execute(sql.SEEN, (entry.dedupe_key, expires, current)).rowcount == 0:
            return None
    key = (entry.channel, entry.conversation)
    row = conn.execute(sql.SELECT_ACTIVE_LEG, key).fetchone()
    open_leg: tuple[str, str] | None
    if row is not None:
        session_id, provider, leg_id, closed_at = row
        open_leg = (provider, leg_id) if provider is not None and closed_at is None else None
    else:
        created, data = fresh()
        conn.execute(sql.INSERT_NEW, insert_params(created, data)).fetchall()
        session_id, open_leg = created.id, None
    stored = entry.model_copy(update={"session_id": session_id})
    said = user_entry(stored, open_leg)
    if said is not None:
        conn.execute(sql.APPEND_HISTORY, history_params(session_id, [said], []))
    conn.execute(
        sql.INBOUND_PUT,
        (stored.id, seq, stored.channel, stored.conversation, stored.model_dump_json()),
    )
    return stored


def commit(
    conn: sqlite3.Connection,
    changes: Changes,
    saved: MidTierSession,
    seqs: list[int],
    seen: tuple[int, int],
    data: str,
    due: bool,
) -> None:
    """Write a unit of work (``seqs``: the places of its outbox entries; ``seen``: its dedupe
    key's expiry and the current time, in microseconds; ``data``, ``due``: as for ``save``)."""
    key = changes.dedupe_key
    if key is not None and conn.execute(sql.SEEN, (key, *seen)).rowcount == 0:
        raise RepeatedMessage(f"dedupe key {key!r} is recorded already")
    save(conn, saved, changes.expected_version, data, due)
    if changes.transcript or changes.decisions:
        row = history_params(saved.id, changes.transcript, changes.decisions)
        conn.execute(sql.APPEND_HISTORY, row)
    if changes.outbox:
        params = [outbox_params(e, s) for e, s in zip(changes.outbox, seqs, strict=True)]
        conn.executemany(sql.OUTBOX_PUT, params)
    if changes.inbound_done:
        conn.executemany(sql.INBOUND_DONE, [(i,) for i in changes.inbound_done])
    if changes.inbox_done:
        conn.executemany(sql.INBOX_DONE, [(i,) for i in changes.inbox_done])
    if changes.outbox_done:
        conn.executemany(sql.OUTBOX_DONE, [(i,) for i in changes.outbox_done])
    if changes.outcomes:
        conn.executemany(KEEP, outcome_params(changes.outcomes))
    if changes.codes:
        conn.executemany(sql.PUT_CODE, [code_params(h, r) for h, r in changes.codes])

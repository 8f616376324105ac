"""How the SQLite store's models map onto rows: times as microseconds, sessions and outbox
entries to and from the columns of their tables.

Times are stored as integer microseconds since the Unix epoch (UTC), so comparisons and
ordering in SQL are exact. Each model is stored whole as JSON in ``data``; the parameters
here give the other columns (copies for lookups) in the order of the statements of
:mod:`.sqlite_statements`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter
from pydantic_core import to_json

from connector.records import AuthCodeRecord, OutboxEntry
from connector.routing.decision import RouteDecision
from connector.sessions import MidTierSession, TranscriptEntry
from connector.store.common import ONE_US, as_utc
from connector.store.sqlite_statements import IDLE_STEP_US

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LINES = TypeAdapter(list[TranscriptEntry])
_DECISIONS = TypeAdapter(list[RouteDecision])


def to_us(value: datetime) -> int:
    """Microseconds since the epoch, exactly (naive datetimes are taken as UTC)."""
    return (as_utc(value) - EPOCH) // ONE_US


def from_us(value: int) -> datetime:
    """The UTC datetime ``value`` microseconds after the epoch."""
    return EPOCH + timedelta(microseconds=value)


def session_from(row: Iterable[Any]) -> MidTierSession:
    """The session in a ``SELECT data`` row."""
    (data,) = row
    return MidTierSession.model_validate_json(data)


def outbox_from(row: Iterable[Any]) -> OutboxEntry:
    """The entry in an outbox row; the columns that change on retry override ``data``."""
    data, attempts, next_attempt_at, last_error = row
    entry = OutboxEntry.model_validate_json(data)
    entry.attempts = attempts
    entry.next_attempt_at = from_us(next_attempt_at)
    entry.last_error = last_error
    return entry


def claims_json(session: MidTierSession) -> str:
    """The ``claims`` column: the session's claims as JSON (what the identities index
    follows)."""
    return to_json(session.claims).decode()


def open_leg(session: MidTierSession) -> str | None:
    """The ``open_leg`` column: the id of the session's open leg, if any."""
    leg = session.current_leg
    return leg.id if leg is not None else None


def insert_params(session: MidTierSession, data: str | None = None) -> tuple[Any, ...]:
    """Column values of ``sessions`` for an INSERT, in schema order (``data``: the session's
    JSON, when already made); its ``idle_at`` is its ``updated_at``."""
    updated_at = to_us(session.updated_at)
    return (
        session.id,
        session.user_id,
        session.channel,
        session.channel_conversation_id,
        session.status,
        session.current_provider,
        session.version,
        to_us(session.created_at),
        updated_at,
        session.model_dump_json() if data is None else data,
        len(session.legs),
        open_leg(session),
        claims_json(session),
        updated_at,
    )


def touched_params(
    saved: MidTierSession, expected_version: int, data: str, *, move: bool = False
) -> tuple[Any, ...]:
    """Values for ``UPDATE_TOUCHED`` (it leaves ``idle_at`` where it is, when that is less
    than ``IDLE_STEP_US`` before this save and not after it), or with ``move`` for
    ``UPDATE_MOVED`` (``idle_at`` moved to this save)."""
    updated_at = to_us(saved.updated_at)
    unchanged = (
        saved.id,
        expected_version,
        saved.user_id,
        saved.channel,
        saved.channel_conversation_id,
        saved.status,
        saved.current_provider,
        len(saved.legs),
        claims_json(saved),
    )
    if move:
        return (saved.version, updated_at, data, updated_at, *unchanged)
    return (saved.version, updated_at, data, *unchanged, updated_at - IDLE_STEP_US, updated_at)


def update_params(
    saved: MidTierSession, expected_version: int, data: str | None = None
) -> tuple[Any, ...]:
    """Values for ``UPDATE_SAVED``: write ``saved`` (``data``: its JSON, when already made)
    over the row still at ``expected_version``, ``idle_at`` moved to this save."""
    updated_at = to_us(saved.updated_at)
    return (
        saved.user_id,
        saved.channel,
        saved.channel_conversation_id,
        saved.status,
        saved.current_provider,
        saved.version,
        updated_at,
        saved.model_dump_json() if data is None else data,
        len(saved.legs),
        open_leg(saved),
        claims_json(saved),
        updated_at,
        saved.id,
        expected_version,
    )


def outbox_params(entry: OutboxEntry, seq: int) -> tuple[Any, ...]:
    """Values for ``OUTBOX_PUT``."""
    return (
        entry.id,
        seq,
        entry.session_id,
        entry.channel,
        entry.conversation_id,
        to_us(entry.next_attempt_at),
        entry.attempts,
        entry.last_error,
        entry.model_dump_json(),
    )


def history_params(
    session_id: str, lines: Sequence[TranscriptEntry], decisions: Sequence[RouteDecision]
) -> tuple[Any, ...]:
    """Values for ``APPEND_HISTORY`` and ``APPEND_KNOWN``: one row of a session's history,
    its lines and its decisions as JSON arrays (NULL for none)."""
    return (
        session_id,
        len(lines),
        _LINES.dump_json(list(lines)).decode() if lines else None,
        _DECISIONS.dump_json(list(decisions)).decode() if decisions else None,
    )


def lines_from(rows: Iterable[Any], before: int) -> list[TranscriptEntry]:
    """The transcript lines of history rows ``(seq, transcript)`` (oldest first), each with
    its seq, those below ``before`` only."""
    entries = []
    for first, data in rows:
        for seq, entry in enumerate(_LINES.validate_json(data), first):
            if seq >= before:
                break
            entry.seq = seq
            entries.append(entry)
    return entries


def newest_lines_from(rows: Iterable[Any], before: int, last: int) -> list[TranscriptEntry]:
    """The newest ``last`` lines below ``before`` of history rows ``(seq, lines,
    transcript)``, newest row first; only the rows that hold them are parsed."""
    needed = []
    count = 0
    for first, lines, data in rows:
        needed.append((first, data))
        count += min(lines, before - first)
        if count >= last:
            break
    return lines_from(reversed(needed), before)[-last:]


def decisions_from(rows: Iterable[Any]) -> list[RouteDecision]:
    """The route decisions of history rows ``(decisions,)``, oldest first."""
    return [decision for (data,) in rows for decision in _DECISIONS.validate_json(data)]


def idle_params(before: datetime, page: int) -> tuple[Any, ...]:
    """Values for ``SELECT_IDLE`` and ``SELECT_IDLE_IDS``: sessions last saved before
    ``before``, ``page`` of them."""
    at, page = to_us(before), max(page, 0)
    return (at, at, at, page, at, page)


def list_params(status: str, limit: int) -> tuple[Any, ...]:
    """Values for ``LIST_BY_STATUS``: the newest ``limit`` sessions of ``status``."""
    limit = max(limit, 0)
    return (status, status, max(limit - 1, 0), limit)


def code_params(code_hash: str, record: AuthCodeRecord) -> tuple[str, str, int]:
    """Values for ``PUT_CODE``: a code's record under its hash."""
    return code_hash, record.model_dump_json(), to_us(record.expires_at)

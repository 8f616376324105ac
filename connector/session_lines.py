"""The line format of ``midtier sessions export``, read back by ``midtier replay``.

One JSON object per session: ``{"session": {...}, "transcript": [...], "decisions": [...]}``
(README.md, "Session export"). It carries what replaying and reading a conversation need,
and nothing a channel or provider keeps for itself: no channel state (the web chat's resume
hash), no claims, slots or bots' leg state, no channel or provider conversation ids, and of
each transcript line's wire activity only its id and input hint.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from connector.routing.decision import RouteDecision
from connector.sessions import MidTierSession, SessionStatus, Speaker, TranscriptEntry


class LineError(ValueError):
    """A line that is not a session of this format; the message says why."""


class ExportedLeg(BaseModel):
    """One leg: which provider held the conversation, on which channel, from when to when."""

    id: str
    channel: str
    provider: str
    opened_at: datetime
    closed_at: datetime | None = None
    open_reason: str = ""
    close_reason: str | None = None


class ExportedSession(BaseModel):
    """The session itself, without anything a channel or provider keeps for itself."""

    id: str
    channel: str
    status: SessionStatus
    created_at: datetime
    updated_at: datetime
    legs: list[ExportedLeg] = []


class ExportedEntry(BaseModel):
    """One transcript line. ``message_id`` is midtier's id of the activity (a user message's
    route decision names it); ``input_hint`` is a reply's (``expectingInput``: a question)."""

    seq: int = 0
    at: datetime
    speaker: Speaker
    text: str | None = None
    provider: str | None = None
    leg_id: str | None = None
    message_id: str | None = None
    input_hint: str | None = None


class SessionLine(BaseModel):
    """One line of an export: a session, its transcript and its route decisions, in order."""

    session: ExportedSession
    transcript: list[ExportedEntry] = []
    decisions: list[RouteDecision] = []


def _entry(entry: TranscriptEntry) -> dict[str, Any]:
    found: dict[str, Any] = entry.model_dump(mode="json", include=_ENTRY_FIELDS)
    message_id = entry.activity.get("id")
    hint = entry.activity.get("inputHint")
    found["message_id"] = message_id if isinstance(message_id, str) else None
    if entry.speaker != "user" and isinstance(hint, str):
        found["input_hint"] = hint
    return found


_ENTRY_FIELDS = {"seq", "at", "speaker", "text", "provider", "leg_id"}
_LEG_FIELDS = set(ExportedLeg.model_fields)
_SESSION_FIELDS = {"id", "channel", "status", "created_at", "updated_at"}


def session_line(
    session: MidTierSession, transcript: list[TranscriptEntry], decisions: list[RouteDecision]
) -> str:
    """The export line of one session (no newline)."""
    head: dict[str, Any] = session.model_dump(mode="json", include=_SESSION_FIELDS)
    head["legs"] = [leg.model_dump(mode="json", include=_LEG_FIELDS) for leg in session.legs]
    line = {
        "session": head,
        "transcript": [_entry(e) for e in transcript],
        "decisions": [d.model_dump(mode="json") for d in decisions],
    }
    return json.dumps(line, separators=(",", ":"))


def parse_line(raw: bytes) -> SessionLine:
    """A line of an export, or ``LineError`` saying in one sentence what is wrong with it."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LineError(f"not UTF-8 text (byte {exc.start + 1})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LineError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise LineError("not valid JSON (nested too deeply)") from None
    if not isinstance(data, dict) or "session" not in data:
        raise LineError('not a session (expected an object with a "session" key)')
    try:
        return SessionLine.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise LineError(f"not a session: {where}: {first['msg']}{more}") from None

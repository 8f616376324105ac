"""Helpers shared by the store backends: timestamps and the expiry rule."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from connector.activity import ActivityTypes
from connector.claims import verified_identities
from connector.records import InboundEntry
from connector.sessions import MidTierSession, TranscriptEntry

Clock = Callable[[], datetime]
"""Returns the current time, timezone-aware. Stores take one so tests can move time."""

ONE_US = timedelta(microseconds=1)
EXPIRED = "expired"


def as_utc(value: datetime) -> datetime:
    """``value`` made timezone-aware; naive datetimes are taken to be UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class Stamper:
    """Strictly increasing timestamps from a clock.

    ``updated_at`` orders "newest first" listings; two saves in the same clock tick (or under
    a frozen test clock) must still order the way they happened.
    """

    __slots__ = ("_clock", "_last")

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._last: datetime | None = None

    def __call__(self) -> datetime:
        stamp = as_utc(self._clock())
        if self._last is not None and stamp <= self._last:
            stamp = self._last + ONE_US
        self._last = stamp
        return stamp


def close_expired(session: MidTierSession, at: datetime) -> None:
    """Mark an idle session closed, closing its open leg with reason ``"expired"``."""
    leg = session.current_leg
    if leg is not None:
        leg.closed_at = at
        leg.close_reason = EXPIRED
    session.status = "closed"


def indexed_identities(session: MidTierSession) -> list[str]:
    """What ``by_identity`` finds the session by: its verified identities while active."""
    return verified_identities(session.claims) if session.status == "active" else []


def new_session(
    user_id: str,
    channel: str,
    conversation: str,
    at: datetime,
    *,
    updated_at: datetime | None = None,
    channel_state: dict[str, Any] | None = None,
) -> MidTierSession:
    """A channel conversation's new active session, as a store creates it (version 1)."""
    return MidTierSession(
        user_id=user_id,
        channel=channel,
        channel_conversation_id=conversation,
        channel_state=dict(channel_state or {}),
        created_at=at,
        updated_at=at if updated_at is None else updated_at,
        version=1,
    )


def user_entry(entry: InboundEntry, open_leg: tuple[str, str] | None) -> TranscriptEntry | None:
    """The transcript entry recorded with a user's message (None for other activities);
    ``open_leg`` is the session's open leg as (provider, leg id).

    Written in the same transaction as the inbound record, so the history a client sees
    holds every message it was told had arrived, processed yet or not.
    """
    if entry.activity.get("type", ActivityTypes.MESSAGE) != ActivityTypes.MESSAGE:
        return None
    text = entry.activity.get("text")
    return TranscriptEntry(
        seq=0,
        at=entry.created_at,
        speaker="user",
        text=text if isinstance(text, str) else None,
        provider=open_leg[0] if open_leg else None,
        leg_id=open_leg[1] if open_leg else None,
        activity=entry.activity,
        ref=entry.ref,
    )


def open_leg_of(session: MidTierSession) -> tuple[str, str] | None:
    """The session's open leg as (provider, leg id), for :func:`user_entry`."""
    leg = session.current_leg
    return (leg.provider, leg.id) if leg is not None else None

"""Helpers shared by the store backends: timestamps and the expiry rule."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from connector.sessions import MidTierSession

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

"""When the outbox tries a reply again after a platform failed, and when it gives up.

A pure policy (no I/O; the time and the randomness are passed in), so that every branch can
be checked with a fake clock. Our own backoff doubles from ``outbox.first_backoff_s`` up to
``outbox.max_backoff_s`` and is jittered ("equal jitter": a random half to all of it), so
conversations that failed together do not all come back at the same instant. A wait the
platform asked for (``Retry-After``, Telegram's ``retry_after``) is a floor, never cut short:
it is capped only by the give-up time, ``outbox.give_up_after_s`` after the entry was
written. A platform that asks to wait beyond that gets the reply given up at once, since
waiting could not help; otherwise the last try is made at the give-up time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from connector.config import OutboxSettings
from connector.errors import ChannelError
from connector.store.common import as_utc

Random = Callable[[], float]  # uniform in [0, 1), like random.random


@dataclass(frozen=True, slots=True)
class Retry:
    """Try again at ``at`` (``delay_s`` from now)."""

    at: datetime
    delay_s: float


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Stop trying; ``reason`` says why, for the session's failure record."""

    reason: str


def backoff(attempts: int, settings: OutboxSettings, rand: Random) -> float:
    """Our own wait in seconds after the ``attempts``-th failure, jittered."""
    exponent = min(max(0, attempts - 1), 64)
    base = min(settings.max_backoff_s, settings.first_backoff_s * 2.0**exponent)
    return base * (0.5 + 0.5 * rand())


def wait_after(error: ChannelError, attempts: int, settings: OutboxSettings, rand: Random) -> float:
    """Our backoff, but never less than the platform asked (then up to a tenth more, for the
    same reason as the jitter)."""
    ours = backoff(attempts, settings, rand)
    asked = error.retry_after
    if asked is None or not asked > 0:  # also NaN
        return ours
    return max(ours, asked * (1.0 + 0.1 * rand()))


def plan(
    error: ChannelError,
    *,
    attempts: int,
    created_at: datetime,
    current: datetime,
    settings: OutboxSettings,
    rand: Random,
) -> Retry | GiveUp:
    """What to do after the ``attempts``-th failed try of an entry written at ``created_at``."""
    limit = settings.give_up_after_s
    left = (as_utc(created_at) + timedelta(seconds=limit) - as_utc(current)).total_seconds()
    if left <= 0:
        return GiveUp(f"not taken within {limit:g} s, {attempts} tries: {error}")
    delay = wait_after(error, attempts, settings, rand)
    if delay > left:
        asked = error.retry_after
        if asked is not None and asked > left:
            return GiveUp(f"the platform asked to wait {asked:g} s, past the give-up time: {error}")
        delay = left  # one last try at the give-up time
    return Retry(at=current + timedelta(seconds=delay), delay_s=delay)

"""What becomes of an outbox entry that its channel did not take.

* ``ChannelError`` (429, 5xx, timeouts): tried again after a jittered backoff, never before
  the ``retry_after`` the platform asked for, and given up ``outbox.give_up_after_s`` after
  the entry's ``created_at`` (:mod:`connector.backoff`).
* ``DeliveryRejected`` (blocked, outside a messaging window): given up at once; the entries
  behind it go on, in order.
* ``ChannelUnavailable`` (nobody connected, e.g. a closed web chat tab): parked until the
  conversation reconnects (``flush``) or a new reply comes. No give-up clock runs: a parked
  reply waits as long as its session is open, and is given up once the session closed (the
  session's idle expiry bounds the wait).

A given-up or rejected entry leaves the outbox once ``on_failure`` (the engine) recorded it
on the session.

The outbox tries entries in order per conversation; this part decides, for the one that
failed, when it is tried again or that it is given up, writes that to the store, and notes
the conversation as held back, so that what comes after it waits behind it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from connector import backoff
from connector.config import OutboxSettings
from connector.errors import ChannelError, ChannelUnavailable
from connector.records import OutboxEntry
from connector.sessions import DeliveryFailure, FailureOutcome, excerpt
from connector.store.common import Clock
from connector.store_protocol import DeliveryStore

log = logging.getLogger("midtier.outbox")

PARK = timedelta(hours=1)  # a parked head is looked at again (is its session still open?)
REASON_CHARS = 300
Key = tuple[str, str]  # (channel, channel conversation id)
OnFailure = Callable[[str, DeliveryFailure], Awaitable[None]]  # (session id, failure)


class Setbacks:
    """Retries, parks or gives up an entry that failed, and records which conversations are
    held back by one: ``backlog`` (and ``parked``, when nobody was connected) are the
    outbox's own sets, which it reads to keep new entries behind the held-back ones.
    """

    def __init__(
        self,
        store: DeliveryStore,
        settings: OutboxSettings,
        *,
        backlog: set[Key],
        parked: set[Key],
        on_failure: OnFailure | None,
        clock: Clock,
        rand: Callable[[], float],
    ) -> None:
        self._store = store
        self.settings = settings
        self._backlog = backlog
        self._parked = parked
        self._on_failure = on_failure
        self._clock = clock
        self._rand = rand

    async def park(self, entry: OutboxEntry, exc: ChannelUnavailable) -> bool:
        """Nobody can receive the entry now: look again later while its session is open,
        give it up once the session closed. False unless it was given up and recorded."""
        session = await self._store.get(entry.session_id)
        if session is None or session.status != "active":
            reason = f"nobody connected before the session closed: {exc}"
            return await self.fail(entry, "given_up", reason)
        await self.schedule(entry, self._clock() + PARK, str(exc))
        self._parked.add((entry.channel, entry.conversation_id))
        return False

    async def retry_later(self, entry: OutboxEntry, exc: ChannelError) -> bool:
        """The platform may take it later: schedule the next try (:mod:`connector.backoff`),
        or give it up when its time is out. False unless it was given up and recorded."""
        current = self._clock()
        decided = backoff.plan(
            exc,
            attempts=entry.attempts + 1,
            created_at=entry.created_at,
            current=current,
            settings=self.settings,
            rand=self._rand,
        )
        if isinstance(decided, backoff.GiveUp):
            return await self.fail(entry, "given_up", decided.reason)
        log.warning(
            "channel %s refused an activity, retrying in %.1fs: %s",
            entry.channel,
            decided.delay_s,
            exc,
            extra={"session": entry.session_id},
        )
        await self.schedule(entry, decided.at, str(exc))
        return False

    async def schedule(self, entry: OutboxEntry, at: datetime, error: str) -> None:
        """Keep the entry for a try at ``at``; its conversation is held back until then."""
        await self._store.outbox_retry(entry.id, at, error[:REASON_CHARS])
        self._backlog.add((entry.channel, entry.conversation_id))

    async def fail(self, entry: OutboxEntry, outcome: FailureOutcome, reason: str) -> bool:
        """Record the entry's failure on its session, then drop it; True once done (the
        entries behind it go on), False if it could not be recorded (it stays, to be tried
        again)."""
        failure = DeliveryFailure(
            at=self._clock(),
            channel=entry.channel,
            activity_id=entry.id,
            excerpt=excerpt(entry.activity.get("text")),
            reason=reason[:REASON_CHARS],
            attempts=entry.attempts + 1,
            outcome=outcome,
        )
        log.warning(
            "a reply on channel %s was %s: %s",
            entry.channel,
            outcome.replace("_", " "),
            failure.reason,
            extra={"session": entry.session_id, "event": "delivery_failed"},
        )
        if self._on_failure is not None:
            try:
                await self._on_failure(entry.session_id, failure)
            except Exception:  # kept, so that it is not lost: recorded on a later try
                log.exception("a delivery failure could not be recorded")
                later = self._clock() + timedelta(seconds=self.settings.max_backoff_s)
                await self.schedule(entry, later, failure.reason)
                return False
        await self._store.outbox_done(entry.id)
        return True

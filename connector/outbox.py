"""Durable outbound delivery.

Every activity for a user is written to the store's outbox before its channel is asked to
send it, and removed only once the channel accepted it. Per conversation, entries leave in
the order they were put: an entry that fails holds back the ones behind it, so a user never
sees replies out of order. Failures are retried with exponential backoff; a channel with
nobody listening (``ChannelUnavailable``, e.g. a closed web chat tab) is parked until the
conversation reconnects and calls :meth:`Outbox.flush`. The outbox entry id is the activity
id, which a channel can use as an idempotency key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from datetime import timedelta

from connector.activity import Activity, new_activity_id, now
from connector.errors import ChannelError, ChannelUnavailable
from connector.interfaces import ChannelAdapter, OutboxEntry, SessionStore

log = logging.getLogger("midtier.outbox")

PARK = timedelta(hours=1)


def backoff(attempts: int) -> timedelta:
    """1 s, 2 s, 4 s ... capped at 5 minutes."""
    return timedelta(seconds=min(300.0, 2.0 ** max(0, attempts - 1)))


class Outbox:
    """Puts activities in the store and drains them to their channels in order."""

    def __init__(self, store: SessionStore, channels: Mapping[str, ChannelAdapter]) -> None:
        self._store = store
        self._channels = channels
        self._draining: dict[tuple[str, str], asyncio.Lock] = {}
        self._task: asyncio.Task[None] | None = None

    async def send(
        self, session_id: str, channel: str, conversation_id: str, activity: Activity
    ) -> None:
        """Record ``activity`` for the conversation, then try to deliver what is pending."""
        if not activity.id:
            activity.id = new_activity_id()
        entry = OutboxEntry(
            id=activity.id,
            session_id=session_id,
            channel=channel,
            conversation_id=conversation_id,
            activity=activity.to_wire(),
        )
        await self._store.outbox_put(entry)
        await self.flush(channel, conversation_id)

    async def flush(self, channel: str, conversation_id: str) -> int:
        """Deliver the conversation's pending entries in order; return how many went out."""
        key = (channel, conversation_id)
        lock = self._draining.get(key)
        if lock is None:
            lock = self._draining[key] = asyncio.Lock()
        try:
            async with lock:
                return await self._drain(channel, conversation_id)
        finally:
            if not lock.locked():
                self._draining.pop(key, None)

    async def _drain(self, channel: str, conversation_id: str) -> int:
        adapter = self._channels.get(channel)
        sent = 0
        for entry in await self._store.outbox_pending(channel, conversation_id):
            if adapter is None:
                await self._store.outbox_retry(entry.id, now() + PARK, f"no channel {channel!r}")
                break
            try:
                await adapter.send(Activity.from_wire(entry.activity))
            except ChannelUnavailable as exc:
                await self._store.outbox_retry(entry.id, now() + PARK, str(exc))
                break
            except ChannelError as exc:
                delay = backoff(entry.attempts + 1)
                log.warning(
                    "channel %s refused an activity, retrying in %ss: %s",
                    channel,
                    delay.total_seconds(),
                    exc,
                    extra={"session": entry.session_id},
                )
                await self._store.outbox_retry(entry.id, now() + delay, str(exc))
                break
            await self._store.outbox_done(entry.id)
            sent += 1
        return sent

    async def retry_due(self) -> int:
        """One pass over entries whose retry time has come; return how many went out."""
        seen: set[tuple[str, str]] = set()
        sent = 0
        for entry in await self._store.outbox_due(now()):
            key = (entry.channel, entry.conversation_id)
            if key not in seen:
                seen.add(key)
                sent += await self.flush(*key)
        return sent

    async def _loop(self, interval: float) -> None:
        while True:
            try:
                await self.retry_due()
            except Exception:
                log.exception("outbox retry pass failed")
            await asyncio.sleep(interval)

    def start(self, interval: float = 1.0) -> None:
        """Run retry passes in the background every ``interval`` seconds."""
        self._task = asyncio.create_task(self._loop(interval), name="midtier-outbox")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

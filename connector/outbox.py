"""Durable outbound delivery.

Every activity for a user is written to the store's outbox (in the commit of the unit of
work that produced it) before its channel is asked to send it, and removed only once the
channel accepted it. Per conversation, entries leave in
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
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta

from connector.activity import Activity, now
from connector.errors import ChannelError, ChannelUnavailable
from connector.interfaces import ChannelAdapter, SessionStore
from connector.locks import LocalLocks
from connector.records import OutboxEntry

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
        self._locks = LocalLocks()  # one drain at a time per conversation
        # Conversations with entries that did not go out: new ones queue behind them.
        self._backlog: set[tuple[str, str]] = set()
        self._task: asyncio.Task[None] | None = None

    async def dispatch(self, entries: list[OutboxEntry]) -> None:
        """Send entries just committed, in order, behind anything older still waiting."""
        groups: dict[tuple[str, str], list[OutboxEntry]] = {}
        for entry in entries:
            groups.setdefault((entry.channel, entry.conversation_id), []).append(entry)
        for key, group in groups.items():
            if key in self._backlog:
                await self.flush(*key)
                continue
            async with self._lock(key):
                if key in self._backlog:  # something failed while we waited: keep the order
                    await self._drain(*key)
                    continue
                for entry in group:  # nothing older is waiting: send these straight away
                    if not await self._deliver(entry):
                        break  # the rest wait in the store behind it

    async def send_now(self, channel: str, activity: Activity) -> None:
        """Send a passing signal (``typing``) now, unrecorded; dropped if it cannot go."""
        adapter = self._channels.get(channel)
        if adapter is None:
            return
        with contextlib.suppress(ChannelError):  # a stale "typing" is worth nothing later
            await adapter.send(activity)

    def _lock(self, key: tuple[str, str]) -> AbstractAsyncContextManager[None]:
        return self._locks.hold(f"{key[0]}\x00{key[1]}")

    async def load_backlog(self) -> None:
        """Note which conversations have undelivered entries (start-up, after a crash)."""
        for entry in await self._store.outbox_due(now() + timedelta(days=3650), limit=1_000_000):
            self._backlog.add((entry.channel, entry.conversation_id))

    @asynccontextmanager
    async def paused(self, channel: str, conversation_id: str) -> AsyncIterator[None]:
        """Hold the conversation's deliveries during the block, then send what is pending.

        A client that connects gets its history and then what it missed: while it reads the
        history nothing may reach it live, or a newer reply would come before older ones.
        """
        async with self._lock((channel, conversation_id)):
            yield
            await self._drain(channel, conversation_id)

    async def flush(self, channel: str, conversation_id: str) -> int:
        """Deliver the conversation's pending entries in order; return how many went out."""
        async with self._lock((channel, conversation_id)):
            return await self._drain(channel, conversation_id)

    async def _drain(self, channel: str, conversation_id: str) -> int:
        sent = 0
        for entry in await self._store.outbox_pending(channel, conversation_id):
            if not await self._deliver(entry):
                return sent
            sent += 1
        self._backlog.discard((channel, conversation_id))
        return sent

    async def _deliver(self, entry: OutboxEntry) -> bool:
        """Hand one entry to its channel; on failure schedule a retry and hold the rest back."""
        adapter = self._channels.get(entry.channel)
        try:
            if adapter is None:
                raise ChannelUnavailable(f"no channel {entry.channel!r}")
            await adapter.send(Activity.from_wire(entry.activity))
        except ChannelUnavailable as exc:
            await self._store.outbox_retry(entry.id, now() + PARK, str(exc))
        except ChannelError as exc:
            delay = backoff(entry.attempts + 1)
            log.warning(
                "channel %s refused an activity, retrying in %ss: %s",
                entry.channel,
                delay.total_seconds(),
                exc,
                extra={"session": entry.session_id},
            )
            await self._store.outbox_retry(entry.id, now() + delay, str(exc))
        else:
            await self._store.outbox_done(entry.id)
            return True
        self._backlog.add((entry.channel, entry.conversation_id))
        return False

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

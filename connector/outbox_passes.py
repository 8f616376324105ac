"""The outbox's retry passes (for :class:`connector.outbox.Outbox`): which conversations
have entries that did not go out, and, every second, a delivery started for each whose
waiting entry is due, at most ``retry_concurrency`` conversations per channel at a time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

from connector.config import OutboxSettings
from connector.outbox_setbacks import Key
from connector.store.common import Clock
from connector.store_protocol import DeliveryStore

log = logging.getLogger("midtier.outbox")

HEADS_PER_PASS = 1000


class RetryPasses:
    """``backlog``: the conversations with entries that did not go out (shared with the
    outbox); ``retrying``: those a pass started and that have not finished; ``kick``
    starts a conversation's delivery."""

    def __init__(
        self,
        store: DeliveryStore,
        settings: OutboxSettings,
        clock: Clock,
        backlog: set[Key],
        retrying: set[Key],
        kick: Callable[[Key], None],
    ) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock
        self._backlog = backlog
        self._retrying = retrying
        self._kick = kick
        self._task: asyncio.Task[None] | None = None

    async def load_backlog(self) -> None:
        """Note which conversations have undelivered entries (start-up, after a crash)."""
        far = self._clock() + timedelta(days=3650)
        for head in await self._store.outbox_heads(far, limit=1_000_000):
            self._backlog.add((head.channel, head.conversation_id))

    async def retry_due(self) -> int:
        """Start delivery for each conversation whose waiting entry is due, at most
        ``retry_concurrency`` conversations per channel at a time; return how many were
        started. Returns at once: a platform that hangs holds only its own retries."""
        busy = Counter(channel for channel, _ in self._retrying)
        started = 0
        for head in await self._store.outbox_heads(self._clock(), limit=HEADS_PER_PASS):
            key = (head.channel, head.conversation_id)
            if key not in self._backlog:
                continue  # just committed and handed over: its worker is sending it now
            if key in self._retrying or busy[head.channel] >= self._settings.retry_concurrency:
                continue
            busy[head.channel] += 1
            self._retrying.add(key)
            self._kick(key)
            started += 1
        return started

    def start(self, interval: float) -> None:
        """Run a pass every ``interval`` seconds, in the background."""
        self._task = asyncio.create_task(self._loop(interval), name="midtier-outbox")

    async def stop(self) -> None:
        """Stop the passes (a pass under way is cancelled)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self, interval: float) -> None:
        while True:
            try:
                await self.retry_due()
            except Exception:
                log.exception("outbox retry pass failed")
            await asyncio.sleep(interval)

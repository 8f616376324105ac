"""One worker task per key, draining what is recorded for that key in order.

The durable inbound (per channel conversation) and the provider inbox (per provider
conversation) both keep records in the store and apply them one at a time, in record order,
per key, while different keys run concurrently. ``kick`` says "there may be new records for
this key"; a worker that is running notices and looks again before it ends, so a kick never
gets lost between its last look and its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

K = TypeVar("K")
log = logging.getLogger("midtier.workers")


class KeyedWorkers(Generic[K]):
    """Runs ``drain(key)`` for each kicked key, one task per key at a time."""

    def __init__(self, drain: Callable[[K], Awaitable[None]], name: str) -> None:
        self._drain = drain
        self._name = name
        self._tasks: dict[K, asyncio.Task[None]] = {}
        self._dirty: set[K] = set()
        self._stopped = False

    def kick(self, key: K) -> None:
        """Make sure a worker looks at ``key`` (again)."""
        if self._stopped:
            return
        self._dirty.add(key)
        if key not in self._tasks:  # the loop's own create_task: names it without a call more
            loop = asyncio.get_running_loop()
            self._tasks[key] = loop.create_task(self._work(key), name=self._name)

    def busy(self, key: K) -> bool:
        """Whether a worker runs for ``key`` now."""
        return key in self._tasks

    async def idle(self) -> None:
        """Wait until every kicked key has been drained (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def settled(self, key: K) -> None:
        """Wait until ``key``'s worker, if one runs, has drained it."""
        while (task := self._tasks.get(key)) is not None:
            await asyncio.wait([task])

    async def stop(self, grace_s: float = 0.0) -> None:
        """Stop the workers; what they had not applied stays in the store. Workers still
        running after ``grace_s`` seconds (none are started meanwhile) are cancelled."""
        self._stopped = True
        if grace_s > 0 and self._tasks:
            await asyncio.wait(list(self._tasks.values()), timeout=grace_s)
        for task in list(self._tasks.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _work(self, key: K) -> None:
        try:
            while key in self._dirty:
                self._dirty.discard(key)
                await self._drain(key)
        except Exception:  # e.g. the store is gone: the records stay, a later kick retries
            log.exception("%s worker stopped", self._name)
        finally:
            # No await between the last look at ``_dirty`` and here: nothing slips through.
            del self._tasks[key]

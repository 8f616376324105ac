"""Durable outbound delivery.

Every activity for a user is written to the store's outbox (in the commit of the unit of
work that produced it) before its channel is asked to send it, and removed only once the
channel took it or its failure was recorded on the session: no reply is lost silently. Per
conversation, entries leave in the order they were put: one that fails holds back the ones
behind it. Each conversation delivers in a task of its own, started by ``dispatch`` after
the commit, so a platform that is slow or hangs delays neither the conversation's next
message (it is recorded and acknowledged already) nor any other conversation.

What becomes of an entry its channel did not take (retried after a backoff, parked until
the conversation reconnects, given up and recorded on the session) is decided by
:mod:`connector.outbox_setbacks`.

The entry id is the activity id, which a channel can use as an idempotency key: delivery is
at least once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from typing import TypeGuard

from connector.activity import Activity, now
from connector.channel_protocol import ChannelAdapter, SendsWire
from connector.config import OutboxSettings
from connector.errors import ChannelError, ChannelUnavailable, DeliveryRejected
from connector.locks import LocalLocks
from connector.outbox_setbacks import Key, OnFailure, Setbacks
from connector.records import OutboxEntry
from connector.store.common import Clock, as_utc
from connector.store_protocol import DeliveryStore
from connector.workers import KeyedWorkers

log = logging.getLogger("midtier.outbox")
STOP_GRACE_S = 5.0  # how long a stop waits for deliveries under way

HEADS_PER_PASS = 1000


class Outbox:
    """Puts activities in the store and drains them to their channels, in order per
    conversation and concurrently across conversations.

    ``clock`` and ``rand`` are the time and the jitter's randomness (tests pass their own).
    """

    def __init__(
        self,
        store: DeliveryStore,
        channels: Mapping[str, ChannelAdapter],
        settings: OutboxSettings | None = None,
        *,
        on_failure: OnFailure | None = None,
        clock: Clock = now,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._store = store
        self._channels = channels
        self.settings = settings if settings is not None else OutboxSettings()
        self._clock = clock
        self._locks = LocalLocks()  # one drain at a time per conversation
        self._workers: KeyedWorkers[Key] = KeyedWorkers(self._work, "midtier-outbox")
        # What was handed over and not yet taken by the conversation's worker: committed
        # entries, and passing signals (typing) to show in order with them.
        self._queued: dict[Key, list[OutboxEntry | Activity]] = {}
        # Conversations with entries that did not go out: new ones queue behind them.
        self._backlog: set[Key] = set()
        self._parked: set[Key] = set()  # ... because nobody was connected
        self._retrying: set[Key] = set()  # started by a retry pass and not finished yet
        self._task: asyncio.Task[None] | None = None
        self._wire: dict[type, bool] = {}  # adapter class -> whether it takes wire dicts
        self._setbacks = Setbacks(
            store,
            self.settings,
            backlog=self._backlog,
            parked=self._parked,
            on_failure=on_failure,
            clock=clock,
            rand=rand,
        )

    # ------------------------------------------------------------------ handing over

    async def dispatch(self, entries: list[OutboxEntry]) -> None:
        """Hand over entries just committed; they go out behind anything older still
        waiting in their conversation. Returns at once."""
        for entry in entries:
            key = (entry.channel, entry.conversation_id)
            self._queued.setdefault(key, []).append(entry)
            self._workers.kick(key)

    async def send_now(self, channel: str, activity: Activity) -> None:
        """Show a passing signal (``typing``) soon, unrecorded, in order with the
        conversation's replies; dropped if it cannot go (a stale "typing" is worth nothing
        later). Returns at once."""
        if channel not in self._channels:
            return
        key = (channel, activity.conversation.id if activity.conversation else "")
        if key in self._backlog:  # its replies are stuck: "typing" would mislead
            return
        self._queued.setdefault(key, []).append(activity)
        self._workers.kick(key)

    async def settled(self, channel: str, conversation_id: str) -> None:
        """Wait until what was handed over for the conversation has been tried."""
        await self._workers.settled((channel, conversation_id))

    async def idle(self) -> None:
        """Wait until everything handed over has been tried (tests, shutdown)."""
        await self._workers.idle()

    # ------------------------------------------------------------------ socket channels

    @asynccontextmanager
    async def paused(self, channel: str, conversation_id: str) -> AsyncIterator[None]:
        """Hold the conversation's deliveries during the block, then send what is pending.

        A client that connects gets its history and then what it missed: while it reads the
        history nothing may reach it live, or a newer reply would come before older ones.
        """
        async with self._lock((channel, conversation_id)):
            yield
            await self._drain((channel, conversation_id), force=True)

    async def flush(self, channel: str, conversation_id: str) -> int:
        """Deliver the conversation's pending entries in order now (someone reconnected);
        return how many went out."""
        async with self._lock((channel, conversation_id)):
            return await self._drain((channel, conversation_id), force=True)

    # ------------------------------------------------------------------ delivering

    def _lock(self, key: Key) -> AbstractAsyncContextManager[None]:
        return self._locks.hold(f"{key[0]}\x00{key[1]}")

    async def _work(self, key: Key) -> None:
        try:
            async with self._lock(key):
                items = self._queued.pop(key, [])
                if key in self._backlog or key in self._retrying:
                    # A new reply gives a parked conversation another try (someone may be
                    # back); one waiting for a platform keeps to its schedule.
                    fresh = any(isinstance(item, OutboxEntry) for item in items)
                    await self._drain(key, force=fresh and key in self._parked)
                    return
                for item in items:  # nothing older is waiting: straight away
                    if isinstance(item, Activity):
                        await self._signal(key[0], item)
                    elif not await self._deliver(item):
                        return  # it and the ones after it wait in the store
        except BaseException:
            self._backlog.add(key)  # whatever stopped us, the store's order rules
            raise
        finally:
            self._retrying.discard(key)

    async def _signal(self, channel: str, activity: Activity) -> None:
        adapter = self._channels.get(channel)
        if adapter is None:
            return
        try:
            await adapter.send(activity)
        except Exception as exc:  # never worth a retry; a faulty adapter must not stop us
            log.info("a %s signal was dropped on %s: %s", activity.type, channel, exc)

    async def _drain(self, key: Key, *, force: bool) -> int:
        self._queued.pop(key, None)  # committed: read from the store below with the rest
        sent: list[str] = []
        try:
            current = self._clock()
            for entry in await self._store.outbox_pending(*key):
                if not force and as_utc(entry.next_attempt_at) > current:
                    return len(sent)  # the head's time has not come (a backoff, a Retry-After)
                if not await self._deliver(entry):
                    return len(sent)
                sent.append(entry.id)
            self._backlog.discard(key)
            self._parked.discard(key)
            return len(sent)
        finally:
            # An entry committed before the store was read but handed over after (its unit of
            # work resumed while this pass was sending) went out already: not once more.
            queued = self._queued.get(key)
            if sent and queued:
                gone = set(sent)
                kept = [i for i in queued if not (isinstance(i, OutboxEntry) and i.id in gone)]
                if kept:
                    self._queued[key] = kept
                else:
                    del self._queued[key]

    async def _deliver(self, entry: OutboxEntry) -> bool:
        """Hand one entry to its channel; False if it failed and holds the rest back."""
        adapter = self._channels.get(entry.channel)
        try:
            if adapter is None:
                raise ChannelUnavailable(f"no channel {entry.channel!r}")
            if self._sends_wire(adapter):
                await adapter.send_wire(entry.activity)
            else:
                await adapter.send(Activity.from_wire(entry.activity))
        except DeliveryRejected as exc:
            return await self._setbacks.fail(entry, "rejected", str(exc))
        except ChannelUnavailable as exc:
            return await self._setbacks.park(entry, exc)
        except ChannelError as exc:
            return await self._setbacks.retry_later(entry, exc)
        except Exception as exc:  # a faulty adapter: retried and, in the end, given up
            log.exception("channel %s failed to send", entry.channel)
            error = ChannelError(f"channel {entry.channel} failed: {type(exc).__name__}")
            return await self._setbacks.retry_later(entry, error)
        await self._store.outbox_done(entry.id)
        return True

    def _sends_wire(self, adapter: ChannelAdapter) -> TypeGuard[SendsWire]:
        # A runtime-checkable isinstance looks at every member: once per adapter class.
        kind = type(adapter)
        found = self._wire.get(kind)
        if found is None:
            found = self._wire[kind] = isinstance(adapter, SendsWire)
        return found

    # ------------------------------------------------------------------ retry passes

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
            if key in self._retrying or busy[head.channel] >= self.settings.retry_concurrency:
                continue
            busy[head.channel] += 1
            self._retrying.add(key)
            self._workers.kick(key)
            started += 1
        return started

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
        """Stop retrying and delivering; what did not go out stays in the store.

        Deliveries under way get ``STOP_GRACE_S`` to finish: one cut off after the platform
        took it, but before the outbox knew, would go out again after a restart.
        """
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._workers.stop(STOP_GRACE_S)
        self._queued.clear()

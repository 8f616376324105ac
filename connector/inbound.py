"""Durable user messages in: recorded before anyone is told they arrived, processed from
the record, in order, once.

A channel hands a user's activity to :meth:`UserInbound.record`, which writes it to the
store together with its dedupe key (and the transcript line, and the session if the
conversation is new) in one transaction; only then does the channel acknowledge it (a 200,
a WebSocket ``ack``). A repeat of an activity already recorded is acknowledged again and
otherwise ignored. One worker per channel conversation processes the records in order; a
record leaves the store in the same transaction as everything its processing wrote
(:mod:`connector.work`). At start-up, whatever a crash left recorded but unprocessed is
processed first, in order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from connector.activity import Activity, new_activity_id
from connector.errors import MalformedPayload
from connector.records import InboundEntry
from connector.sessions import MidTierSession
from connector.store_protocol import InboundStore
from connector.workers import KeyedWorkers

log = logging.getLogger("midtier.inbound")

Key = tuple[str, str]  # (channel, channel conversation id)
Process = Callable[[InboundEntry], Awaitable[MidTierSession | None]]


def inbound_entry(
    channel: str,
    activity: Activity,
    max_text_chars: int,
    *,
    claims: dict[str, Any] | None = None,
    ref: str | None = None,
    channel_state: dict[str, Any] | None = None,
    address: dict[str, Any] | None = None,
) -> InboundEntry:
    """Check a user's activity and give it midtier's own id (what providers see).

    ``ref`` is the channel's id for it: the dedupe key, kept on the channel side.
    """
    if activity.conversation is None or not activity.conversation.id:
        raise MalformedPayload("activity has no conversation.id")
    if activity.from_ is None or not activity.from_.id:
        raise MalformedPayload("activity has no from.id")
    if activity.text is not None and len(activity.text) > max_text_chars:
        raise MalformedPayload(f"text longer than {max_text_chars} characters")
    conversation = activity.conversation.id
    own = activity.model_copy()
    own.id = new_activity_id()
    return InboundEntry(
        id=own.id,
        channel=channel,
        conversation=conversation,
        user_id=activity.from_.id,
        activity=own.to_wire(),
        claims=claims,
        ref=ref,
        dedupe_key=f"in:{channel}:{conversation}:{ref}" if ref else None,
        channel_state=channel_state or {},
        address=address,
    )


class UserInbound:
    """Records user activities and feeds them, in order, to ``process``."""

    def __init__(self, store: InboundStore, process: Process, dedupe_ttl_s: float) -> None:
        self._store = store
        self._process = process
        self._ttl = dedupe_ttl_s
        self._workers: KeyedWorkers[Key] = KeyedWorkers(self._drain, "midtier-inbound")
        self._waiters: dict[str, asyncio.Future[MidTierSession | None]] = {}
        # What this process recorded and has not processed yet, in record order; the store
        # has it too. Keys in ``_unread`` may have more in the store only (left by a crash,
        # or by a worker that stopped): their worker reads the store instead.
        self._queued: dict[Key, list[InboundEntry]] = {}
        self._unread: set[Key] = set()

    async def record(self, entry: InboundEntry) -> InboundEntry | None:
        """Record ``entry``; None if it repeats one already recorded. Once this returns,
        the entry will be processed, after a crash too."""
        recorded = await self._store.inbound_put(entry, self._ttl)
        if recorded is not None:
            key = (recorded.channel, recorded.conversation)
            self._queued.setdefault(key, []).append(recorded)
            self._workers.kick(key)
        return recorded

    async def receive(self, entry: InboundEntry) -> MidTierSession | None:
        """Record ``entry`` and wait until it has been processed; the session it went to
        (None for a repeat)."""
        waiter = self._waiters[entry.id] = asyncio.get_running_loop().create_future()
        try:
            if await self.record(entry) is None:
                return None
            session: MidTierSession | None = await waiter
            return session
        finally:
            self._waiters.pop(entry.id, None)

    async def resume(self) -> None:
        """Start workers for what was recorded but not processed when the process stopped."""
        keys = await self._store.inbound_keys()
        if keys:
            log.info("processing messages of %d conversation(s) left from before", len(keys))
        for key in keys:
            self._unread.add(key)
            self._workers.kick(key)

    async def idle(self) -> None:
        """Wait until everything recorded so far has been processed."""
        await self._workers.idle()

    async def stop(self) -> None:
        await self._workers.stop()

    async def _drain(self, key: Key) -> None:
        if key in self._unread:  # the store has everything, in order: read it there
            self._unread.discard(key)
            self._queued.pop(key, None)
            entries = await self._store.inbound_pending(*key)
        else:
            entries = self._queued.pop(key, [])
        try:
            for entry in entries:
                session = await self._process(entry)
                waiter = self._waiters.get(entry.id)
                if waiter is not None and not waiter.done():
                    waiter.set_result(session)
        except BaseException:  # the worker stops: its next run finds the rest in the store
            self._unread.add(key)
            raise

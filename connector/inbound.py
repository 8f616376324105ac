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

When nothing of its conversation is waiting or under way, a message is processed at once,
before it is recorded (:class:`connector.unrecorded.Unrecorded`): if that is done within
``session.ack_within_s`` (an in-process bot, a quick remote one), the record is written with
everything the processing wrote, in that unit of work's transaction, and the channel
acknowledges it after that commit. One transaction per message instead of two, and no
record written and deleted. A message whose processing takes longer is recorded on its own
at that point, as above, and acknowledged while its processing goes on. Either way the
acknowledgement still comes after the record is committed, and a crash before that loses
nothing that was acknowledged: the channel (a platform's retry, the web chat's resend)
sends it again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from connector.activity import Activity, new_activity_id
from connector.errors import MalformedPayload
from connector.later import Later
from connector.modelcopy import replaced
from connector.records import InboundEntry
from connector.sessions import MidTierSession
from connector.store_protocol import InboundStore
from connector.unrecorded import Unrecorded
from connector.workers import KeyedWorkers

log = logging.getLogger("midtier.inbound")

Key = tuple[str, str]  # (channel, channel conversation id)


Process = Callable[[InboundEntry, Unrecorded | None], Awaitable[MidTierSession | None]]


def inbound_entry(
    channel: str,
    activity: Activity,
    max_text_chars: int,
    *,
    claims: dict[str, Any] | None = None,
    ref: str | None = None,
    channel_state: dict[str, Any] | None = None,
    address: dict[str, Any] | None = None,
) -> tuple[InboundEntry, Activity]:
    """Check a user's activity and give it midtier's own id (what providers see): its record,
    and the activity as recorded (what ``Activity.from_wire`` of the record gives).

    ``ref`` is the channel's id for it: the dedupe key, kept on the channel side.
    """
    if activity.conversation is None or not activity.conversation.id:
        raise MalformedPayload("activity has no conversation.id")
    if activity.from_ is None or not activity.from_.id:
        raise MalformedPayload("activity has no from.id")
    if activity.text is not None and len(activity.text) > max_text_chars:
        raise MalformedPayload(f"text longer than {max_text_chars} characters")
    conversation = activity.conversation.id
    activity_id = new_activity_id()
    own = replaced(activity, id=activity_id)
    entry = InboundEntry(
        id=activity_id,
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
    return entry, own


class UserInbound:
    """Records user activities and feeds them, in order, to ``process``."""

    def __init__(
        self,
        store: InboundStore,
        process: Process,
        dedupe_ttl_s: float,
        *,
        ack_within_s: float = 0.0,
    ) -> None:
        self._store = store
        self._process = process
        self._ttl = dedupe_ttl_s
        self._ack_within_s = ack_within_s  # 0: every message is recorded before processing
        self._workers: KeyedWorkers[Key] = KeyedWorkers(self._drain, "midtier-inbound")
        self._waiters: dict[str, asyncio.Future[MidTierSession | None]] = {}
        # What this process recorded and has not processed yet, in record order; the store
        # has it too. Keys in ``_unread`` may have more in the store only (left by a crash,
        # or by a worker that stopped): their worker reads the store instead.
        self._queued: dict[Key, list[InboundEntry | Unrecorded]] = {}
        self._unread: set[Key] = set()
        self._unacked: dict[str, Unrecorded] = {}  # by dedupe key: taken, not recorded yet
        self._late: set[asyncio.Task[None]] = set()  # recording ones that took long
        # One timer for every message under way (the same delay for all), not one each.
        self._ack_timer = Later(ack_within_s)

    async def record(
        self, entry: InboundEntry, activity: Activity | None = None
    ) -> InboundEntry | None:
        """Record ``entry``; None if it repeats one already recorded. Once this returns,
        the entry will be processed (or was, with its record), after a crash too.
        ``activity``: the entry's activity, parsed already (spares parsing it again)."""
        key = (entry.channel, entry.conversation)
        if self._ack_within_s > 0 and self._quiet(key, entry):
            session_id = await self._store.inbound_target(entry)
            if session_id is not None and self._quiet(key, entry):
                taken = entry.model_copy(update={"session_id": session_id})
                unrecorded = Unrecorded(taken, self._put, self._ttl, activity)
                return await self._take(key, unrecorded)
        earlier = self._unacked.get(entry.dedupe_key) if entry.dedupe_key else None
        if earlier is not None:  # a repeat of one under way: after it is recorded, it is seen
            await asyncio.wait([earlier.acked])
        recorded = await self._put(entry)
        if recorded is not None:
            self._queued.setdefault(key, []).append(recorded)
            self._workers.kick(key)
        return recorded

    def _quiet(self, key: Key, entry: InboundEntry) -> bool:
        """Nothing of ``key`` is waiting or under way here, nor a copy of ``entry``."""
        return (
            key not in self._queued
            and key not in self._unread
            and not self._workers.busy(key)
            and (entry.dedupe_key is None or entry.dedupe_key not in self._unacked)
        )

    async def _put(self, entry: InboundEntry) -> InboundEntry | None:
        return await self._store.inbound_put(entry, self._ttl)

    async def _take(self, key: Key, unrecorded: Unrecorded) -> InboundEntry | None:
        """Process ``unrecorded`` now, as its conversation's worker; return once recorded."""
        dedupe_key = unrecorded.entry.dedupe_key
        if dedupe_key is not None:
            self._unacked[dedupe_key] = unrecorded
        self._queued[key] = [unrecorded]
        self._workers.kick(key)
        timer = self._ack_timer.start(lambda: self._record_late(unrecorded))
        try:
            return await unrecorded.acked
        finally:
            self._ack_timer.stop(timer)
            if dedupe_key is not None and self._unacked.get(dedupe_key) is unrecorded:
                del self._unacked[dedupe_key]

    def _record_late(self, unrecorded: Unrecorded) -> None:
        async def record() -> None:
            try:
                await unrecorded.record()
            except Exception:  # the channel hears it; the processing may still commit it
                log.exception("a message under way could not be recorded")

        task = asyncio.ensure_future(record())
        self._late.add(task)
        task.add_done_callback(self._late.discard)

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
        entries: list[InboundEntry | Unrecorded]
        if key in self._unread:  # the store has everything, in order: read it there
            self._unread.discard(key)
            self._queued.pop(key, None)
            entries = [*await self._store.inbound_pending(*key)]
        else:
            entries = self._queued.pop(key, [])
        try:
            for item in entries:
                if isinstance(item, Unrecorded):
                    entry = item.entry
                    try:
                        session = await self._process(entry, item)
                    finally:
                        item.give_up()  # if it never got recorded
                else:
                    entry = item
                    session = await self._process(entry, None)
                waiter = self._waiters.get(entry.id)
                if waiter is not None and not waiter.done():
                    waiter.set_result(session)
        except BaseException:  # the worker stops: its next run finds the rest in the store
            self._unread.add(key)
            raise

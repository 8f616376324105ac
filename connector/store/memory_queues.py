"""The in-process store's queues: the outbox, the provider inbox and the inbound records.

Each keeps entries in put order until they are done with; none reads a session. This part
knows nothing of the rest of :class:`~connector.store.memory.MemoryStore`, which is made of
it and the remembered keys; the store's ``commit`` hands it the queue side of a unit of work.
"""

from __future__ import annotations

from datetime import datetime

from connector.records import Changes, InboundEntry, InboxEntry, OutboxEntry
from connector.store.common import as_utc


class MemoryQueues:
    """The :class:`~connector.store_protocol.OutboxStore`,
    :class:`~connector.store_protocol.InboxStore` and the reading side of
    :class:`~connector.store_protocol.InboundStore`, in insertion-ordered dicts."""

    def __init__(self) -> None:
        # Insertion order is put order; updates in place keep it.
        self._outbox: dict[str, OutboxEntry] = {}
        self._inbox: dict[str, InboxEntry] = {}  # insertion order is put order
        self._inbound: dict[str, InboundEntry] = {}  # insertion order is record order

    def _apply_queues(self, changes: Changes) -> None:
        """The queue side of a unit of work: queue its outbox entries, drop what it is done
        with."""
        for out in changes.outbox:
            self._outbox.setdefault(out.id, out.model_copy(deep=True))
        for done in changes.inbound_done:
            self._inbound.pop(done, None)
        for done in changes.inbox_done:
            self._inbox.pop(done, None)
        for done in changes.outbox_done:
            self._outbox.pop(done, None)

    # ------------------------------------------------------------------ inbound

    async def inbound_pending(self, channel: str, conversation: str) -> list[InboundEntry]:
        """Unprocessed activities of one channel conversation, in record order."""
        return [
            e.model_copy(deep=True)
            for e in self._inbound.values()
            if e.channel == channel and e.conversation == conversation
        ]

    async def inbound_keys(self) -> list[tuple[str, str]]:
        """Every (channel, conversation) with activities waiting."""
        return list(dict.fromkeys((e.channel, e.conversation) for e in self._inbound.values()))

    # ------------------------------------------------------------------ outbox

    async def outbox_put(self, entry: OutboxEntry) -> None:
        """Queue an entry; putting an id that is already queued does nothing."""
        if entry.id not in self._outbox:
            self._outbox[entry.id] = entry.model_copy(deep=True)

    async def outbox_pending(self, channel: str, conversation_id: str) -> list[OutboxEntry]:
        """Entries not yet delivered for one conversation, in the order they were put."""
        return [
            e.model_copy(deep=True)
            for e in self._outbox.values()
            if e.channel == channel and e.conversation_id == conversation_id
        ]

    async def outbox_due(self, before: datetime, limit: int = 100) -> list[OutboxEntry]:
        """Entries whose next attempt is at or before ``before``: earliest first, then put order."""
        before = as_utc(before)
        due = [e for e in self._outbox.values() if as_utc(e.next_attempt_at) <= before]
        due.sort(key=lambda e: as_utc(e.next_attempt_at))  # stable: ties stay in put order
        return [e.model_copy(deep=True) for e in due[: max(limit, 0)]]

    async def outbox_heads(self, before: datetime, limit: int = 100) -> list[OutboxEntry]:
        """Each conversation's oldest entry, where its next attempt is at or before ``before``:
        earliest first, then put order."""
        before = as_utc(before)
        heads: dict[tuple[str, str], OutboxEntry] = {}
        for e in self._outbox.values():
            heads.setdefault((e.channel, e.conversation_id), e)
        due = [e for e in heads.values() if as_utc(e.next_attempt_at) <= before]
        due.sort(key=lambda e: as_utc(e.next_attempt_at))  # stable: ties stay in put order
        return [e.model_copy(deep=True) for e in due[: max(limit, 0)]]

    async def outbox_done(self, entry_id: str) -> None:
        """Forget a delivered entry (unknown ids are ignored)."""
        self._outbox.pop(entry_id, None)

    async def outbox_retry(self, entry_id: str, next_attempt_at: datetime, error: str) -> None:
        """Count a failed attempt and schedule the next (unknown ids are ignored)."""
        entry = self._outbox.get(entry_id)
        if entry is not None:
            entry.attempts += 1
            entry.next_attempt_at = next_attempt_at
            entry.last_error = error

    # ------------------------------------------------------------------ provider inbox

    async def inbox_put(self, entry: InboxEntry) -> None:
        if entry.id not in self._inbox:
            self._inbox[entry.id] = entry.model_copy(deep=True)

    async def inbox_pending(self, provider: str, conversation: str) -> list[InboxEntry]:
        return [
            e.model_copy(deep=True)
            for e in self._inbox.values()
            if e.provider == provider and e.conversation == conversation
        ]

    async def inbox_keys(self) -> list[tuple[str, str]]:
        return list(dict.fromkeys((e.provider, e.conversation) for e in self._inbox.values()))

    async def inbox_done(self, entry_id: str) -> None:
        self._inbox.pop(entry_id, None)

"""An in-process session store for tests and throwaway runs.

Nothing survives the process. Every read returns a deep copy and every write stores one, so
callers can never change stored state behind the store's back; the version check on
``save`` is the same as the SQLite backend's. Each method runs without awaiting anything,
so it is atomic with respect to other tasks on the event loop.

:class:`MemoryStore` is four parts put together, each holding its own state: the session
map and history (:mod:`~connector.store.memory_sessions`), the queues
(:mod:`~connector.store.memory_queues`), the remembered keys
(:mod:`~connector.store.memory_keys`) and the legs' outcomes
(:mod:`~connector.store.memory_outcomes`). This module holds what spans them: recording a
user's activity, a unit of work, and expiry.
"""

from __future__ import annotations

from datetime import datetime

from connector.activity import now
from connector.errors import RepeatedMessage
from connector.records import Changes, InboundEntry
from connector.sessions import MidTierSession
from connector.store.common import (
    Clock,
    as_utc,
    close_expired,
    new_session,
    open_leg_of,
    user_entry,
)
from connector.store.memory_keys import MemoryKeys
from connector.store.memory_outcomes import MemoryOutcomes
from connector.store.memory_queues import MemoryQueues
from connector.store.memory_sessions import MemorySessions


class MemoryStore(MemorySessions, MemoryKeys, MemoryQueues, MemoryOutcomes):
    """A :class:`~connector.interfaces.SessionStore` held in dicts.

    ``clock`` supplies the current time (for dedupe expiry and timestamps); tests pass a
    clock they control instead of sleeping.
    """

    def __init__(self, *, clock: Clock = now) -> None:
        MemorySessions.__init__(self, clock=clock)
        MemoryKeys.__init__(self, clock=clock)
        MemoryQueues.__init__(self)
        MemoryOutcomes.__init__(self)

    async def start(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to close; the data stays until the store is dropped."""

    async def expire(self, idle_before: datetime) -> int:
        """Close active sessions not updated since ``idle_before``; return how many.

        Each one's open leg is closed with reason ``"expired"`` and its version is bumped, so
        a holder of an older copy gets ``ConflictError`` on save. Also drops expired dedupe
        keys and authorization codes.
        """
        idle_before = as_utc(idle_before)
        at = self._stamp()
        count = 0
        for session in self._sessions.values():
            if session.status == "active" and session.updated_at < idle_before:
                close_expired(session, at)
                session.updated_at = at
                session.version += 1
                self._index_identities(session)
                count += 1
        self._drop_expired()
        return count

    # ------------------------------------------------------------------ inbound, commit

    async def inbound_put(self, entry: InboundEntry, ttl_seconds: float) -> InboundEntry | None:
        """Record a user's activity with its dedupe key and session (None: a duplicate)."""
        if entry.dedupe_key is not None and self._seen_key(entry.dedupe_key, ttl_seconds):
            return None
        found = self._active((entry.channel, entry.conversation))
        if found is None:
            at = self._stamp()
            found = new_session(
                entry.user_id,
                entry.channel,
                entry.conversation,
                at,
                channel_state=entry.channel_state,
            )
            self._sessions[found.id] = found
            self._index(found)
        stored = entry.model_copy(deep=True, update={"session_id": found.id})
        said = user_entry(stored, open_leg_of(found))
        if said is not None:
            self._append(found.id, said)
        self._inbound[stored.id] = stored
        return stored.model_copy(deep=True)

    async def inbound_target(self, entry: InboundEntry) -> str | None:
        """The active session ``entry`` would be recorded into (None: none yet, or a repeat)."""
        if entry.dedupe_key is not None and self._remembers(entry.dedupe_key):
            return None
        found = self._active((entry.channel, entry.conversation))
        return found.id if found is not None else None

    async def commit(self, changes: Changes) -> MidTierSession:
        """Apply a unit of work: everything, or (on a version conflict) nothing."""
        self._check_save(changes.session, changes.expected_version)
        if changes.dedupe_key is not None and self._remembers(changes.dedupe_key):
            raise RepeatedMessage(f"dedupe key {changes.dedupe_key!r} is recorded already")
        if changes.dedupe_key is not None:
            self._seen_key(changes.dedupe_key, changes.dedupe_ttl_s)
        saved = self._store_session(changes.session, changes.expected_version)
        for entry in changes.transcript:
            self._append(saved.id, entry)
        decisions = self._decisions.setdefault(saved.id, [])
        decisions.extend(d.model_copy(deep=True) for d in changes.decisions)
        self._apply_queues(changes)
        self._keep_outcomes(changes.outcomes)
        for code_hash, record in changes.codes:
            self._codes[code_hash] = record.model_copy(deep=True)
        return saved.model_copy(deep=True)

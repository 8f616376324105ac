"""An in-process session store for tests and throwaway runs.

Nothing survives the process. Every read returns a deep copy and every write stores one, so
callers can never change stored state behind the store's back; the version check on
``save`` is the same as the SQLite backend's. Each method runs without awaiting anything,
so it is atomic with respect to other tasks on the event loop.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from connector.activity import now
from connector.errors import ConflictError, NotFound
from connector.records import AuthCodeRecord, Changes, InboundEntry, InboxEntry, OutboxEntry
from connector.routing.decision import RouteDecision
from connector.sessions import MidTierSession, TranscriptEntry
from connector.store.common import (
    Clock,
    Stamper,
    as_utc,
    close_expired,
    indexed_identities,
    open_leg_of,
    user_entry,
)

ChannelKey = tuple[str, str]


class MemoryStore:
    """A :class:`~connector.interfaces.SessionStore` held in dicts.

    ``clock`` supplies the current time (for dedupe expiry and timestamps); tests pass a
    clock they control instead of sleeping.
    """

    def __init__(self, *, clock: Clock = now) -> None:
        self._clock = clock
        self._stamp = Stamper(clock)
        self._sessions: dict[str, MidTierSession] = {}
        # Session ids of each channel conversation, oldest first.
        self._by_channel: dict[ChannelKey, list[str]] = {}
        self._legs: dict[tuple[str, str], str] = {}
        # Verified identity -> ids of the active sessions that carry it, and the reverse.
        self._identities: dict[str, set[str]] = {}
        self._identities_of: dict[str, list[str]] = {}
        self._transcripts: dict[str, list[TranscriptEntry]] = {}
        self._decisions: dict[str, list[RouteDecision]] = {}
        self._seen: dict[str, datetime] = {}
        self._codes: dict[str, AuthCodeRecord] = {}
        # Insertion order is put order; updates in place keep it.
        self._outbox: dict[str, OutboxEntry] = {}
        self._inbox: dict[str, InboxEntry] = {}  # insertion order is put order
        self._inbound: dict[str, InboundEntry] = {}  # insertion order is record order

    async def start(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to close; the data stays until the store is dropped."""

    # ------------------------------------------------------------------ sessions

    def _active(self, key: ChannelKey) -> MidTierSession | None:
        for session_id in self._by_channel.get(key, ()):
            session = self._sessions[session_id]
            if session.status == "active":
                return session
        return None

    def _index(self, session: MidTierSession, previous: MidTierSession | None = None) -> None:
        key = (session.channel, session.channel_conversation_id)
        if previous is not None:
            before = (previous.channel, previous.channel_conversation_id)
            if before != key:  # moved: the old channel conversation no longer reaches it
                self._by_channel[before].remove(session.id)
        ids = self._by_channel.setdefault(key, [])
        if session.id not in ids:
            ids.append(session.id)
        for leg in session.legs:
            if leg.provider_conversation_id:
                self._legs[(leg.provider, leg.provider_conversation_id)] = session.id
        self._index_identities(session)

    def _index_identities(self, session: MidTierSession) -> None:
        wanted = indexed_identities(session)
        for identity in self._identities_of.pop(session.id, []):
            self._identities[identity].discard(session.id)
        for identity in wanted:
            self._identities.setdefault(identity, set()).add(session.id)
        if wanted:
            self._identities_of[session.id] = wanted

    async def find_or_create(
        self, channel: str, channel_conversation_id: str, user_id: str
    ) -> tuple[MidTierSession, bool]:
        """The active session for a channel conversation, created if missing (bool: created)."""
        found = self._active((channel, channel_conversation_id))
        if found is not None:
            return found.model_copy(deep=True), False
        at = self._stamp()
        session = MidTierSession(
            user_id=user_id,
            channel=channel,
            channel_conversation_id=channel_conversation_id,
            created_at=at,
            updated_at=at,
            version=1,
        )
        self._sessions[session.id] = session
        self._index(session)
        return session.model_copy(deep=True), True

    async def get(self, session_id: str) -> MidTierSession | None:
        """The session with this id, if any."""
        session = self._sessions.get(session_id)
        return session.model_copy(deep=True) if session is not None else None

    async def by_channel(self, channel: str, channel_conversation_id: str) -> MidTierSession | None:
        """The newest session of a channel conversation, active or closed."""
        ids = self._by_channel.get((channel, channel_conversation_id))
        if not ids:
            return None
        # max() keeps the first of equals; scan newest-inserted first so ties go to it.
        newest = max(
            (self._sessions[i] for i in reversed(ids)),
            key=lambda s: (s.status == "active", s.created_at),
        )
        return newest.model_copy(deep=True)

    async def by_provider(
        self, provider: str, provider_conversation_id: str
    ) -> MidTierSession | None:
        """The session any leg of which has this provider conversation (the latest saved)."""
        session_id = self._legs.get((provider, provider_conversation_id))
        return await self.get(session_id) if session_id is not None else None

    async def by_user(self, user_id: str) -> list[MidTierSession]:
        """Every session of a user, most recently updated first."""
        found = [s for s in self._sessions.values() if s.user_id == user_id]
        found.sort(key=lambda s: s.updated_at, reverse=True)
        return [s.model_copy(deep=True) for s in found]

    async def by_identity(self, identity: str) -> list[MidTierSession]:
        """Active sessions whose verified claims carry ``identity``, newest update first."""
        found = [self._sessions[i] for i in self._identities.get(identity, ())]
        found.sort(key=lambda s: s.updated_at, reverse=True)
        return [s.model_copy(deep=True) for s in found]

    async def save(self, session: MidTierSession) -> MidTierSession:
        """Write if ``session.version`` is current (0 for a new session), else ``ConflictError``.

        Returns a copy with the version bumped and ``updated_at`` set; ``session`` itself is
        not changed.
        """
        self._check_save(session, session.version)
        return self._store_session(session, session.version).model_copy(deep=True)

    def _check_save(self, session: MidTierSession, expected: int) -> None:
        stored = self._sessions.get(session.id)
        current = stored.version if stored is not None else 0
        if current != expected:
            raise ConflictError(
                f"session {session.id}: version {expected} is not current"
                f" ({'never stored' if stored is None else current})"
            )
        if session.status == "active":
            active = self._active((session.channel, session.channel_conversation_id))
            if active is not None and active.id != session.id:
                raise ConflictError(
                    f"session {session.id}: channel conversation already has active session"
                    f" {active.id}"
                )

    def _store_session(self, session: MidTierSession, expected: int) -> MidTierSession:
        saved = session.model_copy(
            deep=True, update={"version": expected + 1, "updated_at": self._stamp()}
        )
        previous = self._sessions.get(saved.id)
        self._sessions[saved.id] = saved
        self._index(saved, previous)
        return saved

    async def list_sessions(
        self, *, status: str | None = None, provider: str | None = None, limit: int = 100
    ) -> list[MidTierSession]:
        """Newest (``updated_at``) first. ``provider`` filters on the open leg's provider."""
        found = [
            s
            for s in self._sessions.values()
            if (status is None or s.status == status)
            and (provider is None or s.current_provider == provider)
        ]
        found.sort(key=lambda s: s.updated_at, reverse=True)
        return [s.model_copy(deep=True) for s in found[: max(limit, 0)]]

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
        current = as_utc(self._clock())
        self._seen = {k: t for k, t in self._seen.items() if t > current}
        self._codes = {k: c for k, c in self._codes.items() if as_utc(c.expires_at) > current}
        return count

    async def open_leg_counts(self) -> dict[str, int]:
        """How many active sessions have an open leg with each provider."""
        counts: dict[str, int] = {}
        for session in self._sessions.values():
            provider = session.current_provider
            if session.status == "active" and provider is not None:
                counts[provider] = counts.get(provider, 0) + 1
        return counts

    async def open_conversations(self, provider: str) -> dict[str, str]:
        """Provider conversation id -> session id of the active sessions whose open leg is
        with ``provider``."""
        return {
            leg.provider_conversation_id: session.id
            for session in self._sessions.values()
            if session.status == "active"
            and (leg := session.current_leg) is not None
            and leg.provider == provider
        }

    async def idle_sessions(self, before: datetime, limit: int = 100) -> list[str]:
        """Ids of active sessions not updated since ``before``, longest idle first."""
        before = as_utc(before)
        idle = [s for s in self._sessions.values() if s.status == "active"]
        idle = [s for s in idle if s.updated_at < before]
        idle.sort(key=lambda s: s.updated_at)
        return [s.id for s in idle[: max(limit, 0)]]

    # ------------------------------------------------------------------ transcript, decisions

    def _require(self, session_id: str) -> None:
        if session_id not in self._sessions:
            raise NotFound(f"unknown session {session_id}")

    async def append_transcript(self, session_id: str, entry: TranscriptEntry) -> TranscriptEntry:
        """Append a copy of ``entry`` with the next ``seq``; return that copy."""
        self._require(session_id)
        return self._append(session_id, entry).model_copy(deep=True)

    async def transcript(
        self, session_id: str, *, last: int | None = None, before: int | None = None
    ) -> list[TranscriptEntry]:
        """Oldest first; ``last`` keeps only the newest entries (``last <= 0``: none);
        ``before`` only those with a lower ``seq``."""
        entries = self._transcripts.get(session_id, [])
        if before is not None:
            entries = [e for e in entries if e.seq < before]
        if last is not None:
            entries = entries[-last:] if last > 0 else []
        return [e.model_copy(deep=True) for e in entries]

    async def append_decision(self, session_id: str, decision: RouteDecision) -> None:
        """Record a route decision for the session."""
        self._require(session_id)
        self._decisions.setdefault(session_id, []).append(decision.model_copy(deep=True))

    async def decisions(self, session_id: str) -> list[RouteDecision]:
        """The session's route decisions, oldest first."""
        return [d.model_copy(deep=True) for d in self._decisions.get(session_id, [])]

    # ------------------------------------------------------------------ dedupe, codes

    async def seen(self, key: str, ttl_seconds: float) -> bool:
        """Record ``key`` for ``ttl_seconds``; True if it was already recorded and unexpired."""
        return self._seen_key(key, ttl_seconds)

    def _seen_key(self, key: str, ttl_seconds: float) -> bool:
        current = as_utc(self._clock())
        expires_at = self._seen.get(key)
        if expires_at is not None and expires_at > current:
            return True
        self._seen[key] = current + timedelta(seconds=ttl_seconds)
        return False

    async def put_code(self, code_hash: str, record: AuthCodeRecord) -> None:
        """Store an authorization code's record under the code's hash."""
        self._codes[code_hash] = record.model_copy(deep=True)

    async def take_code(self, code_hash: str) -> AuthCodeRecord | None:
        """Remove and return the record; a code can be taken once.

        Expired records may still be returned (until ``expire`` drops them): the caller
        checks ``expires_at``.
        """
        return self._codes.pop(code_hash, None)

    async def peek_code(self, code_hash: str) -> AuthCodeRecord | None:
        """The record, left in place (expired ones too, until ``expire`` drops them)."""
        found = self._codes.get(code_hash)
        return found.model_copy(deep=True) if found is not None else None

    # ------------------------------------------------------------------ inbound, commit

    async def inbound_put(self, entry: InboundEntry, ttl_seconds: float) -> InboundEntry | None:
        """Record a user's activity with its dedupe key and session (None: a duplicate)."""
        if entry.dedupe_key is not None and self._seen_key(entry.dedupe_key, ttl_seconds):
            return None
        found = self._active((entry.channel, entry.conversation))
        if found is None:
            at = self._stamp()
            found = MidTierSession(
                user_id=entry.user_id,
                channel=entry.channel,
                channel_conversation_id=entry.conversation,
                channel_state=dict(entry.channel_state),
                created_at=at,
                updated_at=at,
                version=1,
            )
            self._sessions[found.id] = found
            self._index(found)
        stored = entry.model_copy(deep=True, update={"session_id": found.id})
        said = user_entry(stored, open_leg_of(found))
        if said is not None:
            self._append(found.id, said)
        self._inbound[stored.id] = stored
        return stored.model_copy(deep=True)

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

    async def commit(self, changes: Changes) -> MidTierSession:
        """Apply a unit of work: everything, or (on a version conflict) nothing."""
        self._check_save(changes.session, changes.expected_version)
        saved = self._store_session(changes.session, changes.expected_version)
        for entry in changes.transcript:
            self._append(saved.id, entry)
        decisions = self._decisions.setdefault(saved.id, [])
        decisions.extend(d.model_copy(deep=True) for d in changes.decisions)
        for out in changes.outbox:
            self._outbox.setdefault(out.id, out.model_copy(deep=True))
        for done in changes.inbound_done:
            self._inbound.pop(done, None)
        for done in changes.inbox_done:
            self._inbox.pop(done, None)
        for done in changes.outbox_done:
            self._outbox.pop(done, None)
        return saved.model_copy(deep=True)

    def _append(self, session_id: str, entry: TranscriptEntry) -> TranscriptEntry:
        entries = self._transcripts.setdefault(session_id, [])
        stored = entry.model_copy(deep=True, update={"seq": len(entries) + 1})
        entries.append(stored)
        return stored

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

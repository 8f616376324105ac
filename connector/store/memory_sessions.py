"""The in-process store's session map and history: sessions, their indexes, transcripts and
route decisions.

Every read returns a deep copy and every write stores one; the version check on ``save`` is
the same as the SQLite backend's. This part knows nothing of the queues and remembered keys
that :class:`~connector.store.memory.MemoryStore` puts together with it.
"""

from __future__ import annotations

from datetime import datetime

from connector.errors import ConflictError, NotFound
from connector.routing.decision import RouteDecision
from connector.sessions import MidTierSession, TranscriptEntry
from connector.store.common import Clock, Stamper, as_utc, indexed_identities, new_session

ChannelKey = tuple[str, str]


class MemorySessions:
    """The :class:`~connector.store_protocol.SessionMap` and
    :class:`~connector.store_protocol.History` parts of the in-process store, in dicts.

    ``clock`` supplies the timestamps.
    """

    def __init__(self, *, clock: Clock) -> None:
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
        session = new_session(user_id, channel, channel_conversation_id, self._stamp())
        self._sessions[session.id] = session
        self._index(session)
        return session.model_copy(deep=True), True

    async def get(self, session_id: str) -> MidTierSession | None:
        """The session with this id, if any."""
        session = self._sessions.get(session_id)
        return session.model_copy(deep=True) if session is not None else None

    def keep(self, session: MidTierSession) -> None:
        """Nothing to do: every read here is a copy of what is stored."""

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

    def _append(self, session_id: str, entry: TranscriptEntry) -> TranscriptEntry:
        entries = self._transcripts.setdefault(session_id, [])
        stored = entry.model_copy(deep=True, update={"seq": len(entries) + 1})
        entries.append(stored)
        return stored

"""The storage side of midtier's extension points: the store, in small parts, and the
per-session lock (re-exported by :mod:`connector.interfaces`, where every protocol is listed).

The store is a few small protocols, one per kind of record: the session map
(:class:`SessionMap`), transcripts and route decisions (:class:`History`), dedupe keys
(:class:`Dedupe`), authorization codes (:class:`CodeStore`), the durable inbound
(:class:`InboundStore`), the units of work (:class:`Commits`), the outbox
(:class:`OutboxStore`), the provider inbox (:class:`InboxStore`) and the legs' outcomes
(:class:`OutcomeStore`). Each part of the core depends only on the parts it uses; a backend
implements all of them (:class:`SessionStore`) and passes one contract suite per part
(``tests/connector/store``).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol

from connector.records import (
    AuthCodeRecord,
    Changes,
    InboundEntry,
    InboxEntry,
    OutboxEntry,
    OutcomeCount,
)
from connector.routing.decision import RouteDecision
from connector.sessions import MidTierSession, TranscriptEntry


class SessionMap(Protocol):
    """Mid-tier sessions and their legs, found by id, by channel conversation, by provider
    conversation, by user and by verified identity."""

    async def find_or_create(
        self, channel: str, channel_conversation_id: str, user_id: str
    ) -> tuple[MidTierSession, bool]:
        """The active session for a channel conversation, created if missing (bool: created)."""
        ...

    async def get(self, session_id: str) -> MidTierSession | None: ...

    async def by_channel(self, channel: str, channel_conversation_id: str) -> MidTierSession | None:
        """The session a channel conversation is joined to now: its active session, else its
        newest closed one. A session that moved to another channel conversation
        (``channel`` / ``channel_conversation_id`` changed and saved) is found there only."""
        ...

    async def by_provider(
        self, provider: str, provider_conversation_id: str
    ) -> MidTierSession | None:
        """The session any leg of which has this provider conversation."""
        ...

    async def by_user(self, user_id: str) -> list[MidTierSession]: ...

    async def by_identity(self, identity: str) -> list[MidTierSession]:
        """Active sessions whose verified claims carry ``identity`` (e.g.
        ``"phone:+16505551234"``, see :mod:`connector.claims`), most recently updated first:
        an index kept on every save, not a scan."""
        ...

    async def save(self, session: MidTierSession) -> MidTierSession:
        """Write if ``session.version`` is still current, else raise ``ConflictError``.

        Returns the session with its version bumped.
        """
        ...

    async def list_sessions(
        self, *, status: str | None = None, provider: str | None = None, limit: int = 100
    ) -> list[MidTierSession]:
        """Newest first. ``provider`` filters on the current (open) leg's provider."""
        ...

    async def expire(self, idle_before: datetime) -> int:
        """Close active sessions idle since before the given time; return how many. Also
        purges the dedupe keys and authorization codes that expired (a backend's
        housekeeping, done on the same pass)."""
        ...

    async def open_leg_counts(self) -> dict[str, int]:
        """How many active sessions have an open leg with each provider (providers with none
        are left out), counted by the store without reading every session."""
        ...

    async def open_conversations(self, provider: str) -> dict[str, str]:
        """Provider conversation id -> session id of each active session whose open leg is
        with ``provider`` (a provider's queue at start-up), without reading the sessions."""
        ...

    async def idle_sessions(self, before: datetime, limit: int = 100) -> list[str]:
        """Ids of active sessions not updated since ``before``, longest idle first, at most
        ``limit`` (a page: expiry never holds every session in memory)."""
        ...


class History(Protocol):
    """Each session's transcript and route decisions, in order."""

    async def append_transcript(self, session_id: str, entry: TranscriptEntry) -> TranscriptEntry:
        """Append and return the entry with its ``seq`` set."""
        ...

    async def transcript(
        self, session_id: str, *, last: int | None = None, before: int | None = None
    ) -> list[TranscriptEntry]:
        """Oldest first; ``last`` keeps only the newest entries; ``before`` only entries whose
        ``seq`` is below it (a page of older history)."""
        ...

    async def append_decision(self, session_id: str, decision: RouteDecision) -> None: ...

    async def decisions(self, session_id: str) -> list[RouteDecision]: ...


class InboundStore(Protocol):
    """User activities recorded before they are acknowledged, until processed."""

    async def inbound_put(self, entry: InboundEntry, ttl_seconds: float) -> InboundEntry | None:
        """Record a user's activity, in one transaction: its dedupe key (None if the key was
        already recorded and has not expired: a duplicate, nothing written), the active
        session of its channel conversation (created if missing, with the entry's
        ``channel_state``), a transcript entry for a message, and the entry itself.

        Returns the entry with ``session_id`` set.
        """
        ...

    async def inbound_target(self, entry: InboundEntry) -> str | None:
        """The active session that recording ``entry`` would go to, without writing: None
        when its conversation has none yet or ``entry`` repeats a dedupe key not expired."""
        ...

    async def inbound_pending(self, channel: str, conversation: str) -> list[InboundEntry]:
        """Recorded, unprocessed activities of one channel conversation, in record order."""
        ...

    async def inbound_keys(self) -> list[tuple[str, str]]:
        """Every (channel, conversation) with activities waiting (start-up after a crash)."""
        ...


class Commits(Protocol):
    """Units of work: what handling one event wrote, applied in one transaction."""

    async def commit(self, changes: Changes) -> MidTierSession:
        """Apply ``changes`` atomically: save the session if its stored version is still
        ``expected_version`` (else ``ConflictError`` and nothing is written), append its
        transcript entries and decisions, keep its outcomes (as ``OutcomeEntry`` says: one
        per leg), queue the outbox entries, drop the processed
        inbound and inbox entries and the outbox entries it is done with, remember its
        ``dedupe_key`` (already remembered: ``RepeatedMessage`` and nothing is written).
        Returns the saved session (version bumped)."""
        ...

    def keep(self, session: MidTierSession) -> None:
        """The caller is done with ``session`` and changed nothing in it since its last
        commit: the store may hand this very object to the next ``get`` of it (one caller,
        who then owns it) instead of a fresh copy."""
        ...


class Dedupe(Protocol):
    """Keys remembered for a while, to drop repeats (platform retries, replayed requests)."""

    async def seen(self, key: str, ttl_seconds: float) -> bool:
        """Record ``key``; True if it was already recorded and has not expired."""
        ...


class CodeStore(Protocol):
    """Authorization codes by their hash: single use, bound to a session and a provider."""

    async def put_code(self, code_hash: str, record: AuthCodeRecord) -> None: ...

    async def take_code(self, code_hash: str) -> AuthCodeRecord | None:
        """Remove and return atomically: a code can be taken once."""
        ...

    async def peek_code(self, code_hash: str) -> AuthCodeRecord | None:
        """The record, left in place (expired ones too, until ``expire`` drops them)."""
        ...


class OutboxStore(Protocol):
    """Activities for users, kept until their channel accepted them."""

    async def outbox_put(self, entry: OutboxEntry) -> None: ...

    async def outbox_pending(self, channel: str, conversation_id: str) -> list[OutboxEntry]:
        """Entries not yet delivered for one conversation, in the order they were put."""
        ...

    async def outbox_due(self, before: datetime, limit: int = 100) -> list[OutboxEntry]:
        """Entries whose next attempt is due, oldest first."""
        ...

    async def outbox_heads(self, before: datetime, limit: int = 100) -> list[OutboxEntry]:
        """The oldest entry of each conversation (the one the others wait behind), where its
        next attempt is due by ``before``; earliest due first, then put order."""
        ...

    async def outbox_done(self, entry_id: str) -> None: ...

    async def outbox_retry(self, entry_id: str, next_attempt_at: datetime, error: str) -> None: ...


class InboxStore(Protocol):
    """Provider callbacks, kept until the core has applied them."""

    async def inbox_put(self, entry: InboxEntry) -> None:
        """Keep an accepted provider callback (an id already kept is ignored)."""

    async def inbox_pending(self, provider: str, conversation: str) -> list[InboxEntry]:
        """Callbacks of one provider conversation not yet applied, in the order they were put."""
        ...

    async def inbox_keys(self) -> list[tuple[str, str]]:
        """Every (provider, conversation) with callbacks waiting (start-up after a crash)."""
        ...

    async def inbox_done(self, entry_id: str) -> None: ...


class OutcomeStore(Protocol):
    """How legs ended for their providers, per provider and intent (written by ``commit``,
    one per leg): what success rates and ``midtier stats`` are made of."""

    async def outcome_counts(
        self, since: datetime, *, bucket_s: int | None = None
    ) -> list[OutcomeCount]:
        """Successes, totals and switches of the outcomes at or after ``since``, per provider
        and intent, ordered by provider, intent (and bucket); with ``bucket_s``, per time
        bucket of that many seconds too (buckets start at multiples of it since the epoch)."""
        ...

    async def outcomes_purge(self, before: datetime) -> int:
        """Forget the outcomes older than ``before``; return how many."""
        ...


class DeliveryStore(OutboxStore, SessionMap, Protocol):
    """What the outbox uses: its entries, and whether a reply's session is still open."""


class TurnStore(SessionMap, History, Commits, Protocol):
    """What a unit of work reads and writes (:mod:`connector.work`)."""


class ProviderStore(SessionMap, History, Dedupe, Protocol):
    """What providers may read and use of the store (``ProviderHost.store``)."""


class ChannelStore(SessionMap, History, Dedupe, OutboxStore, Protocol):
    """What channels may read and use of the store (``ChannelHost.store``): also the
    replies still waiting for a conversation (a web chat page shows them on resume)."""


class SessionStore(
    SessionMap,
    History,
    InboundStore,
    Commits,
    Dedupe,
    CodeStore,
    OutboxStore,
    InboxStore,
    OutcomeStore,
    Protocol,
):
    """A whole backend: every part, and a life cycle."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class Lock(Protocol):
    """Per-session ordering: one holder at a time, waiters served in arrival order."""

    def hold(self, key: str) -> AbstractAsyncContextManager[None]: ...

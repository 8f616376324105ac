"""The records midtier keeps besides sessions: what waits to go out (outbox), what came in
and waits to be processed (inbound, provider inbox), what one unit of work writes, what
an authorization code is bound to, and how legs ended for their providers (outcomes and
the verdicts they record). The queue entries a message passes through (outbox, inbound)
are plain records (:mod:`connector.plain`); what a unit of work writes and the verdicts are
plain dataclasses; the others (outcomes, provider inbox, codes) are pydantic models. The
store protocols that keep them are in :mod:`connector.interfaces`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from connector.activity import now
from connector.plain import Record
from connector.routing.decision import RouteDecision
from connector.sessions import MidTierSession, TranscriptEntry


@dataclass(slots=True, kw_only=True)
class OutboxEntry(Record):
    """An outbound activity waiting for its channel to accept it."""

    id: str
    session_id: str
    channel: str
    conversation_id: str
    activity: dict[str, Any]
    created_at: datetime = field(default_factory=now)
    attempts: int = 0
    next_attempt_at: datetime = field(default_factory=now)
    last_error: str | None = None


@dataclass(slots=True, kw_only=True)
class InboundEntry(Record):
    """A user's activity, recorded (with its dedupe key, in one transaction) before the
    channel acknowledged it, and kept until the core has processed it."""

    id: str  # midtier's id of the activity: what providers see, stable across retries
    channel: str
    conversation: str  # the channel conversation id
    user_id: str
    activity: dict[str, Any]  # wire form
    # The user's verified claims, when the channel has them (None: keep the session's).
    claims: dict[str, Any] | None = None
    ref: str | None = None  # the channel's own id of the message (e.g. the page's client id)
    # Key under which a repeat of this activity is recognised (None: never deduplicated).
    dedupe_key: str | None = None
    # Channel-owned state for a session this activity creates (``channel_state``).
    channel_state: dict[str, Any] = field(default_factory=dict)
    # What else a reply needs besides the conversation id (e.g. a Bot Framework
    # ``serviceUrl``): becomes the session's ``channel_state["address"]``.
    address: dict[str, Any] | None = None
    session_id: str = ""  # set by the store: the session it was recorded into
    created_at: datetime = field(default_factory=now)


class OutcomeEntry(BaseModel):
    """How one leg ended for its provider and the intent it was opened for: what success
    rates are measured from (``connector.outcomes``). The store keeps one per leg: an
    ``explicit`` outcome (an agent's disposition, the user's rating) replaces any other,
    one that is not never replaces an explicit one, and ``switched`` stays once set."""

    leg_id: str
    session_id: str
    provider: str
    intent: str = ""  # the intent the leg was opened for ("": none known)
    kind: str  # resolved, moved_on, handed_off, failed, escalated, transferred, disposition...
    success: bool
    detail: str = ""  # the disposition's or the rating's name
    explicit: bool = False
    switched: bool = False  # the leg ended with a switch away from its provider
    at: datetime = Field(default_factory=now)


@dataclass(slots=True)
class Changes:
    """What one unit of work on a session writes; ``SessionStore.commit`` applies all of it
    in one transaction, or none of it. Plain data: its parts are models validated when
    they were made, and a unit of work makes one of these for every commit."""

    session: MidTierSession
    expected_version: int  # the version the unit of work read (0: a never-stored session)
    transcript: list[TranscriptEntry] = field(default_factory=list)
    decisions: list[RouteDecision] = field(default_factory=list)
    outbox: list[OutboxEntry] = field(default_factory=list)
    inbound_done: list[str] = field(default_factory=list)
    inbox_done: list[str] = field(default_factory=list)
    outbox_done: list[str] = field(default_factory=list)  # entries the outbox is done with
    # The dedupe key of a user's activity this unit of work processed before it was recorded
    # on its own (``UserInbound``): remembered for ``dedupe_ttl_s`` with the rest, or, if it is
    # remembered already, ``RepeatedMessage`` and nothing written.
    dedupe_key: str | None = None
    dedupe_ttl_s: float = 0.0
    # How legs ended for their providers (``connector.outcomes``), one per leg in the store.
    outcomes: list[OutcomeEntry] = field(default_factory=list)
    # Authorization codes issued in the unit of work (code hash, record), as ``put_code``.
    codes: list[tuple[str, AuthCodeRecord]] = field(default_factory=list)


@dataclass(frozen=True)
class OutcomeCount:
    """The outcomes of one provider and intent since a time (in one time bucket, if asked)."""

    provider: str
    intent: str
    successes: int
    total: int
    switches: int  # of those, legs that ended with a switch away
    start: datetime | None = None  # the bucket's start (None: not bucketed)


class InboxEntry(BaseModel):
    """What a provider sent outside a delivery (a callback), kept until the core applied it."""

    id: str
    provider: str
    conversation: str  # the provider conversation id
    activities: list[dict[str, Any]] = Field(default_factory=list)
    # {"action": "hand_back"|"transfer", "target"?: str, "reason": str}
    action: dict[str, Any] | None = None
    created_at: datetime = Field(default_factory=now)


class AuthCodeRecord(BaseModel):
    """What an authorization code is bound to. Stored under the code's hash, never the code."""

    session_id: str
    provider: str
    expires_at: datetime
    scope: dict[str, Any] = Field(default_factory=dict)


KINDS: dict[str, bool] = {
    "resolved": True,
    "moved_on": True,
    "handed_off": False,
    "failed": False,
    "escalated": False,
    "transferred": False,
}
"""How a leg can end without anybody's word on it, and whether that is a success."""


@dataclass(frozen=True)
class Verdict:
    """An outcome for a leg: its kind, whether it is a success, and (for a disposition or
    a rating) its name; ``explicit``: somebody said so (an agent, the user)."""

    kind: str
    success: bool
    detail: str = ""
    explicit: bool = False


def ended(kind: str) -> Verdict:
    """The outcome of a leg that ended as ``kind`` says (one of :data:`KINDS`)."""
    return Verdict(kind, KINDS[kind])


RESOLVED = ended("resolved")

"""Mid-tier sessions and legs: the session map's records.

A :class:`MidTierSession` is one conversation of one user as midtier sees it. Each time it is
joined to a provider, a :class:`Leg` records the communication session: the channel side
(channel name, channel conversation id) and the provider side (provider name, provider
conversation id), when it opened and closed and why. Exactly one leg is open at a time while
the session is active; the others are history.

A session is joined to one channel conversation at a time (``channel``,
``channel_conversation_id``), and may move to another (:mod:`connector.continuation`). A leg
never changes sides: on a move the open leg closes and a new one opens on the new channel
conversation with the same provider conversation, so the legs show every channel the
conversation went through.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from connector.activity import now
from connector.plain import Record

SessionStatus = Literal["active", "closed"]
Speaker = Literal["user", "bot", "agent", "system"]
# How a reply failed for good: refused by the platform, or not taken before the give-up time.
FailureOutcome = Literal["rejected", "given_up"]
KEPT_FAILURES = 20  # a session keeps its newest delivery failures, not all of them
EXCERPT_CHARS = 80


def new_id(prefix: str) -> str:
    """An unguessable id: 160 bits from the OS's CSPRNG, URL-safe, with a readable prefix."""
    return f"{prefix}_{secrets.token_urlsafe(20)}"


LEG_INTENT = "intent"  # the ``Leg.data`` key of the intent a leg was opened for


@dataclass(slots=True, kw_only=True)
class Leg(Record):
    """One communication session: a channel conversation joined to a provider conversation."""

    id: str = field(default_factory=lambda: new_id("leg"))
    channel: str
    channel_conversation_id: str
    provider: str
    provider_conversation_id: str = ""
    opened_at: datetime = field(default_factory=now)
    closed_at: datetime | None = None
    close_reason: str | None = None
    # Why this leg was opened (route decision reason, handoff request, agent transfer...).
    open_reason: str = ""
    # Provider-owned state that must survive restarts (e.g. the agent desk's assignment).
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    @property
    def opened_for(self) -> str:
        """The intent this leg was opened for, kept in ``data`` (``connector.outcomes``;
        "": none known)."""
        found = self.data.get(LEG_INTENT)
        return found if isinstance(found, str) else ""


def excerpt(text: object) -> str | None:
    """The start of a reply's text, for people reading a failure record."""
    if not isinstance(text, str) or not text:
        return None
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


@dataclass(slots=True, kw_only=True)
class DeliveryFailure(Record):
    """A reply that never reached the user, kept on the session so that people can see it
    (``midtier sessions show``). ``reason`` is the platform's own error text (no URLs, no
    tokens)."""

    at: datetime = field(default_factory=now)
    channel: str
    activity_id: str
    excerpt: str | None = None  # the start of the reply's text
    reason: str
    attempts: int
    outcome: FailureOutcome


@dataclass(slots=True, kw_only=True)
class MidTierSession(Record):
    """One conversation of one user; outlives any single leg."""

    id: str = field(default_factory=lambda: new_id("mts"))
    user_id: str
    channel: str
    channel_conversation_id: str
    status: SessionStatus = "active"
    created_at: datetime = field(default_factory=now)
    updated_at: datetime = field(default_factory=now)
    legs: list[Leg] = field(default_factory=list)
    # The user's verified claims, handed to providers that redeem an authorization code.
    claims: dict[str, Any] = field(default_factory=dict)
    # Conversation-scoped values providers may share (slots).
    slots: dict[str, Any] = field(default_factory=dict)
    # Channel-owned state (e.g. the hash of the web chat's resume secret); never shown to
    # providers.
    channel_state: dict[str, Any] = field(default_factory=dict)
    # Replies that could not be delivered, newest last (at most KEPT_FAILURES).
    delivery_failures: list[DeliveryFailure] = field(default_factory=list)
    # Optimistic concurrency: bumped by every successful save.
    version: int = 0

    @property
    def channel_key(self) -> tuple[str, str]:
        """The channel conversation the session is joined to now."""
        return self.channel, self.channel_conversation_id

    @property
    def current_leg(self) -> Leg | None:
        """The open leg, if any (the last leg, while it is open)."""
        legs = self.legs
        if legs:
            leg = legs[-1]
            if leg.closed_at is None:
                return leg
        return None

    def held_by(self, provider: str) -> Leg | None:
        """The open leg, if it is ``provider``'s (the conversation is with it now)."""
        leg = self.current_leg
        return leg if leg is not None and leg.provider == provider else None

    @property
    def current_provider(self) -> str | None:
        leg = self.current_leg
        return leg.provider if leg else None

    def record_failure(self, failure: DeliveryFailure) -> bool:
        """Keep ``failure`` (False if that activity's failure is already kept: a retry of the
        same record after a crash), dropping the oldest beyond :data:`KEPT_FAILURES`."""
        if any(f.activity_id == failure.activity_id for f in self.delivery_failures):
            return False
        self.delivery_failures = [*self.delivery_failures, failure][-KEPT_FAILURES:]
        return True

    def leg(self, leg_id: str) -> Leg | None:
        for leg in self.legs:
            if leg.id == leg_id:
                return leg
        return None

    def leg_for_provider(self, provider: str, provider_conversation_id: str) -> Leg | None:
        for leg in reversed(self.legs):
            if (
                leg.provider == provider
                and leg.provider_conversation_id == provider_conversation_id
            ):
                return leg
        return None


@dataclass(slots=True, kw_only=True)
class TranscriptEntry(Record):
    """One line of a session's transcript: who said what, on which leg."""

    seq: int = 0  # assigned by the store, increasing per session
    at: datetime = field(default_factory=now)
    speaker: Speaker
    text: str | None = None
    provider: str | None = None
    leg_id: str | None = None
    activity: dict[str, Any] = field(default_factory=dict)  # the wire activity, as sent
    # The channel's own id of a user message (the web chat page's client id), so a client
    # can match its history to what it sent; channel-side only, never passed to providers.
    ref: str | None = None


# Fields of a transcript entry that stay on the channel side: the wire activity names the
# channel conversation, and ``ref`` is the client's id. Providers get the rest.
CHANNEL_ONLY = frozenset({"activity", "ref"})

"""The extension points of midtier, in one place.

Each is a small ``typing.Protocol``: a channel adapter, a provider, a session store, an intent
classifier, a per-session lock, and the host that providers call back into. Optional
capabilities are separate protocols checked with ``isinstance`` (they are runtime-checkable).
The records the store keeps besides sessions are in :mod:`connector.records` (re-exported).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, Field

from connector.activity import Activity
from connector.channels import ChannelRequest, ChannelResponse
from connector.config import Config
from connector.records import AuthCodeRecord, Changes, InboundEntry, InboxEntry, OutboxEntry
from connector.routing.decision import RouteDecision
from connector.sessions import Leg, MidTierSession, TranscriptEntry

T = TypeVar("T")

# --------------------------------------------------------------------------- NLU


class IntentResult(BaseModel):
    """What the classifier read in one message."""

    name: str | None
    confidence: float
    ranking: list[tuple[str, float]] = Field(default_factory=list)
    out_of_scope: bool = False


class IntentClassifier(Protocol):
    """Reads the intent of a user message. Must be cheap: it runs on every message."""

    def classify(self, text: str) -> IntentResult: ...


@runtime_checkable
class AsyncIntentClassifier(Protocol):
    """A classifier that may ask a service (e.g. a Rasa bot's ``/model/parse``) first."""

    def classify(self, text: str) -> IntentResult: ...

    async def aclassify(self, text: str) -> IntentResult: ...


# --------------------------------------------------------------------------- channels


class ChannelAdapter(Protocol):
    """A messaging app's interface: at least a way to send to it.

    Built as ``Kind(context: ChannelContext[Kind.Settings])`` (:mod:`connector.context`).
    A channel whose platform posts webhooks is also a :class:`WebhookChannel`; one whose
    clients hold a socket (the web chat, Direct Line) is ``Mountable`` and records what they
    send through its :class:`ChannelHost`.
    """

    name: str

    async def send(self, activity: Activity) -> str:
        """Send to the platform; return the platform's message id.

        Raise ``ChannelError`` (with ``retry_after`` when the platform says) for what may
        succeed later (429, 5xx, timeouts), ``DeliveryRejected`` for what cannot (blocked,
        outside a messaging window), ``ChannelUnavailable`` when nobody can receive it now.
        """
        ...


@runtime_checkable
class WebhookChannel(ChannelAdapter, Protocol):
    """A channel whose platform posts webhooks to ``/channels/{name}``.

    The core owns that route: for a POST it reads the body (size limit), calls ``verify``,
    then ``handshake`` if the adapter has one, then ``parse``, and records every activity
    (deduplicated by ``activity.id``, the platform's message id) before it answers. A GET
    goes to ``handshake`` alone (``Handshakes``), or is a 405.
    """

    async def verify(self, request: ChannelRequest) -> None:
        """Check the platform's signature over the raw body; raise ``AuthError`` (401) or
        ``Forbidden`` (403) otherwise. Nothing is read or written before it passes."""

    async def parse(self, request: ChannelRequest) -> list[Activity]:
        """Every user event of a verified request as an activity, in the platform's order.

        Each has ``id`` (the platform's message or event id: the dedupe key),
        ``conversation.id`` (the channel conversation, holding what a reply needs to be
        addressed), ``from.id`` (the user). ``channelData.address``, if set, is what else a
        reply needs (e.g. a ``serviceUrl``): kept on the session, never shown to providers,
        and given back on every outbound activity as ``channelData.midtier.address``.
        ``channelData.identities``, if set, lists what the platform proved of the sender
        (``["phone:+16505551234"]``, see :mod:`connector.claims`): it joins the verified claims.
        Echoes, receipts and unsupported kinds are left out (an empty list is a 200).
        Raise ``MalformedPayload`` (400) for a body that is not the platform's protocol.
        """
        ...


@runtime_checkable
class Handshakes(Protocol):
    """A channel with a verification handshake (Meta's ``hub.challenge`` GET, Slack's
    signed ``url_verification`` POST): an answer for a handshake request, else None."""

    async def handshake(self, request: ChannelRequest) -> ChannelResponse | None: ...


@runtime_checkable
class Acknowledges(Protocol):
    """A channel whose platform wants a particular answer once its events are recorded
    (Twilio's empty TwiML, Bot Framework's 201); without it the answer is ``200 {}``."""

    async def acknowledge(
        self, request: ChannelRequest, activities: list[Activity]
    ) -> ChannelResponse: ...


class DeliveryQueue(Protocol):
    """The outbox as a socket channel sees it."""

    def paused(self, channel: str, conversation_id: str) -> AbstractAsyncContextManager[None]:
        """Hold the conversation's deliveries during the block, then send what is pending."""
        ...

    async def flush(self, channel: str, conversation_id: str) -> int:
        """Deliver the conversation's pending entries in order; return how many went out."""
        ...


class ChannelHost(Protocol):
    """What a channel calls into: the core's channel side.

    Webhook channels need none of it (the core records what ``parse`` returns); socket
    channels (the web chat, Direct Line) record what their clients send with ``submit``.
    """

    config: Config
    store: SessionStore
    outbox: DeliveryQueue

    async def submit(
        self,
        channel: str,
        activity: Activity,
        *,
        claims: dict[str, Any] | None = None,
        ref: str | None = None,
        channel_state: dict[str, Any] | None = None,
        address: dict[str, Any] | None = None,
    ) -> InboundEntry | None:
        """Record a user's activity; once this returns it may be acknowledged. None: a
        repeat of ``ref`` already recorded. ``MalformedPayload`` for what midtier cannot take."""
        ...

    async def signal_user(self, channel: str, conversation: str, activity: Activity) -> None:
        """A passing signal from the user (``typing``): not recorded."""

    async def set_channel_state(self, session_id: str, values: dict[str, Any]) -> None:
        """Change channel-owned state of a session (e.g. a new resume secret's hash)."""


@runtime_checkable
class SpeaksForMidtier(Protocol):
    """A provider shipped with midtier whose activities marked ``channelData.midtier.notice``
    reach the user in midtier's own voice. Remote providers never get this."""

    speaks_for_midtier: bool


@runtime_checkable
class Mountable(Protocol):
    """An adapter that serves its own HTTP routes besides the core's webhook route (pages,
    WebSockets, Direct Line's REST API). ``app`` is the ``aiohttp.web.Application``."""

    def mount(self, app: Any) -> None: ...


# --------------------------------------------------------------------------- providers


class HandoffContext(BaseModel):
    """What a provider receives when a conversation is switched to it."""

    session_id: str
    user_id: str
    channel: str
    reason: str  # for people: "reported fraud", "asked for a person"
    detail: str = ""  # the rule behind it (the router's reason), for operators
    from_provider: str | None = None
    intent: str | None = None
    confidence: float = 0.0
    intents: list[dict[str, Any]] = Field(default_factory=list)
    slots: dict[str, Any] = Field(default_factory=dict)
    transcript: list[TranscriptEntry] = Field(default_factory=list)
    auth_code: str | None = None
    token_url: str | None = None


class Provider(Protocol):
    """Who answers: a bot, the agent desk, a remote service.

    Built as ``Kind(context: ProviderContext[Kind.Settings, ProviderHost])``
    (:mod:`connector.context`). After ``open`` the core delivers a ``midtier.handoff`` event
    (the HandoffContext as its ``value``) and then the user's message. Optional
    ``async start()`` / ``async stop()`` run with the server.
    """

    name: str

    async def open(self, session: MidTierSession, leg: Leg, context: HandoffContext) -> str:
        """Start serving this session; return the provider conversation id."""
        ...

    async def deliver(self, leg: Leg, activity: Activity) -> list[Activity]:
        """Deliver one activity; return replies given inline (later ones come via the host)."""
        ...

    async def close(self, leg: Leg, reason: str) -> None:
        """Stop serving this leg."""

    async def health(self) -> bool:
        """Whether the provider can take conversations now."""
        ...


class ProviderHost(Protocol):
    """What providers call back into: the core's entry points for provider-side events.

    Providers may also read the session map (``store``) and the other providers' names.
    """

    store: SessionStore
    providers: Mapping[str, Provider]

    async def provider_activity(
        self, provider: str, provider_conversation_id: str, activity: Activity
    ) -> None:
        """A provider sends an activity into a conversation (a reply, a handoff request...)."""

    async def accept(
        self,
        provider: str,
        provider_conversation_id: str,
        activities: list[Activity],
        action: dict[str, Any] | None = None,
    ) -> None:
        """Keep a callback (activities, then an optional ``{"action": "hand_back"|"transfer",
        "target", "reason"}``) durably; the core applies it soon, in order per conversation.

        For HTTP callbacks that must be answered before the core may take the session's lock
        (the provider may be calling back during a delivery to it).
        """

    async def hand_back(self, provider: str, provider_conversation_id: str, reason: str) -> None:
        """A provider is done (an agent resolved it): return the conversation to a bot."""

    async def transfer(
        self, provider: str, provider_conversation_id: str, target: str, reason: str
    ) -> None:
        """A provider passes the conversation to another named provider."""

    async def update_leg_data(
        self, provider: str, provider_conversation_id: str, data: dict[str, Any]
    ) -> None:
        """Merge provider-owned state into the open leg, persisted with the session."""

    async def change_leg(
        self, provider: str, provider_conversation_id: str, change: Callable[[dict[str, Any]], T]
    ) -> T:
        """Run ``change`` on the open leg's data under the session's lock and persist what it
        did; returns what ``change`` returned (check-and-set, e.g. an agent accepting)."""
        ...

    async def proactive(
        self,
        provider: str,
        provider_conversation_id: str,
        run: Callable[[Leg], Awaitable[list[Activity]]],
    ) -> None:
        """A provider-side turn on the open leg, e.g. a bot's proactive message: ``run(leg)``
        may change the leg's data and returns activities to emit; all of it is committed as
        one unit of work."""

    async def after_commit(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Run ``callback`` once what the current unit of work wrote is committed (at once
        when none is in progress): e.g. show an agent a message only once it is recorded."""

    async def redeem(self, code: str, provider: str) -> dict[str, Any]:
        """Redeem an authorization code for an in-process provider (trusted, no credential).

        Returns the grant: ``{"session_id", "user_id", "claims", "transcript"}``. Raises
        ``AuthCodeError`` when the code is unknown, used, expired or bound to another provider.
        """
        ...

    async def signal(
        self, provider: str, provider_conversation_id: str, activity: Activity
    ) -> None:
        """Pass a transient activity (``typing``) to the user now: not recorded, not queued;
        dropped when the leg is not the provider's current one or nobody is listening."""


# --------------------------------------------------------------------------- storage


class SessionStore(Protocol):
    """The session map, transcripts, route decisions, dedupe keys, auth codes and the outbox.

    Every backend passes the same contract suite (``tests/connector/store``).
    """

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    # sessions
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
        """Close active sessions idle since before the given time; return how many."""
        ...

    # transcript and decisions
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

    # durable inbound
    async def inbound_put(self, entry: InboundEntry, ttl_seconds: float) -> InboundEntry | None:
        """Record a user's activity, in one transaction: its dedupe key (None if the key was
        already recorded and has not expired: a duplicate, nothing written), the active
        session of its channel conversation (created if missing, with the entry's
        ``channel_state``), a transcript entry for a message, and the entry itself.

        Returns the entry with ``session_id`` set.
        """
        ...

    async def inbound_pending(self, channel: str, conversation: str) -> list[InboundEntry]:
        """Recorded, unprocessed activities of one channel conversation, in record order."""
        ...

    async def inbound_keys(self) -> list[tuple[str, str]]:
        """Every (channel, conversation) with activities waiting (start-up after a crash)."""
        ...

    # units of work
    async def commit(self, changes: Changes) -> MidTierSession:
        """Apply ``changes`` atomically: save the session if its stored version is still
        ``expected_version`` (else ``ConflictError`` and nothing is written), append its
        transcript entries and decisions, queue the outbox entries, drop the processed
        inbound and inbox entries. Returns the saved session (version bumped)."""
        ...

    # dedupe
    async def seen(self, key: str, ttl_seconds: float) -> bool:
        """Record ``key``; True if it was already recorded and has not expired."""
        ...

    # authorization codes
    async def put_code(self, code_hash: str, record: AuthCodeRecord) -> None: ...

    async def take_code(self, code_hash: str) -> AuthCodeRecord | None:
        """Remove and return atomically: a code can be taken once."""
        ...

    async def peek_code(self, code_hash: str) -> AuthCodeRecord | None:
        """The record, left in place (expired ones too, until ``expire`` drops them)."""
        ...

    # outbox
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

    # provider inbox
    async def inbox_put(self, entry: InboxEntry) -> None:
        """Keep an accepted provider callback (an id already kept is ignored)."""

    async def inbox_pending(self, provider: str, conversation: str) -> list[InboxEntry]:
        """Callbacks of one provider conversation not yet applied, in the order they were put."""
        ...

    async def inbox_keys(self) -> list[tuple[str, str]]:
        """Every (provider, conversation) with callbacks waiting (start-up after a crash)."""
        ...

    async def inbox_done(self, entry_id: str) -> None: ...


class Lock(Protocol):
    """Per-session ordering: one holder at a time, waiters served in arrival order."""

    def hold(self, key: str) -> AbstractAsyncContextManager[None]: ...


__all__ = [
    "Acknowledges",
    "AuthCodeRecord",
    "Changes",
    "ChannelAdapter",
    "ChannelHost",
    "DeliveryQueue",
    "HandoffContext",
    "Handshakes",
    "InboundEntry",
    "InboxEntry",
    "IntentClassifier",
    "IntentResult",
    "Lock",
    "Mountable",
    "OutboxEntry",
    "Provider",
    "ProviderHost",
    "SessionStore",
    "SpeaksForMidtier",
    "WebhookChannel",
]

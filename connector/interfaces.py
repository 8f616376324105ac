"""The extension points of midtier, in one place.

Each is a small ``typing.Protocol``: a channel adapter, a provider, a session store, an intent
classifier, a per-session lock, and the host that providers call back into. Optional
capabilities are separate protocols checked with ``isinstance`` (they are runtime-checkable).
The records the store keeps besides sessions are in :mod:`connector.records` (re-exported).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, Field

from connector.activity import Activity
from connector.channels import ChannelRequest, ChannelResponse
from connector.config import Config
from connector.records import AuthCodeRecord, Changes, InboundEntry, InboxEntry, OutboxEntry
from connector.sessions import Leg, MidTierSession, TranscriptEntry
from connector.store_protocol import ChannelStore, Lock, ProviderStore, SessionStore

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

    @property
    def store(self) -> ChannelStore: ...

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

    @property
    def store(self) -> ProviderStore: ...

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


__all__ = [
    "Acknowledges",
    "AuthCodeRecord",
    "Changes",
    "ChannelAdapter",
    "ChannelHost",
    "ChannelStore",
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
    "ProviderStore",
    "SessionStore",
    "SpeaksForMidtier",
    "WebhookChannel",
]

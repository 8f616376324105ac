"""The channel side's protocols: what a messaging app's adapter offers the core, and what
the core offers it back.

Every channel can ``send`` (and may take the outbox's wire form: :class:`SendsWire`); one
whose platform posts webhooks is also a :class:`WebhookChannel` (with the optional
:class:`Handshakes` and :class:`Acknowledges`); one whose clients hold a socket records what
they send through its :class:`ChannelHost`.
Listed, with every other protocol, in :mod:`connector.interfaces`.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, runtime_checkable

from connector.activity import Activity
from connector.channels import ChannelRequest, ChannelResponse
from connector.config import Config
from connector.records import InboundEntry, Verdict
from connector.store_protocol import ChannelStore


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
class SendsWire(Protocol):
    """A channel that sends an outbox entry's wire activity (camelCase JSON) as it is.

    The outbox keeps each activity in wire form; a channel whose platform message is made
    from a few of its keys (the web chat's frame) is spared validating it into an
    :class:`Activity` only to dump it again. Same contract as ``send``.
    """

    async def send_wire(self, activity: dict[str, Any]) -> str: ...


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

    async def rate(self, session_id: str, verdict: Verdict) -> bool:
        """The user's word on the conversation (a web chat rating): the outcome of the leg
        serving it, else of the last that did (False: no provider has had it yet)."""
        ...

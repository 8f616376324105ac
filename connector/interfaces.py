"""The extension points of midtier, in one place.

Each is a small ``typing.Protocol``: a channel adapter, a provider, a session store, an intent
classifier, a per-session lock, and the host that providers call back into. Optional
capabilities are separate protocols checked with ``isinstance`` (they are runtime-checkable).
The intent classifier's protocols, :class:`Mountable` (which channels and providers alike
may be) and :class:`ExplainGate` (who may ask the routing playground) are defined here; the
rest are listed here and defined beside their concept: the channel side in
:mod:`connector.channel_protocol`, the provider side in :mod:`connector.provider_protocol`,
the store's parts in :mod:`connector.store_protocol`, and the records the store keeps
besides sessions in :mod:`connector.records`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from connector.channel_protocol import (
    Acknowledges,
    ChannelAdapter,
    ChannelHost,
    DeliveryQueue,
    Handshakes,
    SendsWire,
    WebhookChannel,
)
from connector.plain import Record
from connector.provider_protocol import HandoffContext, Provider, ProviderHost, SpeaksForMidtier
from connector.records import AuthCodeRecord, Changes, InboundEntry, InboxEntry, OutboxEntry
from connector.store_protocol import ChannelStore, Lock, ProviderStore, SessionStore

# --------------------------------------------------------------------------- NLU


@dataclass(slots=True, kw_only=True)
class IntentResult(Record):
    """What the classifier read in one message."""

    name: str | None
    confidence: float
    ranking: list[tuple[str, float]] = field(default_factory=list)
    out_of_scope: bool = False


class IntentClassifier(Protocol):
    """Reads the intent of a user message. Must be cheap: it runs on every message."""

    def classify(self, text: str) -> IntentResult: ...


@runtime_checkable
class AsyncIntentClassifier(Protocol):
    """A classifier that may ask a service (e.g. a Rasa bot's ``/model/parse``) first."""

    def classify(self, text: str) -> IntentResult: ...

    async def aclassify(self, text: str) -> IntentResult: ...


# --------------------------------------------------------------------------- adapters


@runtime_checkable
class Mountable(Protocol):
    """An adapter that serves its own HTTP routes besides the core's webhook route (pages,
    WebSockets, Direct Line's REST API). ``app`` is the ``aiohttp.web.Application``."""

    def mount(self, app: Any) -> None: ...


class ExplainGate(Protocol):
    """Decides who may ask the routing playground (``POST /routing/explain``); an adapter
    offers one per app (the agent desk, with its tokens and sign-in throttle)."""

    async def admit(self, credential: str | None, address: str) -> str | None:
        """Let the bearer of ``credential`` (None: none was sent) from ``address`` in, or
        raise ``AuthError`` (401) / ``Forbidden`` (403). Returns a credential the caller
        may send instead from now on, or None."""
        ...


__all__ = [
    "Acknowledges",
    "AsyncIntentClassifier",
    "AuthCodeRecord",
    "Changes",
    "ChannelAdapter",
    "ChannelHost",
    "ChannelStore",
    "DeliveryQueue",
    "ExplainGate",
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
    "SendsWire",
    "SessionStore",
    "SpeaksForMidtier",
    "WebhookChannel",
]

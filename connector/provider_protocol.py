"""The provider side's protocols: who answers a conversation, what it is given when a
conversation is switched to it, and the host it calls back into.

Listed, with every other protocol, in :mod:`connector.interfaces`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, Field

from connector.activity import Activity
from connector.records import RESOLVED, Verdict
from connector.sessions import Leg, MidTierSession, TranscriptEntry
from connector.store_protocol import ProviderStore

T = TypeVar("T")


@runtime_checkable
class SpeaksForMidtier(Protocol):
    """A provider shipped with midtier whose activities marked ``channelData.midtier.notice``
    reach the user in midtier's own voice. Remote providers never get this."""

    speaks_for_midtier: bool


@runtime_checkable
class RunsInProcess(Protocol):
    """A provider whose deliveries reach nothing outside midtier's process before the unit of
    work commits (a bot hosted in the process): a message for it may be processed before it
    is recorded on its own (``session.ack_within_s``). Other providers are given only
    recorded messages, so that one given again after a crash carries the same activity id."""

    runs_in_process: bool


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

    async def hand_back(
        self,
        provider: str,
        provider_conversation_id: str,
        reason: str,
        verdict: Verdict = RESOLVED,
    ) -> None:
        """A provider is done (an agent resolved it): return the conversation to a bot.
        ``verdict``: how it went (an agent's disposition; default ``resolved``), the
        provider's outcome for the conversation (:mod:`connector.outcomes`)."""

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

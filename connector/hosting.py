"""The provider side of the core (``ProviderHost``): what providers call.

Providers call these from outside a delivery (an agent typing, resolving or transferring, a
bot sending proactively, a callback from the inbox). Each finds the session by the provider
conversation id and runs as one unit of work under the same per-session lock as user
messages (:class:`connector.work.Turns`), so the two never interleave.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from connector.activity import Activity
from connector.auth import AuthCodes
from connector.config import Config
from connector.errors import NotFound
from connector.handoff import Switcher
from connector.inbox import ProviderInbox
from connector.interfaces import AsyncIntentClassifier, IntentClassifier, IntentResult
from connector.pool import ProviderPool
from connector.provider_protocol import Provider, ProviderHost
from connector.records import RESOLVED, Verdict, ended
from connector.relay import Relay
from connector.routing.decision import intent_history
from connector.routing.policy import Router
from connector.sessions import CHANNEL_ONLY, Leg
from connector.settings import Notices
from connector.store_protocol import SessionStore
from connector.to_user import ToUser
from connector.work import Turn, Turns, after_commit

log = logging.getLogger("midtier.hosting")

T = TypeVar("T")


class Understanding:
    """The intent classifier the core reads each message with. A provider that adds intent
    sources (Rasa NLU) replaces it with a wrapper around it."""

    def __init__(self, classifier: IntentClassifier) -> None:
        self.classifier = classifier

    @property
    def classifier(self) -> IntentClassifier:
        return self._classifier

    @classifier.setter
    def classifier(self, classifier: IntentClassifier) -> None:
        self._classifier = classifier
        # Looked up once: a runtime check against a Protocol costs some 10 us each time.
        self._async = classifier if isinstance(classifier, AsyncIntentClassifier) else None

    def swap(self, classifier: IntentClassifier) -> None:
        """Put a newly trained classifier in place (``midtier reload``): inside the wrapper a
        provider installed around the old one (its ``base``: Rasa NLU sources), else
        instead of it."""
        current = self._classifier
        if hasattr(current, "base"):
            current.base = classifier
        else:
            self.classifier = classifier

    async def read(self, text: str) -> IntentResult:
        """The intent of one message."""
        if self._async is not None:
            return await self._async.aclassify(text)
        return self._classifier.classify(text)


class Host:
    """What providers call back into, built from the core's parts.

    Besides the entry points of ``ProviderHost`` it offers what some providers read: the
    configuration and the providers' titles (the agent desk), the router and the classifier
    (a Rasa provider adding its NLU as an intent source).
    """

    def __init__(
        self,
        config: Config,
        store: SessionStore,
        turns: Turns,
        pool: ProviderPool,
        switcher: Switcher,
        relay: Relay,
        to_user: ToUser,
        auth: AuthCodes,
        router: Router,
        understanding: Understanding,
    ) -> None:
        self.config = config
        self.router = router
        self.store = store
        self.providers: Mapping[str, Provider] = pool.providers
        self._turns = turns
        self._pool = pool
        self._switcher = switcher
        self._relay = relay
        self._to_user = to_user
        self._auth = auth
        self._understanding = understanding
        self._is_sticky = router.is_sticky
        self._home = config.routing.default  # who gets a conversation handed back
        self._notices: Notices = config.midtier.notices
        self._lines = config.midtier.session.handoff_transcript
        self.inbox = ProviderInbox(store, store, self, pool.timeout)
        self.provider_turn = turns.provider_turn
        self.title = pool.title

    @property
    def classifier(self) -> IntentClassifier:
        return self._understanding.classifier

    @classifier.setter
    def classifier(self, classifier: IntentClassifier) -> None:
        self._understanding.classifier = classifier

    # ------------------------------------------------------------------ in a unit of work

    async def provider_activity(
        self, provider: str, provider_conversation_id: str, activity: Activity
    ) -> None:
        """A provider sends an activity into a conversation outside a delivery."""
        async with self.provider_turn(provider, provider_conversation_id) as (turn, leg):
            await self._relay.act(turn, leg, [activity])

    async def proactive(
        self,
        provider: str,
        provider_conversation_id: str,
        run: Callable[[Leg], Awaitable[list[Activity]]],
    ) -> None:
        """A provider-side turn: ``run(leg)``'s leg changes and activities commit together.

        A bot in the process may start one while the turn that opened its leg is under way,
        whose commit saves that leg (``Switcher``): this waits for it, up to the deadline."""
        within = self._pool.timeout(provider)
        async with self.provider_turn(provider, provider_conversation_id, within) as (turn, leg):
            await self._relay.act(turn, leg, await run(leg))

    async def hand_back(
        self,
        provider: str,
        provider_conversation_id: str,
        reason: str,
        verdict: Verdict = RESOLVED,
    ) -> None:
        """The provider (a person) is done: see :meth:`hand_back_in`."""
        async with self.provider_turn(provider, provider_conversation_id) as (turn, leg):
            await self.hand_back_in(turn, leg, reason, verdict)

    async def hand_back_in(
        self, turn: Turn, leg: Leg, reason: str, verdict: Verdict = RESOLVED
    ) -> None:
        """The conversation goes back to the bot that asked for this handoff, if one did
        (it paused and waits for ``completed``); otherwise to ``routing.default`` (the home
        bot), or the last bot that had it. ``verdict`` is the handing leg's outcome
        (resolved, or the agent's disposition).

        The bot that gets it, and a bot that handed it off, are told ``handoff.status``
        ``completed``.
        """
        session = turn.session
        bots = [
            old.provider for old in reversed(session.legs[:-1]) if not self._is_sticky(old.provider)
        ]
        origin = leg.data.get("handoff_from") or {}
        asked = [origin["provider"]] if origin.get("requested") else []
        candidates = [*asked, self._home, *bots]
        switched = await self._switcher.switch(
            turn, candidates, reason=reason, notice=self._notices.hand_back, ended=verdict
        )
        if switched is None:
            raise NotFound("no bot could take the conversation back")
        await self._relay.enter(turn, switched)
        await self._relay.status(switched.leg, "completed", reason)
        handed_off = session.leg(str(origin.get("leg", "")))
        if handed_off is not None and handed_off.provider != switched.leg.provider:
            await self._relay.status(handed_off, "completed", reason)

    async def transfer(
        self, provider: str, provider_conversation_id: str, target: str, reason: str
    ) -> None:
        """The provider passes the conversation to ``target``."""
        if target not in self._pool:
            raise NotFound(f"no provider named {target!r}")
        async with self.provider_turn(provider, provider_conversation_id) as (turn, _leg):
            await self.transfer_in(turn, target, reason)

    async def transfer_in(self, turn: Turn, target: str, reason: str) -> None:
        if target not in self._pool:
            raise NotFound(f"no provider named {target!r}")
        switched = await self._switcher.switch(
            turn, [target], reason=reason, notice=self._notices.switch, ended=ended("transferred")
        )
        if switched is None:
            raise NotFound(f"{target} could not take the conversation")
        await self._relay.enter(turn, switched)

    async def change_leg(
        self,
        provider: str,
        provider_conversation_id: str,
        change: Callable[[dict[str, Any]], T],
    ) -> T:
        """Run ``change`` on the open leg's data under the session's lock; persist it."""
        async with self.provider_turn(provider, provider_conversation_id) as (_turn, leg):
            return change(leg.data)

    async def update_leg_data(
        self, provider: str, provider_conversation_id: str, data: dict[str, Any]
    ) -> None:
        """Merge provider-owned state into the open leg (persisted with the session)."""
        await self.change_leg(
            provider, provider_conversation_id, lambda leg_data: leg_data.update(data)
        )

    # ------------------------------------------------------------------ the inbox

    async def accept(
        self,
        provider: str,
        provider_conversation_id: str,
        activities: list[Activity],
        action: dict[str, Any] | None = None,
    ) -> None:
        """Keep a provider callback durably and apply it soon, in order (``ProviderInbox``)."""
        await self.inbox.accept(provider, provider_conversation_id, activities, action)

    async def emit(self, turn: Turn, leg: Leg, activities: list[Activity]) -> None:
        """Act on a callback's activities (for the inbox)."""
        await self._relay.act(turn, leg, activities)

    async def do(self, turn: Turn, leg: Leg, action: dict[str, Any]) -> None:
        """Do a callback's action (for the inbox)."""
        reason = str(action.get("reason") or "")
        if action.get("action") == "hand_back":
            await self.hand_back_in(turn, leg, reason or "handed back")
        elif action.get("action") == "transfer":
            await self.transfer_in(turn, str(action.get("target") or ""), reason or "transferred")

    async def tell_provider_failed(
        self, provider: str, provider_conversation_id: str, message: str
    ) -> None:
        """Tell a provider that what it asked for (hand back, transfer) could not be done."""
        session = await self.store.by_provider(provider, provider_conversation_id)
        leg = session.leg_for_provider(provider, provider_conversation_id) if session else None
        if leg is not None and leg.is_open:
            await self._pool.status(leg, "failed", message)

    # ------------------------------------------------------------------ outside a turn

    async def after_commit(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Run ``callback`` once the current unit of work is committed (now if none is)."""
        await after_commit(callback)

    async def signal(
        self, provider: str, provider_conversation_id: str, activity: Activity
    ) -> None:
        """Send a transient activity (an agent typing) straight to the user's channel.

        Not recorded and not queued in the outbox: it is stale a few seconds later, so it
        goes now or never. Dropped when the leg is closed or no longer the provider's current
        one, and when the channel cannot send (nobody listening).
        """
        session = await self.store.by_provider(provider, provider_conversation_id)
        leg = session.current_leg if session is not None else None
        if session is None or leg is None or session.status != "active":
            return
        if (leg.provider, leg.provider_conversation_id) != (provider, provider_conversation_id):
            return
        await self._to_user.signal(session, leg, activity)

    async def redeem(self, code: str, provider: str) -> dict[str, Any]:
        """Exchange an authorization code for the user's claims and transcript."""
        record = await self._auth.redeem(code, provider)
        session = await self.store.get(record.session_id)
        if session is None:
            raise NotFound("the session of this code no longer exists")
        transcript = await self.store.transcript(session.id, last=self._lines)
        return {
            "session_id": session.id,
            "user_id": session.user_id,
            "claims": session.claims,
            "intents": intent_history(await self.store.decisions(session.id)),
            "transcript": [
                e.model_dump(mode="json", exclude=set(CHANNEL_ONLY)) for e in transcript
            ],
        }


if TYPE_CHECKING:  # mypy checks that a ``Host`` is a ``ProviderHost``

    def _typed(host: Host) -> ProviderHost:
        return host

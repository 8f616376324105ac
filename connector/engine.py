"""The core pipeline: one user message in, replies out, switching when needed.

The channel side: ``submit`` records a user's activity (:mod:`connector.inbound`) and
returns once it is recorded, which is when the channel may acknowledge it; a worker per
channel conversation then processes the records in order, each as one unit of work
(:mod:`connector.work`) under the session's lock: read the intent, route, switch if needed,
deliver to the provider and queue its replies for the outbox, then commit all of it with the
record. The provider side (``ProviderHost``: ``provider_activity``, ``hand_back``,
``transfer``, handoff requests and statuses) lives in :mod:`connector.hosting` and takes the
same per-session lock, so provider events and user messages of one session never interleave.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from connector.activity import (
    Activity,
    ActivityTypes,
    HandoffEventNames,
)
from connector.auth import AuthCodes
from connector.choices import OFFER, answer
from connector.claims import merge_claims
from connector.config import Config
from connector.continuation import Continuation, Then
from connector.errors import ConflictError, NotFound, ProviderError
from connector.handoff import Switcher
from connector.hosting import ProviderSide
from connector.inbound import UserInbound, inbound_entry
from connector.inbox import ProviderInbox
from connector.interfaces import (
    AsyncIntentClassifier,
    ChannelAdapter,
    IntentClassifier,
    IntentResult,
    Provider,
    SessionStore,
)
from connector.locks import LocalLocks
from connector.logs import session_context
from connector.outbox import Outbox
from connector.pool import ProviderPool
from connector.records import InboundEntry
from connector.routing.policy import Router
from connector.sessions import DeliveryFailure, Leg, MidTierSession, Speaker, TranscriptEntry
from connector.to_user import ADDRESS, ToUser
from connector.work import Turn, current_turn

log = logging.getLogger("midtier.engine")

NO_INTENT = IntentResult(name=None, confidence=0.0, out_of_scope=True)
MAX_HOPS = 4  # handoff requests followed within one turn
# How many handoff requests the current turn is inside (a bot handing over on the
# midtier.handoff event it gets would otherwise bounce a conversation around for ever).
handoff_depth: ContextVar[int] = ContextVar("midtier_handoff_depth", default=0)
TYPING = Activity(type=ActivityTypes.TYPING)


def _chosen(session: MidTierSession, activity: Activity) -> Activity:
    """A reply of just a number, to a message that offered choices, as that choice's value
    (channels without buttons show choices as a numbered list)."""
    offer = session.channel_state.pop(OFFER, None)
    if not isinstance(offer, list) or not activity.text:
        return activity
    value = answer(activity.text, offer)
    return activity if value is None else activity.model_copy(update={"text": value})


class Engine(ProviderSide):
    """Wires store, router, providers, channels and outbox together."""

    def __init__(
        self,
        config: Config,
        store: SessionStore,
        classifier: IntentClassifier,
        channels: dict[str, ChannelAdapter],
        providers: dict[str, Provider],
        *,
        token_url: str = "",
    ) -> None:
        self.config = config
        self.store = store
        self.classifier = classifier
        self.channels = channels
        self.providers = providers
        self.locks = LocalLocks()
        self.outbox = Outbox(
            store, channels, config.midtier.outbox, on_failure=self._delivery_failed
        )
        self.auth = AuthCodes(store, config.midtier.auth.code_ttl_s)
        self.pool = ProviderPool(config, providers)
        self.router = Router(
            config.routing,
            unavailable=self.pool.unavailable,
            open_legs=self.pool.open_legs,
            reachable=config.midtier.continuation.reachable(config.midtier.channels),
        )
        self.switcher = Switcher(self)
        self.inbound = UserInbound(store, self._process, config.midtier.session.dedupe_ttl_s)
        self.inbox = ProviderInbox(self)
        self.token_url = token_url
        self.public_url = token_url.removesuffix("/auth/token")
        self.data_dir = Path("data")
        self.to_user = ToUser(
            self.outbox,
            system_name=config.midtier.title,
            title=self.pool.title,
            speaker=self.speaker,
            midtier_voice=self.pool.speaks_for_midtier,
        )
        self.continuation = Continuation(self, self._handle_user)

    # ------------------------------------------------------------------ helpers

    def title(self, provider: str) -> str:
        """How a provider is called to the user (for providers that show others' names)."""
        return self.pool.title(provider)

    def speaker(self, provider: str) -> Speaker:
        return "agent" if self.router.is_sticky(provider) else "bot"

    def notify(self, turn: Turn, text: str) -> None:
        """Tell the user something in midtier's own voice."""
        self.to_user.notify(turn, text)

    @asynccontextmanager
    async def turn(self, session_id: str) -> AsyncIterator[Turn]:
        """One unit of work on the session: its lock held, its state read fresh, everything
        it wrote committed at the end of the block (nothing, if the block raises)."""
        async with self.locks.hold(session_id):
            with session_context(session_id):
                session = await self.store.get(session_id)
                if session is None:
                    raise NotFound(f"no session {session_id!r}")
                turn = Turn(self.store, session, self.outbox.dispatch)
                token = current_turn.set(turn)
                try:
                    yield turn
                    if not turn.finished:
                        await turn.commit()
                finally:
                    current_turn.reset(token)

    async def _delivery_failed(self, session_id: str, failure: DeliveryFailure) -> None:
        """Keep a reply that never reached the user on its session, in a unit of work."""
        try:
            async with self.turn(session_id) as turn:
                if not turn.session.record_failure(failure):
                    turn.abandon()  # recorded before a crash, tried once more since
        except NotFound:
            log.warning("a reply of a session that no longer exists failed: %s", failure.reason)

    # ------------------------------------------------------------------ channel side

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
        """Record a user's activity; once this returns the channel may acknowledge it.

        Returns the record (None: a repeat of ``ref``, already recorded). Raises
        ``MalformedPayload`` for an activity midtier cannot take. ``address`` is what a
        reply needs besides the conversation id; the newest one is kept on the session.
        """
        limit = self.config.midtier.limits.max_text_chars
        entry = inbound_entry(
            channel,
            activity,
            limit,
            claims=claims,
            ref=ref,
            channel_state=channel_state,
            address=address,
        )
        return await self.inbound.record(entry)

    async def receive(
        self, channel: str, activity: Activity, *, claims: dict[str, Any] | None = None
    ) -> MidTierSession | None:
        """Record a user's activity (``activity.id`` is the channel's id) and wait until it
        has been processed and its replies were tried. Returns the session (None for a
        repeat)."""
        limit = self.config.midtier.limits.max_text_chars
        entry = inbound_entry(channel, activity, limit, claims=claims, ref=activity.id)
        session = await self.inbound.receive(entry)
        await self.outbox.settled(channel, entry.conversation)
        return session

    async def set_channel_state(self, session_id: str, values: dict[str, Any]) -> None:
        """Change channel-owned state of a session (e.g. a new resume secret's hash)."""
        async with self.turn(session_id) as turn:
            turn.session.channel_state.update(values)

    async def signal_user(self, channel: str, conversation: str, activity: Activity) -> None:
        """A passing signal from the user (``typing``): given to a person on the desk, not
        recorded. Bots are not told."""
        session = await self.store.by_channel(channel, conversation)
        leg = session.current_leg if session is not None else None
        if leg is None or session is None or session.status != "active":
            return
        if not self.router.is_sticky(leg.provider):
            return
        provider = self.providers.get(leg.provider)
        if provider is not None:
            typing = provider.deliver(leg, activity)
            await self.pool.quietly(leg.provider, typing, "a typing signal", logging.INFO)

    async def _process(self, entry: InboundEntry) -> MidTierSession | None:
        """Process one recorded user activity; it leaves the store with what it caused."""
        for attempt in (1, 2):
            try:
                return await self._process_once(entry)
            except ConflictError:  # the session changed under us: read it again, once
                if attempt == 2:
                    break
            except Exception:
                log.exception("a user message could not be processed")
                break
        # Not lost silently and not retried for ever: the user hears that it failed.
        async with self.turn(entry.session_id) as turn:
            turn.consumed_inbound(entry.id)
            self.notify(turn, self.config.midtier.notices.provider_failed)
        return None

    async def _process_once(self, entry: InboundEntry) -> MidTierSession:
        activity = Activity.from_wire(entry.activity)
        async with self.turn(entry.session_id) as turn:
            active = turn.session.status == "active"
            then = await self._process_in(turn, entry, activity) if active else None
            if not active:
                turn.abandon()
        if active:  # a step left for after the commit: the session moves (continuation)
            return await then() if then is not None else turn.session
        # Closed (expired) between recording and now: the message opens a new session,
        # which gets its transcript line here.
        fresh, _ = await self.store.find_or_create(entry.channel, entry.conversation, entry.user_id)
        async with self.turn(fresh.id) as turn:
            if activity.type == ActivityTypes.MESSAGE:
                turn.record(
                    TranscriptEntry(
                        speaker="user", text=activity.text, activity=entry.activity, ref=entry.ref
                    )
                )
            then = await self._process_in(turn, entry, activity)
        return await then() if then is not None else turn.session

    async def _process_in(self, turn: Turn, entry: InboundEntry, activity: Activity) -> Then | None:
        """Process ``entry`` in ``turn``; the record leaves with the turn's commit. A step
        returned is to be taken after that commit (see ``Continuation.intercept``)."""
        session = turn.session
        # A message recorded on a channel the session has since left is answered where the
        # session is now; what that channel says of the user or its address is not taken.
        here = (entry.channel, entry.conversation) == session.channel_key
        if here and entry.claims is not None:
            session.claims = merge_claims(session.claims, entry.claims)
        if here and entry.address is not None:
            session.channel_state[ADDRESS] = entry.address
        if not session.legs:
            log.info("session opened", extra={"event": "session_opened", "channel": entry.channel})
        then = await self.continuation.intercept(turn, entry, activity) if here else None
        if then is None:
            await self._handle_user(turn, activity)
        turn.consumed_inbound(entry.id)
        return then

    async def _handle_user(self, turn: Turn, activity: Activity) -> None:
        session = turn.session
        leg = session.current_leg
        if activity.type != ActivityTypes.MESSAGE:
            if leg is not None:
                await self._deliver_guarded(turn, leg, activity, NO_INTENT)
            return
        if leg is None or not self.router.is_sticky(leg.provider):
            await self.to_user.signal(session, leg, TYPING)  # a bot is at work on it
        activity = _chosen(session, activity)
        intent = await self._read_intent(activity.text) if activity.text else NO_INTENT
        decision = self.router.decide(session, intent)
        decision.message_id = activity.id
        turn.decide(decision)
        log.info(
            "route %s -> %s (%s)",
            decision.action,
            decision.provider,
            decision.reason,
            extra={
                "event": "route",
                "intent": intent.name,
                "confidence": round(intent.confidence, 3),
            },
        )
        if decision.action == "move":  # its provider is on other channels: offer to go there
            await self.continuation.offer_move(turn, decision, activity)
            return
        if decision.provider is not None and decision.provider != session.current_provider:
            candidates = [decision.provider, decision.next_best, self.config.routing.fallback]
            switched = await self.switcher.switch(
                turn,
                candidates,
                reason=decision.summary or decision.reason,
                detail=decision.reason,
                intent=intent.name,
                confidence=intent.confidence,
                notice=self.config.midtier.notices.switch,
            )
            if switched is None:
                # Nobody could take it: keep the old leg (if any) and say so plainly.
                self.notify(turn, self.config.midtier.notices.unavailable)
            leg = session.current_leg
        if leg is None:
            return
        await self._deliver_guarded(turn, leg, activity, intent)

    async def _read_intent(self, text: str) -> IntentResult:
        if isinstance(self.classifier, AsyncIntentClassifier):
            return await self.classifier.aclassify(text)
        return self.classifier.classify(text)

    async def _deliver_guarded(
        self, turn: Turn, leg: Leg, activity: Activity, intent: IntentResult
    ) -> None:
        """Deliver to the leg's provider; if it fails, move to the next candidate and retry."""
        inbound = activity.model_copy()
        inbound.channel_data = {
            **(activity.channel_data or {}),
            "midtier": {"intent": intent.name, "confidence": round(intent.confidence, 4)},
        }
        try:
            await self.deliver_and_emit(turn, leg, inbound)
            return
        except (ProviderError, TimeoutError) as exc:
            failed = leg.provider
            log.warning("provider %s failed: %s", failed, exc or "timed out")
            self.pool.mark_failure(failed)
        candidates: list[str | None] = []
        if intent.name:
            candidates += self.router.providers_for(intent.name)
        candidates.append(self.config.routing.fallback)
        new_leg = await self.switcher.switch(
            turn,
            candidates,
            reason=f"{failed} failed to answer",
            intent=intent.name,
            confidence=intent.confidence,
            notice=self.config.midtier.notices.provider_failed,
            exclude={failed},
        )
        if new_leg is None:
            self.notify(turn, self.config.midtier.notices.unavailable)
            return
        try:
            await self.deliver_and_emit(turn, new_leg, inbound)
        except (ProviderError, TimeoutError) as exc:
            log.warning("provider %s failed too: %s", new_leg.provider, exc or "timed out")
            self.notify(turn, self.config.midtier.notices.unavailable)

    async def deliver_and_emit(self, turn: Turn, leg: Leg, activity: Activity) -> None:
        """Deliver one activity to ``leg``'s provider and pass on what it answers inline."""
        provider = self.providers[leg.provider]
        async with asyncio.timeout(self.pool.timeout(leg.provider)):
            replies = await provider.deliver(leg, activity)
        if activity.type == ActivityTypes.MESSAGE:  # answering users is what counts
            self.pool.breakers.success(leg.provider)
        for reply in replies:
            await self._emit(turn, leg, reply)
        if activity.type == ActivityTypes.MESSAGE and leg.is_open:
            self._note_expecting(turn, leg, replies)

    @staticmethod
    def _note_expecting(turn: Turn, leg: Leg, replies: list[Activity]) -> None:
        """Remember whether the provider's last reply asked the user a question."""
        current = turn.session.current_leg
        if current is None or current.id != leg.id:
            return
        current.data["expecting_input"] = any(r.input_hint == "expectingInput" for r in replies)

    async def _emit(self, turn: Turn, leg: Leg, activity: Activity) -> None:
        """Act on one activity a provider sent: pass it to the user or follow a request."""
        if activity.is_event(HandoffEventNames.INITIATE):
            if handoff_depth.get() >= MAX_HOPS:
                log.warning("handoff request ignored: too many handoffs in one turn")
                return
            token = handoff_depth.set(handoff_depth.get() + 1)
            try:
                await self._requested_handoff(turn, leg, activity)
            finally:
                handoff_depth.reset(token)
            return
        if activity.is_event(HandoffEventNames.STATUS):
            await self._forward_status(turn, leg, activity)
            return
        if activity.type in (ActivityTypes.EVENT, ActivityTypes.HANDOFF):
            return  # provider-internal events do not reach the user
        if not leg.is_open:
            log.info("activity from closed leg of %s dropped", leg.provider)
            return
        if activity.type == ActivityTypes.TYPING:
            await self.to_user.signal(turn.session, leg, activity)
            return
        self.to_user.send(turn, leg, activity)

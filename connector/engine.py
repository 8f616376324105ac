"""The core pipeline: one user message in, replies out, switching when needed.

``receive`` is the channel side: dedupe, find or create the mid-tier session, lock it, read
the intent, route, switch if needed, deliver to the provider and send its replies through the
outbox. The provider side (``ProviderHost``: ``provider_activity``, ``hand_back``,
``transfer``, handoff requests and statuses) lives in :mod:`connector.hosting` and takes the
same per-session lock, so provider events and user messages of one session never interleave.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from connector.activity import (
    Activity,
    ActivityTypes,
    HandoffEventNames,
)
from connector.auth import AuthCodes
from connector.breaker import Breakers
from connector.config import Config
from connector.errors import MalformedPayload, ProviderError, SessionClosed
from connector.handoff import Switcher
from connector.hosting import ProviderSide
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
from connector.routing.policy import Router
from connector.sessions import Leg, MidTierSession, Speaker, TranscriptEntry
from connector.to_user import ToUser

log = logging.getLogger("midtier.engine")

NO_INTENT = IntentResult(name=None, confidence=0.0, out_of_scope=True)
MAX_HOPS = 4  # handoff requests followed within one turn
# How many handoff requests the current turn is inside (a bot handing over on the
# midtier.handoff event it gets would otherwise bounce a conversation around for ever).
handoff_depth: ContextVar[int] = ContextVar("midtier_handoff_depth", default=0)


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
        self.outbox = Outbox(store, channels)
        self.auth = AuthCodes(store, config.midtier.auth.code_ttl_s)
        self.open_legs: Counter[str] = Counter()
        self.healthy: dict[str, bool] = {}
        self.breakers = Breakers(
            failures=config.routing.circuit.failures, cooldown_s=config.routing.circuit.cooldown_s
        )
        self.router = Router(config.routing, unavailable=self.unavailable, open_legs=self.open_legs)
        self.switcher = Switcher(self)
        self.inbox = ProviderInbox(self)
        self.token_url = token_url
        self.data_dir = Path("data")
        self.to_user = ToUser(
            store,
            self.outbox,
            system_name=config.midtier.title,
            title=self.title,
            speaker=self.speaker,
        )

    # ------------------------------------------------------------------ helpers

    def title(self, provider: str) -> str:
        cfg = self.config.providers.get(provider)
        return (cfg.title if cfg else "") or provider

    def timeout(self, provider: str) -> float:
        cfg = self.config.providers.get(provider)
        return cfg.timeout_s if cfg else 10.0

    def speaker(self, provider: str) -> Speaker:
        return "agent" if self.router.is_sticky(provider) else "bot"

    def mark_failure(self, provider: str) -> None:
        if self.breakers.failure(provider):
            log.warning(
                "circuit of %s opened for %.0fs after repeated failures",
                provider,
                self.breakers.cooldown_s,
                extra={"event": "circuit_open", "provider": provider},
            )

    def unavailable(self, provider: str) -> str | None:
        """Why ``provider`` cannot take conversations now (None: it can)."""
        if not self.healthy.get(provider, True):
            return "unhealthy (health check failed)"
        if not self.breakers.allows(provider):
            return f"circuit {self.breakers.state(provider)} after repeated failures"
        return None

    def leg_opened(self, provider: str, closed: str | None) -> None:
        self.open_legs[provider] += 1
        if closed is not None and self.open_legs[closed] > 0:
            self.open_legs[closed] -= 1

    async def load_counts(self) -> None:
        """Count open legs per provider from the store (start-up)."""
        self.open_legs.clear()
        for session in await self.store.list_sessions(status="active", limit=100_000):
            if session.current_provider:
                self.open_legs[session.current_provider] += 1

    async def intent_history(self, session_id: str, last: int = 10) -> list[dict[str, Any]]:
        """The session's recent intents, oldest first, from its route decisions."""
        found = [
            {"name": d.intent, "confidence": round(d.confidence, 4), "at": d.at.isoformat()}
            for d in await self.store.decisions(session_id)
            if d.intent is not None
        ]
        return found[-last:]

    async def close_leg(self, leg: Leg, reason: str) -> None:
        provider = self.providers.get(leg.provider)
        if provider is None:
            return
        try:
            async with asyncio.timeout(self.timeout(leg.provider)):
                await provider.close(leg, reason)
        except (ProviderError, TimeoutError) as exc:
            log.warning("closing the %s leg failed: %s", leg.provider, exc or "timed out")

    async def notify(self, session: MidTierSession, text: str) -> None:
        """Tell the user something in midtier's own voice."""
        await self.to_user.notify(session, text)

    # ------------------------------------------------------------------ channel side

    async def receive(
        self, channel: str, activity: Activity, *, claims: dict[str, Any] | None = None
    ) -> MidTierSession | None:
        """Handle one activity from a user. Returns the session (None for a duplicate)."""
        if activity.conversation is None or not activity.conversation.id:
            raise MalformedPayload("activity has no conversation.id")
        if activity.from_ is None or not activity.from_.id:
            raise MalformedPayload("activity has no from.id")
        limit = self.config.midtier.limits.max_text_chars
        if activity.text is not None and len(activity.text) > limit:
            raise MalformedPayload(f"text longer than {limit} characters")
        ttl = self.config.midtier.session.dedupe_ttl_s
        if activity.id and await self.store.seen(f"in:{channel}:{activity.id}", ttl):
            log.info("duplicate activity %s from %s ignored", activity.id, channel)
            return None
        session, created = await self.store.find_or_create(
            channel, activity.conversation.id, activity.from_.id
        )
        async with self.locks.hold(session.id):
            with session_context(session.id):
                fresh = await self.store.get(session.id)
                if fresh is None or fresh.status != "active":
                    raise SessionClosed(f"session {session.id} is closed")
                if claims is not None and claims != fresh.claims:
                    fresh.claims = claims
                    fresh = await self.store.save(fresh)
                if created:
                    log.info(
                        "session opened", extra={"event": "session_opened", "channel": channel}
                    )
                return await self._handle_user(fresh, activity)

    async def _handle_user(self, session: MidTierSession, activity: Activity) -> MidTierSession:
        leg = session.current_leg
        if activity.type != ActivityTypes.MESSAGE:
            if leg is not None:
                session = await self._deliver_guarded(session, leg, activity, NO_INTENT)
            return session
        await self.store.append_transcript(
            session.id,
            TranscriptEntry(
                speaker="user",
                text=activity.text,
                provider=leg.provider if leg else None,
                leg_id=leg.id if leg else None,
                activity=activity.to_wire(),
            ),
        )
        intent = await self._read_intent(activity.text) if activity.text else NO_INTENT
        decision = self.router.decide(session, intent)
        decision.message_id = activity.id
        await self.store.append_decision(session.id, decision)
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
        if decision.provider is not None and decision.provider != session.current_provider:
            candidates = [decision.provider, decision.next_best, self.config.routing.fallback]
            session, leg = await self.switcher.switch(
                session,
                candidates,
                reason=decision.reason,
                intent=intent.name,
                confidence=intent.confidence,
                notice=self.config.midtier.notices.switch,
            )
            if leg is None:
                # Nobody could take it: keep the old leg (if any) and say so plainly.
                await self.notify(session, self.config.midtier.notices.unavailable)
            leg = session.current_leg
        if leg is None:
            return session
        return await self._deliver_guarded(session, leg, activity, intent)

    async def _read_intent(self, text: str) -> IntentResult:
        if isinstance(self.classifier, AsyncIntentClassifier):
            return await self.classifier.aclassify(text)
        return self.classifier.classify(text)

    async def _deliver_guarded(
        self, session: MidTierSession, leg: Leg, activity: Activity, intent: IntentResult
    ) -> MidTierSession:
        """Deliver to the leg's provider; if it fails, move to the next candidate and retry."""
        inbound = activity.model_copy()
        inbound.channel_data = {
            **(activity.channel_data or {}),
            "midtier": {"intent": intent.name, "confidence": round(intent.confidence, 4)},
        }
        try:
            return await self.deliver_and_emit(session, leg, inbound)
        except (ProviderError, TimeoutError) as exc:
            failed = leg.provider
            log.warning("provider %s failed: %s", failed, exc or "timed out")
            self.mark_failure(failed)
        candidates: list[str | None] = []
        if intent.name:
            candidates += self.router.providers_for(intent.name)
        candidates.append(self.config.routing.fallback)
        session, new_leg = await self.switcher.switch(
            session,
            candidates,
            reason=f"{failed} failed to answer",
            intent=intent.name,
            confidence=intent.confidence,
            notice=self.config.midtier.notices.provider_failed,
            exclude={failed},
        )
        if new_leg is None:
            await self.notify(session, self.config.midtier.notices.unavailable)
            return session
        try:
            return await self.deliver_and_emit(session, new_leg, inbound)
        except (ProviderError, TimeoutError) as exc:
            log.warning("provider %s failed too: %s", new_leg.provider, exc or "timed out")
            await self.notify(session, self.config.midtier.notices.unavailable)
            return session

    async def deliver_and_emit(
        self, session: MidTierSession, leg: Leg, activity: Activity
    ) -> MidTierSession:
        """Deliver one activity to ``leg``'s provider and pass on what it answers inline."""
        provider = self.providers[leg.provider]
        async with asyncio.timeout(self.timeout(leg.provider)):
            replies = await provider.deliver(leg, activity)
        if activity.type == ActivityTypes.MESSAGE:  # answering users is what counts
            self.breakers.success(leg.provider)
        for reply in replies:
            session = await self._emit(session, leg, reply)
        if activity.type == ActivityTypes.MESSAGE and leg.is_open:
            session = await self._note_expecting(session, leg, replies)
        return session

    async def _note_expecting(
        self, session: MidTierSession, leg: Leg, replies: list[Activity]
    ) -> MidTierSession:
        """Remember whether the provider's last reply asked the user a question."""
        expecting = any(r.input_hint == "expectingInput" for r in replies)
        current = session.current_leg
        if current is None or current.id != leg.id:
            return session
        if bool(current.data.get("expecting_input")) != expecting:
            current.data["expecting_input"] = expecting
            session = await self.store.save(session)
        return session

    async def _emit(self, session: MidTierSession, leg: Leg, activity: Activity) -> MidTierSession:
        """Act on one activity a provider sent: pass it to the user or follow a request."""
        if activity.is_event(HandoffEventNames.INITIATE):
            if handoff_depth.get() >= MAX_HOPS:
                log.warning("handoff request ignored: too many handoffs in one turn")
                return session
            token = handoff_depth.set(handoff_depth.get() + 1)
            try:
                return await self._requested_handoff(session, leg, activity)
            finally:
                handoff_depth.reset(token)
        if activity.is_event(HandoffEventNames.STATUS):
            await self._forward_status(leg, activity)
            return session
        if activity.type in (ActivityTypes.EVENT, ActivityTypes.HANDOFF):
            return session  # provider-internal events do not reach the user
        if not leg.is_open:
            log.info("activity from closed leg of %s dropped", leg.provider)
            return session
        await self.to_user.send(session, leg, activity)
        return session

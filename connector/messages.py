"""What a user's activity does in its unit of work: read the intent, route, switch, deliver.

Built from the parts it uses: the classifier (:class:`connector.hosting.Understanding`), the
router, the switcher and the relay, what goes to the user, and a way to offer the user a move
to another channel (:mod:`connector.continuation`). A provider that fails to answer hands the
message to the next candidate, or the user hears plainly that nobody can take it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from connector.activity import Activity, ActivityTypes
from connector.choices import OFFER, answer
from connector.config import Config
from connector.errors import ProviderError
from connector.handoff import Switcher
from connector.hosting import Understanding
from connector.interfaces import IntentResult
from connector.later import Later
from connector.modelcopy import replaced
from connector.records import Verdict, ended
from connector.relay import Relay
from connector.routing.decision import RouteDecision
from connector.routing.policy import Router
from connector.sessions import Leg, MidTierSession
from connector.to_user import ToUser
from connector.work import Turn

log = logging.getLogger("midtier.engine")

NO_INTENT = IntentResult(name=None, confidence=0.0, out_of_scope=True)
TYPING = Activity(type=ActivityTypes.TYPING)
OfferMove = Callable[[Turn, RouteDecision, Activity], Awaitable[None]]


ASKED = "asked"  # channel_state key: the choices routing offered, and the message asked about


def _answered(session: MidTierSession, activity: Activity) -> tuple[Activity, IntentResult | None]:
    """When routing asked the user to choose and this message is one of the choices (its
    title, or its number, as ``_chosen`` made it): the message that was asked about, and
    the chosen intent at full confidence. Any other message drops the question."""
    asked = session.channel_state.pop(ASKED, None)
    if not isinstance(asked, dict) or not activity.text:
        return activity, None
    intents = asked.get("choices")
    chosen = intents.get(activity.text.strip().casefold()) if isinstance(intents, dict) else None
    if not isinstance(chosen, str):
        return activity, None
    original = asked.get("text")
    if isinstance(original, str) and original:
        activity = activity.model_copy(update={"text": original})
    return activity, IntentResult(name=chosen, confidence=1.0, ranking=[(chosen, 1.0)])


def _chosen(session: MidTierSession, activity: Activity) -> Activity:
    """A reply of just a number, to a message that offered choices, as that choice's value
    (channels without buttons show choices as a numbered list)."""
    offer = session.channel_state.pop(OFFER, None)
    if not isinstance(offer, list) or not activity.text:
        return activity
    value = answer(activity.text, offer)
    return activity if value is None else activity.model_copy(update={"text": value})


class UserMessages:
    """Routes a user's activity to the provider that serves it, in the caller's turn."""

    def __init__(
        self,
        config: Config,
        understanding: Understanding,
        router: Router,
        switcher: Switcher,
        relay: Relay,
        to_user: ToUser,
        offer_move: OfferMove,
    ) -> None:
        self._understanding = understanding
        self._router = router
        self._switcher = switcher
        self._relay = relay
        self._to_user = to_user
        self._offer_move = offer_move  # the user's provider is on another channel
        self._notices = config.midtier.notices
        self._typing_after_s = config.midtier.session.typing_after_s
        self._signals: set[asyncio.Future[None]] = set()  # typing shown late, until sent
        self._late = Later(self._typing_after_s)

    async def handle(self, turn: Turn, activity: Activity) -> None:
        """Act on a user's activity in ``turn``: a message is routed and delivered (with a
        typing indicator for a bot that takes long); anything else goes to the open leg."""
        session = turn.session
        leg = session.current_leg
        if activity.type != ActivityTypes.MESSAGE:
            if leg is not None:
                await self._deliver_guarded(turn, leg, activity, NO_INTENT)
            return
        typing = None
        if leg is None or not self._router.is_sticky(leg.provider):
            typing = await self._typing(session, leg)  # a bot is at work on it
        try:
            await self._route(turn, activity)
        finally:
            if typing is not None:
                self._late.stop(typing)

    async def _typing(self, session: MidTierSession, leg: Leg | None) -> int | None:
        """Show the user that a bot is at work: after ``session.typing_after_s``, unless the
        turn is over by then (what is returned is stopped at its end)."""
        if self._typing_after_s <= 0:
            await self._to_user.signal(session, leg, TYPING)
            return None

        def show() -> None:
            task = asyncio.ensure_future(self._to_user.signal(session, leg, TYPING))
            self._signals.add(task)
            task.add_done_callback(self._signals.discard)

        return self._late.start(show)

    async def _route(self, turn: Turn, activity: Activity) -> None:
        """Read the user message's intent, route it, switch if needed, deliver it."""
        session = turn.session
        leg = session.current_leg
        activity = _chosen(session, activity)
        activity, chosen = _answered(session, activity)
        if chosen is not None:
            intent = chosen
        else:
            intent = await self._understanding.read(activity.text) if activity.text else NO_INTENT
        decision = self._router.decide(session, intent, chosen=chosen is not None)
        decision.message_id = activity.id
        turn.decide(decision)
        if log.isEnabledFor(logging.INFO):  # its ``extra`` is made for every message
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
            await self._offer_move(turn, decision, activity)
            return
        if decision.action == "ask":  # nothing is delivered until the user has chosen
            self._ask(turn, decision, activity)
            return
        if decision.provider is not None and decision.provider != session.current_provider:
            candidates = [decision.provider, decision.next_best, self._router.fallback]
            switched = await self._switcher.switch(
                turn,
                candidates,
                reason=decision.summary or decision.reason,
                detail=decision.reason,
                intent=intent.name,
                confidence=intent.confidence,
                notice=self._notices.switch,
                ended=self._how_it_went(leg, decision),
            )
            if switched is None:
                # Nobody could take it: keep the old leg (if any) and say so plainly.
                self._to_user.notify(turn, self._notices.unavailable)
            else:
                await self._relay.enter(turn, switched)
            leg = session.current_leg
        if leg is None:
            return
        await self._deliver_guarded(turn, leg, activity, intent)

    def _how_it_went(self, leg: Leg | None, decision: RouteDecision) -> Verdict | None:
        """The outcome of ``leg`` when the router switches away from it: escalated to a
        person, the user gone on to an intent it does not serve, or (it serves the intent,
        but may not take it now) nothing said of it."""
        if decision.action == "escalate":
            return ended("escalated")
        if leg is None or (decision.intent and self._router.serves(leg.provider, decision.intent)):
            return None
        return ended("moved_on")

    def _ask(self, turn: Turn, decision: RouteDecision, activity: Activity) -> None:
        """Offer the decision's choices as buttons (a numbered list where a channel has
        none); the answer is read by ``_answered`` before the next message is classified."""
        titles = [c.title for c in decision.choices]
        turn.session.channel_state[ASKED] = {
            "choices": {c.title.casefold(): c.intent for c in decision.choices},
            "text": activity.text,
        }
        actions = [{"type": "imBack", "title": t, "value": t} for t in titles]
        question = Activity(
            type=ActivityTypes.MESSAGE,
            text=self._notices.choose,
            suggested_actions={"actions": actions},
        )
        self._to_user.send(turn, None, question)

    async def _deliver_guarded(
        self, turn: Turn, leg: Leg, activity: Activity, intent: IntentResult
    ) -> None:
        """Deliver to the leg's provider; if it fails, move to the next candidate and retry."""
        meta = {"intent": intent.name, "confidence": round(intent.confidence, 4)}
        inbound = replaced(
            activity, channel_data={**(activity.channel_data or {}), "midtier": meta}
        )
        try:
            await self._relay.deliver(turn, leg, inbound)
            return
        except ProviderError as exc:
            failed = leg.provider
            log.warning("provider %s failed: %s", failed, exc)
        candidates: list[str | None] = []
        if intent.name:
            candidates += self._router.providers_for(intent.name)
        candidates.append(self._router.fallback)
        switched = await self._switcher.switch(
            turn,
            candidates,
            reason=f"{failed} failed to answer",
            intent=intent.name,
            confidence=intent.confidence,
            notice=self._notices.provider_failed,
            exclude={failed},
            ended=ended("failed"),
        )
        if switched is None:
            self._to_user.notify(turn, self._notices.unavailable)
            return
        await self._relay.enter(turn, switched)
        try:
            await self._relay.deliver(turn, switched.leg, inbound)
        except ProviderError as exc:
            log.warning("provider %s failed too: %s", switched.leg.provider, exc)
            self._to_user.notify(turn, self._notices.unavailable)

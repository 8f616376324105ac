"""The switch: move a conversation to another provider inside the same mid-tier session.

1. The caller holds the session's lock, so new user messages wait in arrival order.
2. For each candidate in turn: issue an authorization code bound to (session, candidate),
   open a leg with the context (bounded transcript, intents, slots, code).
3. On the first success: map the session to the new leg, tell the user (configurable
   notice), commit that, close the old leg with its reason, and deliver the
   ``midtier.handoff`` event to the new provider. If no candidate opens, the old leg stays
   and the caller tells the user plainly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from connector.activity import Activity, ActivityTypes, HandoffEventNames, new_activity_id, now
from connector.errors import ProviderError
from connector.interfaces import HandoffContext
from connector.routing.decision import intent_history
from connector.sessions import CHANNEL_ONLY, Leg, TranscriptEntry

if TYPE_CHECKING:
    from connector.engine import Engine
    from connector.work import Turn

log = logging.getLogger("midtier.handoff")


def status_event(state: str, message: str | None = None) -> Activity:
    """A Bot Framework ``handoff.status`` event (PROTOCOLS.md section 7)."""
    value: dict[str, str] = {"state": state}
    if message:
        value["message"] = message
    return Activity(
        type=ActivityTypes.EVENT,
        name=HandoffEventNames.STATUS,
        id=new_activity_id(),
        timestamp=now(),
        value=value,
    )


class Switcher:
    """Opens the target leg, closes the old one, and tells everyone concerned."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def switch(
        self,
        turn: Turn,
        candidates: Iterable[str | None],
        *,
        reason: str,
        detail: str = "",
        intent: str | None = None,
        confidence: float = 0.0,
        notice: str | None = None,
        exclude: Iterable[str] = (),
        requested: bool = False,
    ) -> Leg | None:
        """Switch ``turn``'s session to the first candidate that opens; return the new leg.

        ``reason`` is for people ("reported fraud"); ``detail`` is the rule behind it (the
        router's reason), kept after it in the legs and the transcript.

        ``requested``: the current provider asked for this handoff (it expects the
        conversation back when the target is done with it). The new leg is committed
        before the target hears of it (it may call back at once).
        """
        engine = self._engine
        session = turn.session
        old = session.current_leg
        why = f"{reason} ({detail})" if detail and detail != reason else reason
        skip = set(exclude)
        if old is not None:
            skip.add(old.provider)
        tried: list[str] = []
        for target in candidates:
            if target is None or target in skip or target in tried:
                continue
            tried.append(target)
            provider = engine.providers.get(target)
            if provider is None:
                continue
            leg = Leg(
                channel=session.channel,
                channel_conversation_id=session.channel_conversation_id,
                provider=target,
                open_reason=why,
            )
            if old is not None:
                leg.data["handoff_from"] = {
                    "provider": old.provider,
                    "leg": old.id,
                    "conversation": old.provider_conversation_id,
                    "requested": requested,
                }
            if not engine.pool.breakers.allows(target):
                log.info("skipping %s: its circuit is open", target)
                continue
            engine.pool.breakers.begin_trial(target)
            context = await self._context(turn, target, reason, intent, confidence)
            context.detail = detail
            try:
                async with asyncio.timeout(engine.pool.timeout(target)):
                    leg.provider_conversation_id = await provider.open(session, leg, context)
            except (ProviderError, TimeoutError) as exc:
                log.warning("could not open %s: %s", target, exc or "timed out")
                engine.pool.mark_failure(target)
                continue
            if old is not None:
                old.closed_at = now()
                old.close_reason = why
            session.legs.append(leg)
            engine.pool.leg_opened(target, old.provider if old else None)
            log.info(
                "switched %s -> %s: %s",
                old.provider if old else "(none)",
                target,
                why,
                extra={"event": "switch", "from": old.provider if old else None, "to": target},
            )
            turn.record(
                TranscriptEntry(
                    speaker="system",
                    provider=target,
                    leg_id=leg.id,
                    text=f"conversation moved from {old.provider if old else 'nobody'} "
                    f"to {target}: {why}",
                )
            )
            # The first leg of a conversation needs no notice, unless a person takes it.
            if notice and (old is not None or engine.router.is_sticky(target)):
                engine.notify(turn, notice.format(title=engine.pool.title(target)))
            await turn.checkpoint()
            if old is not None:
                await engine.pool.close_leg(old, why)
            event = Activity(
                type=ActivityTypes.EVENT,
                name=HandoffEventNames.CONTEXT,
                id=new_activity_id(),
                timestamp=now(),
                value=context.model_dump(mode="json"),
            )
            await engine.deliver_and_emit(turn, leg, event)
            return leg
        return None

    async def _context(
        self,
        turn: Turn,
        target: str,
        reason: str,
        intent: str | None,
        confidence: float,
    ) -> HandoffContext:
        engine = self._engine
        session = turn.session
        code = await engine.auth.issue(session.id, target)
        transcript = [
            TranscriptEntry.model_validate(e.model_dump(exclude=set(CHANNEL_ONLY)))
            for e in await turn.transcript(last=engine.config.midtier.session.handoff_transcript)
        ]
        return HandoffContext(
            session_id=session.id,
            user_id=session.user_id,
            channel=session.channel,
            reason=reason,
            from_provider=session.current_provider,
            intent=intent,
            confidence=confidence,
            intents=intent_history(await turn.decisions()),
            slots=session.slots,
            transcript=transcript,
            auth_code=code,
            token_url=engine.token_url,
        )

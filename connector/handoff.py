"""The switch: move a conversation to another provider inside the same mid-tier session.

1. The caller holds the session's lock, so new user messages wait in arrival order.
2. For each candidate in turn: issue an authorization code bound to (session, candidate),
   open a leg with the context (bounded transcript, intents, slots, code).
3. On the first success: map the session to the new leg, tell the user (configurable
   notice), commit that with the old leg's outcome (:mod:`connector.outcomes`) unless
   nobody outside the process hears of the switch before the turn commits, close the
   old leg with its reason, and return what happened with the ``midtier.handoff`` event
   the new provider is to get. The switcher delivers nothing itself: the caller's relay
   (:mod:`connector.relay`) delivers the event and follows what the new provider answers.
   If no candidate opens, the old leg stays and the caller tells the user plainly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from connector.activity import Activity, ActivityTypes, HandoffEventNames, new_activity_id, now
from connector.auth import AuthCodes
from connector.errors import ProviderError
from connector.outcomes import record
from connector.pool import ProviderPool
from connector.provider_protocol import HandoffContext
from connector.records import Verdict
from connector.routing.decision import intent_history
from connector.sessions import CHANNEL_ONLY, LEG_INTENT, Leg, TranscriptEntry
from connector.to_user import ToUser
from connector.work import Turn

log = logging.getLogger("midtier.handoff")


@dataclass(frozen=True)
class Switched:
    """A switch that happened: the new leg (committed, unless it stays in the process until
    the turn commits) and the leg it replaced (closed, and its provider told), and the
    ``midtier.handoff`` event the new provider is to get."""

    leg: Leg
    old: Leg | None
    event: Activity


class Switcher:
    """Picks and opens the target leg, closes the old one, tells the user; returns what
    happened."""

    def __init__(
        self,
        pool: ProviderPool,
        auth: AuthCodes,
        to_user: ToUser,
        *,
        is_sticky: Callable[[str | None], bool],
        transcript_lines: int,
        token_url: str,
    ) -> None:
        self._pool = pool
        self._auth = auth
        self._to_user = to_user
        self._is_sticky = is_sticky
        self._lines = transcript_lines
        self.token_url = token_url

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
        ended: Verdict | None = None,
    ) -> Switched | None:
        """Switch ``turn``'s session to the first candidate that opens (None: none did).

        ``reason`` is for people ("reported fraud"); ``detail`` is the rule behind it (the
        router's reason), kept after it in the legs and the transcript.

        ``requested``: the current provider asked for this handoff (it expects the
        conversation back when the target is done with it). The new leg is committed
        before this returns, so the target finds its conversation when it calls back;
        between providers in the process, it is committed with the turn
        (``_unseen_outside``).

        ``ended``: the old leg's outcome, if the switch says how it went (None: it says
        nothing of the old provider). The new leg is opened for ``intent``, else for the
        old leg's.
        """
        pool = self._pool
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
            if target not in pool:
                continue
            if not pool.breakers.allows(target):
                log.info("skipping %s: its circuit is open", target)
                continue
            leg = Leg(
                channel=session.channel,
                channel_conversation_id=session.channel_conversation_id,
                provider=target,
                open_reason=why,
            )
            opened_for = intent or (old.opened_for if old is not None else "")
            if opened_for:
                leg.data[LEG_INTENT] = opened_for
            if old is not None:
                leg.data["handoff_from"] = {
                    "provider": old.provider,
                    "leg": old.id,
                    "conversation": old.provider_conversation_id,
                    "requested": requested,
                }
            pool.breakers.begin_trial(target)
            context = await self._context(turn, target, reason, intent, confidence)
            context.detail = detail
            try:
                leg.provider_conversation_id = await pool.open(target, session, leg, context)
            except ProviderError as exc:
                log.warning("could not open %s: %s", target, exc)
                continue
            self._record(turn, old, leg, why, notice)
            if old is not None and ended is not None:
                record(turn, old, ended, switched=True)
            if not self._unseen_outside(target, old):
                await turn.checkpoint()
            if old is not None:
                await pool.close(old, why)
            event = Activity(
                type=ActivityTypes.EVENT,
                name=HandoffEventNames.CONTEXT,
                id=new_activity_id(),
                timestamp=now(),
                value=context.model_dump(mode="json"),
            )
            return Switched(leg=leg, old=old, event=event)
        return None

    def _unseen_outside(self, target: str, old: Leg | None) -> bool:
        """Whether nothing outside the process hears of this switch before the turn commits:
        the target runs in the process (its open reaches nobody, what it answers waits for
        the commit) and so does the old leg's provider, if any. Then the new leg is committed
        with the turn, in one write instead of two: a crash before it leaves nothing behind
        to close, and the message is switched again when it is processed again. Otherwise
        it is committed before anyone outside is told, so that a provider calling back
        finds its conversation, and a crash leaves the legs that were opened or closed."""
        runs_in_process = self._pool.runs_in_process
        return runs_in_process(target) and (old is None or runs_in_process(old.provider))

    def _record(self, turn: Turn, old: Leg | None, leg: Leg, why: str, notice: str | None) -> None:
        """Map the session to ``leg`` in ``turn``: legs, counts, transcript, the notice."""
        target = leg.provider
        if old is not None:
            old.closed_at = now()
            old.close_reason = why
        turn.session.legs.append(leg)
        self._pool.leg_opened(target, old.provider if old else None)
        came_from = old.provider if old else None
        log.info(
            "switched %s -> %s: %s",
            came_from or "(none)",
            target,
            why,
            extra={"event": "switch", "from": came_from, "to": target},
        )
        turn.record(
            TranscriptEntry(
                speaker="system",
                provider=target,
                leg_id=leg.id,
                text=f"conversation moved from {came_from or 'nobody'} to {target}: {why}",
            )
        )
        # The first leg of a conversation needs no notice, unless a person takes it.
        if notice and (old is not None or self._is_sticky(target)):
            self._to_user.notify(turn, notice.format(title=self._pool.title(target)))

    async def _context(
        self,
        turn: Turn,
        target: str,
        reason: str,
        intent: str | None,
        confidence: float,
    ) -> HandoffContext:
        session = turn.session
        # A bot in the process hears of its code only in this turn: stored with the turn.
        in_turn = turn if self._pool.runs_in_process(target) else None
        code = await self._auth.issue(session.id, target, in_turn)
        transcript = [
            TranscriptEntry.model_validate(e.model_dump(exclude=set(CHANNEL_ONLY)))
            for e in await turn.transcript(last=self._lines)
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
            token_url=self.token_url,
        )

"""The move of a session to another channel conversation (see :mod:`connector.continuation`).

The session that goes on keeps its id; the session of the conversation it moves to (which
holds at least the message that asked for the move) is closed. That is two units of work,
one per session, never nested, so no two session locks are ever held at once: first the
arriving conversation's session is closed, then the session moves there. A message that
opened yet another session on that conversation in between makes the move's commit
conflict (one active session per channel conversation): that session is closed the same way
and the move is tried again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from copy import deepcopy
from dataclasses import dataclass
from typing import Any, Protocol

from connector.activity import Activity, now
from connector.choices import OFFER
from connector.claims import merge_claims
from connector.config import Config
from connector.continuation_settings import ContinuationSettings
from connector.errors import ConflictError
from connector.interfaces import SessionStore
from connector.pool import ProviderPool
from connector.records import InboundEntry
from connector.routing.moves import MOVES_OFFERED
from connector.sessions import Leg, MidTierSession, TranscriptEntry
from connector.to_user import ToUser
from connector.work import Turn

log = logging.getLogger("midtier.continuation")

STATE = "continuation"  # channel_state: {"pending": ..., "offer": ..., "asked": bool}
NOT_CARRIED = frozenset({STATE, OFFER, MOVES_OFFERED})  # channel state left behind on a move
MOVE_ATTEMPTS = 3

Then = Callable[[], Awaitable[MidTierSession]]
Handle = Callable[[Turn, Activity], Awaitable[None]]


class ContinuationHost(Protocol):
    """What continuation uses of the engine."""

    config: Config
    store: SessionStore
    pool: ProviderPool
    to_user: ToUser

    def turn(self, session_id: str) -> AbstractAsyncContextManager[Turn]: ...


@dataclass(frozen=True)
class Arrival:
    """The channel conversation a session moves to, and what that channel knows."""

    channel: str
    conversation: str
    user_id: str
    claims: dict[str, Any] | None
    channel_state: dict[str, Any]


class Mover:
    """Moves sessions to the channel conversation a user continues them on."""

    def __init__(
        self, host: ContinuationHost, handle: Handle, settings: ContinuationSettings
    ) -> None:
        self._host = host
        self._handle = handle  # routes a user message in a turn (the engine's pipeline)
        self._settings = settings

    def join(self, turn: Turn, entry: InboundEntry, target_id: str, how: str) -> Then:
        """Close this conversation's session in ``turn``; the returned step moves
        ``target_id`` here once that is committed."""
        here = turn.session
        arrival = Arrival(
            channel=entry.channel,
            conversation=entry.conversation,
            user_id=here.user_id,
            claims=entry.claims,
            channel_state={k: v for k, v in here.channel_state.items() if k not in NOT_CARRIED},
        )
        self._close(turn, target_id)

        async def then() -> MidTierSession:
            return await self._move(target_id, arrival, how)

        return then

    def _close(self, turn: Turn, successor: str) -> None:
        """Close ``turn``'s session (and its open leg): ``successor`` goes on in its place."""
        session, pool = turn.session, self._host.pool
        why = "another conversation continues here"
        leg = session.current_leg
        if leg is not None:
            leg.closed_at, leg.close_reason = now(), why
            pool.leg_closed(leg.provider)
            closed = leg

            async def tell() -> None:
                await pool.close(closed, why)

            turn.after(tell)
        session.status = "closed"
        turn.record(TranscriptEntry(speaker="system", text=f"{why}: session {successor}"))

    async def _move(self, target_id: str, arrival: Arrival, how: str) -> MidTierSession:
        for _ in range(MOVE_ATTEMPTS):
            try:
                async with self._host.turn(target_id) as turn:
                    if turn.session.channel_key == (arrival.channel, arrival.conversation):
                        turn.abandon()  # moved already (what failed came after the move)
                        return turn.session
                    if turn.session.status != "active":
                        turn.abandon()
                        break
                    await self._apply(turn, arrival, how)
                    return turn.session
            except ConflictError:  # a new session appeared on the destination meanwhile
                await self._vacate(arrival, target_id)
        found, _ = await self._host.store.find_or_create(
            arrival.channel, arrival.conversation, arrival.user_id
        )
        async with self._host.turn(found.id) as turn:
            self._host.to_user.notify(turn, self._settings.notices.ended)
        return turn.session

    async def _vacate(self, arrival: Arrival, keep: str) -> None:
        found = await self._host.store.by_channel(arrival.channel, arrival.conversation)
        if found is None or found.status != "active" or found.id == keep:
            return
        async with self._host.turn(found.id) as turn:
            here = (arrival.channel, arrival.conversation)
            if turn.session.status == "active" and turn.session.channel_key == here:
                self._close(turn, keep)

    async def _apply(self, turn: Turn, arrival: Arrival, how: str) -> None:
        session, notices, to_user = turn.session, self._settings.notices, self._host.to_user
        left, came = session.channel, arrival.channel
        state = session.channel_state.get(STATE)
        pending = state.get("pending") if isinstance(state, dict) else None
        # Said while the session is still on the channel it leaves: it goes there.
        to_user.notify(turn, notices.continued_elsewhere.format(channel=self._settings.title(came)))
        session.channel, session.channel_conversation_id = came, arrival.conversation
        session.user_id = arrival.user_id
        session.channel_state = dict(arrival.channel_state)
        session.claims = merge_claims(session.claims, arrival.claims)
        old = session.current_leg
        leg_id = None
        if old is not None:
            old.closed_at, old.close_reason = now(), f"continued on {came}"
            leg = Leg(
                channel=came,
                channel_conversation_id=arrival.conversation,
                provider=old.provider,
                provider_conversation_id=old.provider_conversation_id,
                open_reason=f"continued from {left}",
                data=deepcopy(old.data),
            )
            session.legs.append(leg)
            leg_id = leg.id
        turn.record(
            TranscriptEntry(
                speaker="system",
                provider=old.provider if old is not None else None,
                leg_id=leg_id,
                text=f"conversation continues on {came} (from {left}, with {how})",
            )
        )
        to_user.notify(turn, notices.continued_here.format(channel=self._settings.title(left)))
        log.info(
            "session continued on %s from %s",
            came,
            left,
            extra={"event": "continued", "from": left, "to": came},
        )
        await turn.checkpoint()  # the move stands before any provider hears of it
        if isinstance(pending, dict) and came in pending.get("channels", []):
            await self._handle(turn, Activity.from_wire(pending["activity"]))

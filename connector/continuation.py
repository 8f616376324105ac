"""Cross-channel continuation: a live session moves to another channel and goes on there.

**How a user moves.** On channel A the user asks (``/continue``, "continue on another
channel": ``continuation.commands``), or the router finds that the best provider for what
they want serves other channels only (a ``move`` decision): midtier answers, in its own
voice, with a one-time code (:mod:`connector.continuation_codes`) and, when the page is
served, a link ``<public url>/continue#<token>`` whose page shows the code and a deep link
into each configured app (``continuation.channels.<name>.link``). The token is in the
fragment, so browsers never send it: it reaches no access log, proxy or referrer, and the
link previews messaging apps fetch see a page without it. On channel B, a message that is
exactly the code (or ``/start <code>``) continues the session there instead of being
routed. A user whose platform on B proves an identity (:mod:`connector.claims`) that the
active session on A proved too is asked first ("Continue your conversation from web chat?
Reply YES"); nothing moves without that YES, and unverified claims never take part.

**What moves.** The session keeps its id, transcript, slots, route decisions and claims
(B's verified claims merge in; unverified ones never replace verified ones). Its channel
fields become B's (channel, conversation, user id) and so does its channel-owned state (B's
reply address, B's resume secret); the store's index follows, so A's conversation no
longer reaches it. A leg joins one channel conversation to one provider conversation, so
the open leg is closed ("continued on B") and a new leg opens on B with the same provider
conversation and a copy of the leg's data: the provider is not reopened and sees the same
conversation (a bot keeps its state, an agent keeps the conversation they accepted), now
on B. A hears "This conversation continues on B", B "You're continuing your conversation
from A". If a move was offered because a provider serves only B, the message that asked
for it is routed again on B.

**Afterwards.** What the user writes on A starts a new session there (A was told so). A
code works once and for ``code_ttl_s``; a wrong, used or expired one gets the same
answer, and after ``max_wrong_per_conversation`` wrong codes from one conversation (or
``max_wrong_overall`` from all) within ``throttle_window_s`` codes are refused unchecked.
A code sent in its own conversation is kept. The conversation on B that received the code
is closed (its open leg too) and notes which session went on in its place. If the user
carries on at A after a move was offered, routing goes on as before, with the next best
provider on A; a move is offered once per provider.

The move is two units of work, one per session, never nested (so no two locks are held):
first B's conversation is closed, then the session moves; a message that opened yet another
session on B in between is closed the same way and the move is tried again.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from copy import deepcopy
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

from connector.activity import Activity, ActivityTypes, now
from connector.choices import OFFER
from connector.claims import merge_claims, verified_identities
from connector.config import Config
from connector.continuation_codes import Codes, Throttle, read_code
from connector.continuation_settings import normalize_phrase
from connector.errors import ConflictError
from connector.interfaces import SessionStore
from connector.pool import ProviderPool
from connector.records import InboundEntry
from connector.routing.decision import RouteDecision
from connector.routing.policy import MOVES_OFFERED
from connector.sessions import Leg, MidTierSession, TranscriptEntry
from connector.to_user import ToUser
from connector.work import Turn

log = logging.getLogger("midtier.continuation")

STATE = "continuation"  # channel_state: {"pending": ..., "offer": ..., "asked": bool}
NOT_CARRIED = frozenset({STATE, OFFER, MOVES_OFFERED})  # channel state left behind on a move
MOVE_ATTEMPTS = 3
LINK_PATH = "/continue"  # where the link's page is served (``continuation.page``)

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


def _stay(session: MidTierSession) -> Then:
    async def then() -> MidTierSession:
        return session

    return then


class Continuation:
    """Offers continuation codes, and moves sessions to the channel they are used on."""

    def __init__(self, host: ContinuationHost, handle: Handle) -> None:
        self._host = host
        self._handle = handle  # routes a user message in a turn (the engine's pipeline)
        self.settings = host.config.midtier.continuation
        self.codes = Codes(host.store, self.settings.code_ttl_s)
        self.throttle = Throttle(
            self.settings.max_wrong_per_conversation,
            self.settings.max_wrong_overall,
            self.settings.throttle_window_s,
        )
        self.page_url: str | None = None  # e.g. https://chat.example.com/continue, once served

    # ------------------------------------------------------------------ user messages

    async def intercept(self, turn: Turn, entry: InboundEntry, activity: Activity) -> Then | None:
        """Act on a message that is about continuing (a code, a YES to an offer, a request
        for a code), or offer a conversation found by identity. None: route it as usual;
        else the message is dealt with, and what the returned step gives (after this turn
        is committed) is the session it went to."""
        if not self.settings.enabled or activity.type != ActivityTypes.MESSAGE:
            return None
        text = activity.text or ""
        session = turn.session
        code = read_code(text)
        if code is not None:
            return await self._code(turn, entry, code)
        phrase = normalize_phrase(text)
        found = session.channel_state.get(STATE)
        state: dict[str, Any] = found if isinstance(found, dict) else {}
        offer = state.pop("offer", None)
        if isinstance(offer, dict) and phrase in self.settings.yes:
            return await self._accepted(turn, entry, offer)
        if phrase in self.settings.commands:
            await self.offer(turn)
            return _stay(session)
        state.pop("pending", None)  # the user carries on here
        first = not session.legs and not state.get("asked")
        if first:
            state["asked"] = True  # identities are looked up once, as a conversation starts
        offered = first and await self._offer_by_identity(turn, state)
        if state:
            session.channel_state[STATE] = state
        else:
            session.channel_state.pop(STATE, None)
        return _stay(session) if offered else None

    async def offer(self, turn: Turn, decision: RouteDecision | None = None) -> None:
        """Tell the user how to continue elsewhere: a new code (and link)."""
        notices = self.settings.notices
        code, token = await self.codes.issue(turn.session.id)
        minutes = max(1, math.ceil(self.codes.ttl.total_seconds() / 60))
        fill: dict[str, Any] = {"minutes": minutes}
        if decision is None:
            template = notices.offer
        else:
            template = notices.offer_move
            fill["title"] = self._host.pool.title(decision.provider or "")
            fill["channels"] = " or ".join(self.settings.title(c) for c in decision.channels)
        text = _sentence(template.format(code=code, **fill))
        recorded = _sentence(template.format(code="[code]", **fill))
        if self.page_url is not None:
            text += " " + notices.offer_link.format(link=f"{self.page_url}#{token}")
            recorded += " " + notices.offer_link.format(link="[link]")
        self._host.to_user.notify(turn, text, recorded=recorded)

    async def offer_move(self, turn: Turn, decision: RouteDecision, activity: Activity) -> None:
        """The provider for this message serves other channels only: offer to go there
        (once per provider); the message is routed again once the session moved there."""
        session = turn.session
        offered = session.channel_state.setdefault(MOVES_OFFERED, [])
        offered.append(decision.provider)
        state = session.channel_state.setdefault(STATE, {})
        state["pending"] = {"activity": activity.to_wire(), "channels": decision.channels}
        await self.offer(turn, decision)

    async def _code(self, turn: Turn, entry: InboundEntry, code: str) -> Then:
        session, notices = turn.session, self.settings.notices
        key = (entry.channel, entry.conversation)
        if self.throttle.blocked(key):
            log.warning("continuation code refused: too many wrong ones", extra=_where(key))
            self._host.to_user.notify(turn, notices.throttled)
            return _stay(session)
        record = await self.codes.take(code)
        if record is None:
            self.throttle.wrong(key)
            log.warning("a wrong continuation code", extra=_where(key))
            self._host.to_user.notify(turn, notices.wrong_code)
            return _stay(session)
        if record.session_id == session.id:
            await self.codes.put_back(code, record)
            self._host.to_user.notify(turn, notices.same_conversation)
            return _stay(session)
        target = await self._host.store.get(record.session_id)
        if target is None or target.status != "active":
            self._host.to_user.notify(turn, notices.ended)
            return _stay(session)
        return self._join(turn, entry, target.id, "a code")

    async def _offer_by_identity(self, turn: Turn, state: dict[str, Any]) -> bool:
        """At the start of a conversation, offer the user's active conversation elsewhere
        that a platform proved the same identity for."""
        session = turn.session
        for identity in verified_identities(session.claims):
            for found in await self._host.store.by_identity(identity):
                key = (found.channel, found.channel_conversation_id)
                if found.id == session.id or key == _key(session):
                    continue
                state["offer"] = {"session": found.id, "identity": identity}
                title = self.settings.title(found.channel)
                self._host.to_user.notify(
                    turn, self.settings.notices.identity_offer.format(channel=title)
                )
                return True
        return False

    async def _accepted(self, turn: Turn, entry: InboundEntry, offer: dict[str, Any]) -> Then:
        session = turn.session
        identity = offer.get("identity")
        target = await self._host.store.get(str(offer.get("session", "")))
        if (
            target is None
            or target.status != "active"
            or identity not in verified_identities(target.claims)
            or identity not in verified_identities(session.claims)
            or _key(target) == _key(session)
        ):
            self._host.to_user.notify(turn, self.settings.notices.ended)
            return _stay(session)
        return self._join(turn, entry, target.id, "an identity proved on both channels")

    # ------------------------------------------------------------------ the move

    def _join(self, turn: Turn, entry: InboundEntry, target_id: str, how: str) -> Then:
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
                await pool.close_leg(closed, why)

            turn.after(tell)
        session.status = "closed"
        turn.record(TranscriptEntry(speaker="system", text=f"{why}: session {successor}"))

    async def _move(self, target_id: str, arrival: Arrival, how: str) -> MidTierSession:
        for _ in range(MOVE_ATTEMPTS):
            try:
                async with self._host.turn(target_id) as turn:
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
            self._host.to_user.notify(turn, self.settings.notices.ended)
        return turn.session

    async def _vacate(self, arrival: Arrival, keep: str) -> None:
        found = await self._host.store.by_channel(arrival.channel, arrival.conversation)
        if found is None or found.status != "active" or found.id == keep:
            return
        async with self._host.turn(found.id) as turn:
            if turn.session.status == "active" and _key(turn.session) == (
                arrival.channel,
                arrival.conversation,
            ):
                self._close(turn, keep)

    async def _apply(self, turn: Turn, arrival: Arrival, how: str) -> None:
        session, notices, to_user = turn.session, self.settings.notices, self._host.to_user
        left, came = session.channel, arrival.channel
        state = session.channel_state.get(STATE)
        pending = state.get("pending") if isinstance(state, dict) else None
        # Said while the session is still on the channel it leaves: it goes there.
        to_user.notify(turn, notices.continued_elsewhere.format(channel=self.settings.title(came)))
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
        to_user.notify(turn, notices.continued_here.format(channel=self.settings.title(left)))
        log.info(
            "session continued on %s from %s",
            came,
            left,
            extra={"event": "continued", "from": left, "to": came},
        )
        await turn.checkpoint()  # the move stands before any provider hears of it
        if isinstance(pending, dict) and came in pending.get("channels", []):
            await self._handle(turn, Activity.from_wire(pending["activity"]))

    # ------------------------------------------------------------------ the link's page

    async def describe(self, token: str) -> dict[str, Any] | None:
        """What the link's page shows (None: the link is unknown, used or expired): the
        code, when it expires, and how to continue on each other configured channel."""
        found = await self.codes.by_link(token)
        if found is None:
            return None
        code, record = found
        session = await self._host.store.get(record.session_id)
        if session is None or session.status != "active":
            return None
        channels = []
        for name in self._host.config.midtier.channels:
            if name == session.channel:
                continue
            configured = self.settings.channels.get(name)
            link = configured.link if configured is not None else None
            channels.append(
                {
                    "channel": name,
                    "title": self.settings.title(name),
                    "link": link.format(code=quote(code)) if link else None,
                }
            )
        return {"code": code, "expires_at": record.expires_at.isoformat(), "channels": channels}


def _sentence(text: str) -> str:
    """``text`` with a capital first letter (a provider's title may begin it)."""
    return text[:1].upper() + text[1:]


def _key(session: MidTierSession) -> tuple[str, str]:
    return session.channel, session.channel_conversation_id


def _where(key: tuple[str, str]) -> dict[str, str]:
    return {"event": "continuation_code", "channel": key[0]}

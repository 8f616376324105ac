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

The move itself, two units of work that never hold two sessions' locks at once, is in
:mod:`connector.continuation_move`.
"""

from __future__ import annotations

import logging
import math
from typing import Any
from urllib.parse import quote

from connector.activity import Activity, ActivityTypes
from connector.claims import verified_identities
from connector.continuation_codes import Codes, Throttle, read_code
from connector.continuation_move import (
    STATE,
    ContinuationHost,
    Handle,
    Mover,
    Then,
)
from connector.continuation_settings import normalize_phrase
from connector.records import InboundEntry
from connector.routing.decision import RouteDecision
from connector.routing.moves import MOVES_OFFERED
from connector.sessions import MidTierSession
from connector.work import Turn

log = logging.getLogger("midtier.continuation")

LINK_PATH = "/continue"  # where the link's page is served (``continuation.page``)
MAX_PHRASE = 200  # longer messages are never a command or a YES: not worth normalizing

__all__ = ["LINK_PATH", "Continuation", "Then"]


def _stay(session: MidTierSession) -> Then:
    async def then() -> MidTierSession:
        return session

    return then


class Continuation:
    """Offers continuation codes, and moves sessions to the channel they are used on."""

    def __init__(self, host: ContinuationHost, handle: Handle) -> None:
        self._host = host
        self.settings = host.config.midtier.continuation
        self._mover = Mover(host, handle, self.settings)
        self.codes = Codes(host.store, self.settings.code_ttl_s)
        self.throttle = Throttle(
            self.settings.max_wrong_per_conversation,
            self.settings.max_wrong_overall,
            self.settings.throttle_window_s,
        )
        self.page_url: str | None = None  # e.g. https://chat.example.com/continue, once served
        # How each command and YES begins: a message that begins otherwise is none of them.
        self._firsts = frozenset(p[0] for p in (*self.settings.commands, *self.settings.yes))

    def _phrase(self, text: str) -> str:
        """``text`` as commands and YES are compared, or "" when it cannot be one of them
        (most messages: told by their first character, before normalizing them)."""
        if len(text) > MAX_PHRASE or text.lstrip()[:1].lower()[:1] not in self._firsts:
            return ""
        return normalize_phrase(text)

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
        phrase = self._phrase(text)
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
        return self._mover.join(turn, entry, target.id, "a code")

    async def _offer_by_identity(self, turn: Turn, state: dict[str, Any]) -> bool:
        """At the start of a conversation, offer the user's active conversation elsewhere
        that a platform proved the same identity for."""
        session = turn.session
        for identity in verified_identities(session.claims):
            for found in await self._host.store.by_identity(identity):
                if found.id == session.id or found.channel_key == session.channel_key:
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
            or target.channel_key == session.channel_key
        ):
            self._host.to_user.notify(turn, self.settings.notices.ended)
            return _stay(session)
        return self._mover.join(turn, entry, target.id, "an identity proved on both channels")

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


def _where(key: tuple[str, str]) -> dict[str, str]:
    return {"event": "continuation_code", "channel": key[0]}

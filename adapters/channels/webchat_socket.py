"""The web chat's WebSocket (see :mod:`.webchat`): one socket's conversation, frame by frame.

Protocol (``/webchat/ws``, JSON text frames; documented in README.md):

client -> server
    ``{"type": "hello", "resume": token|null, "user": id|null}`` first, then
    ``{"type": "message", "id": "<client id>", "text": "..."}``,
    ``{"type": "typing"}``, ``{"type": "history", "before": seq}``, ``{"type": "rotate"}``,
    ``{"type": "rating", "value": "up"|"down"}``
server -> client
    ``welcome`` (conversation, resume, user, resumed, title, history, more), ``message`` (id,
    text, speaker, from, timestamp, seq, client_id), ``ack`` (id), ``typing`` (speaker,
    from), ``history`` (entries, more), ``resume`` (resume), ``rated`` (value), ``error``
    (code, reason)

**Rating.** ``rating`` is the user's word on who serves the conversation (or served it
last): the outcome of that leg for its provider and intent (``connector.outcomes``), which
replaces how the leg ended. ``rated`` answers once it is committed.

**Who may resume**: only the page holding the resume token (:mod:`.webchat_resume`).

**Acknowledgement.** A message is acknowledged once it is recorded (``ack``); replies come
through the outbox, so a page that was away gets them, once, in order, when it says hello
again. The ``user`` a page proposes is a label, not an identity: its claims carry
``verified: false``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from adapters.channels.webchat_frames import (
    HISTORY_PAGE,
    encode,
    history_frame,
    send,
    shown,
)
from adapters.channels.webchat_resume import RESUME_KEY, new_token, resumed
from adapters.pages import check_origin, ended, parse_frame, send_error
from connector.activity import Activity, ActivityTypes, ChannelAccount, ConversationAccount, now
from connector.errors import MidtierError
from connector.interfaces import ChannelHost
from connector.records import Verdict
from connector.sessions import MidTierSession, new_id

log = logging.getLogger("midtier.webchat")

_USER_ID = re.compile(r"^[A-Za-z0-9_\-]{8,64}$")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
RATINGS = {"up": True, "down": False}  # a rating's value: whether it is a success
MAX_SEQ = 10**18  # past any seq a transcript reaches (and within SQLite's 64-bit integers)


@dataclass
class _Chat:
    """One socket's conversation, once it said hello."""

    conversation: str
    user: str
    resume_sha256: str


class WebChatSockets:
    """The chat's WebSocket protocol; each socket that said hello joins ``sockets`` under
    its conversation, which the channel sends replies to."""

    def __init__(
        self,
        name: str,
        host: ChannelHost,
        title: str,
        sockets: dict[str, set[web.WebSocketResponse]],
    ) -> None:
        self.name = name
        self._host = host
        self.title = title
        self._sockets = sockets

    async def serve(self, request: web.Request) -> web.WebSocketResponse:
        """One socket, from its hello to its close."""
        limit = self._host.config.midtier.limits
        check_origin(request, self._host.config.midtier.allowed_origins)  # 403 for other sites
        ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=limit.max_body_bytes)
        await ws.prepare(request)
        chat: _Chat | None = None
        try:
            async for msg in ws:
                if ended(msg):
                    break
                frame, problem = parse_frame(msg)
                if frame is None:
                    await _error(ws, "malformed_frame", problem)
                    continue
                kind = frame["type"]
                if kind == "hello":
                    self._leave(chat, ws)
                    chat = await self._hello(ws, frame)
                elif chat is None:
                    await _error(ws, "not_ready", "say hello first")
                elif kind == "message":
                    await self._message(ws, chat, frame, limit.max_text_chars)
                elif kind == "typing":
                    await self._typing(chat)
                elif kind == "history":
                    await self._history(ws, chat, frame)
                elif kind == "rotate":
                    await self._rotate(ws, chat)
                elif kind == "rating":
                    await self._rating(ws, chat, frame)
                else:
                    await _error(ws, "malformed_frame", f"unknown frame type {kind!r}")
        finally:
            self._leave(chat, ws)
        return ws

    def _leave(self, chat: _Chat | None, ws: web.WebSocketResponse) -> None:
        if chat is None:
            return
        sockets = self._sockets.get(chat.conversation)
        if sockets is not None:
            sockets.discard(ws)
            if not sockets:
                del self._sockets[chat.conversation]

    async def _session(self, chat: _Chat) -> MidTierSession | None:
        session: MidTierSession | None = await self._host.store.by_channel(
            self.name, chat.conversation
        )
        return session

    async def _hello(self, ws: web.WebSocketResponse, frame: dict[str, Any]) -> _Chat | None:
        store = self._host.store
        token = frame.get("resume")
        if token is not None:
            found = await resumed(store, self.name, token)
            if found is None:
                await _error(ws, "unknown_conversation", "no such conversation; start a new one")
                return None
            session, known = found
            if session.status != "active":
                await _error(ws, "session_closed", "this conversation has ended; start a new one")
                return None
            conversation = session.channel_conversation_id
            chat = _Chat(conversation, session.user_id, known)
            # Nothing reaches this socket before its history; what it missed comes after.
            async with self._host.outbox.paused(self.name, conversation):
                # Transcript first: a reply committed after it is still pending then, so
                # it comes once, after the history (nothing is delivered while paused).
                entries = await store.transcript(session.id, last=HISTORY_PAGE)
                pending = {e.id for e in await store.outbox_pending(self.name, conversation)}
                history = [
                    history_frame(e)
                    for e in entries
                    if shown(e) and e.activity.get("id") not in pending
                ]
                more = bool(entries) and entries[0].seq > 1
                await self._welcome(ws, chat, str(token), history, more, resumed=True)
            return chat
        asked = frame.get("user")
        user = asked if isinstance(asked, str) and _USER_ID.match(asked) else new_id("u")
        conversation = new_id("wc")
        token, digest = new_token(conversation)
        chat = _Chat(conversation, user, digest)
        await self._welcome(ws, chat, token, [], False, resumed=False)
        return chat

    async def _welcome(
        self,
        ws: web.WebSocketResponse,
        chat: _Chat,
        token: str,
        history: list[dict[str, Any]],
        more: bool,
        *,
        resumed: bool,
    ) -> None:
        await ws.send_json(
            {
                "type": "welcome",
                "conversation": chat.conversation,
                "resume": token,
                "user": chat.user,
                "resumed": resumed,
                "title": self.title,
                "history": history,
                "more": more,
            }
        )
        self._sockets.setdefault(chat.conversation, set()).add(ws)

    async def _message(
        self, ws: web.WebSocketResponse, chat: _Chat, frame: dict[str, Any], max_chars: int
    ) -> None:
        text, client_id = frame.get("text"), frame.get("id")
        if not isinstance(text, str) or not text.strip():
            await _error(ws, "malformed_frame", "a message needs non-empty text")
            return
        if len(text) > max_chars:
            await _error(ws, "too_long", f"messages are limited to {max_chars} characters")
            return
        if client_id is not None and not (
            isinstance(client_id, str) and _CLIENT_ID.match(client_id)
        ):
            await _error(ws, "malformed_frame", "id must be 1-64 letters, digits, - or _")
            return
        activity = Activity(  # accounts as dicts: validated with it, not built one by one
            type="message",
            timestamp=now(),
            channel_id=self.name,
            from_={"id": chat.user, "role": "user"},
            recipient={"id": "midtier", "role": "bot"},
            conversation={"id": chat.conversation},
            text=text,
        )
        # A page's user id is whatever the page says: a label, not an identity.
        claims = {"sub": chat.user, "channel": self.name, "verified": False}
        try:
            await self._host.submit(
                self.name,
                activity,
                claims=claims,
                ref=client_id,
                channel_state={RESUME_KEY: chat.resume_sha256},
            )
        except MidtierError as exc:
            log.warning("web chat message refused: %s", exc)
            await _error(ws, "refused", str(exc))
            return
        # Recorded (or a repeat of one recorded): it will be answered, after a crash too.
        await send(ws, encode({"type": "ack", "id": client_id}))

    async def _typing(self, chat: _Chat) -> None:
        typing = Activity(
            type=ActivityTypes.TYPING,
            channel_id=self.name,
            from_=ChannelAccount(id=chat.user, role="user"),
            conversation=ConversationAccount(id=chat.conversation),
        )
        await self._host.signal_user(self.name, chat.conversation, typing)

    async def _history(self, ws: web.WebSocketResponse, chat: _Chat, frame: dict[str, Any]) -> None:
        before = frame.get("before")
        if not isinstance(before, int) or isinstance(before, bool) or not 0 < before < MAX_SEQ:
            await _error(ws, "malformed_frame", "history needs before: a positive seq")
            return
        session = await self._session(chat)
        entries = (
            await self._host.store.transcript(session.id, last=HISTORY_PAGE, before=before)
            if session is not None
            else []
        )
        await ws.send_json(
            {
                "type": "history",
                "entries": [history_frame(e) for e in entries if shown(e)],
                "more": bool(entries) and entries[0].seq > 1,
            }
        )

    async def _rating(self, ws: web.WebSocketResponse, chat: _Chat, frame: dict[str, Any]) -> None:
        value = frame.get("value")
        if not isinstance(value, str) or value not in RATINGS:
            await _error(ws, "malformed_frame", "rating needs value: up or down")
            return
        session = await self._session(chat)
        verdict = Verdict("rating", RATINGS[value], detail=value, explicit=True)
        if session is None or not await self._host.rate(session.id, verdict):
            await _error(ws, "nothing_to_rate", "nobody has answered in this conversation yet")
            return
        await ws.send_json({"type": "rated", "value": value})

    async def _rotate(self, ws: web.WebSocketResponse, chat: _Chat) -> None:
        """A new resume secret; the old one stops working (other tabs start over)."""
        token, digest = new_token(chat.conversation)
        session = await self._session(chat)
        if session is not None and session.status == "active":
            await self._host.set_channel_state(session.id, {RESUME_KEY: digest})
        chat.resume_sha256 = digest
        await ws.send_json({"type": "resume", "resume": token})


_error = send_error

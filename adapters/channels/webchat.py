"""The web chat channel: a page at ``/`` and a small JSON protocol over a WebSocket.

Protocol (``/webchat/ws``, JSON text frames; documented in README.md):

client -> server
    ``{"type": "hello", "conversation": id|null, "user": id|null}`` first, then
    ``{"type": "message", "id": "<client id>", "text": "..."}``
server -> client
    ``welcome`` (conversation, user, resumed, title, history), ``message`` (id, text, speaker,
    from, timestamp), ``ack`` (id), ``error`` (code, reason)

A conversation id is unguessable and is the channel conversation id of the mid-tier session,
so a reload that says hello with it resumes the same session with its history. Replies for a
conversation with no open socket stay in the outbox and go out when it reconnects.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from aiohttp import WSCloseCode, web

from adapters.pages import page_handler, parse_frame, send_error
from connector.activity import Activity, ChannelAccount, ConversationAccount, now
from connector.config import ChannelConfig
from connector.errors import ChannelUnavailable, MalformedPayload, MidtierError, SessionClosed
from connector.sessions import TranscriptEntry, new_id

log = logging.getLogger("midtier.webchat")

_USER_ID = re.compile(r"^[A-Za-z0-9_\-]{8,64}$")


def _frame(activity: dict[str, Any], speaker: str | None = None) -> dict[str, Any]:
    sender = activity.get("from") or {}
    meta = (activity.get("channelData") or {}).get("midtier") or {}
    return {
        "type": "message",
        "id": activity.get("id"),
        "text": activity.get("text") or "",
        "speaker": speaker or meta.get("speaker") or "bot",
        "from": {"id": sender.get("id"), "name": sender.get("name")},
        "timestamp": activity.get("timestamp"),
    }


def _history_frame(entry: TranscriptEntry) -> dict[str, Any]:
    frame = _frame(entry.activity, entry.speaker)
    frame["text"] = entry.text or frame["text"]
    frame["timestamp"] = frame["timestamp"] or entry.at.isoformat()
    return frame


class WebChatChannel:
    """Serves the chat page and its WebSocket; sends replies to every open tab."""

    def __init__(self, name: str, config: ChannelConfig, host: Any) -> None:
        self.name = name
        self._host = host
        extra = config.model_extra or {}
        self.title = str(extra.get("title") or host.config.midtier.title)
        self.page_path = str(extra.get("page_path", "/"))
        self.ws_path = str(extra.get("ws_path", "/webchat/ws"))
        self._sockets: dict[str, set[web.WebSocketResponse]] = {}
        self._page = b""

    # ChannelAdapter: the web chat has no webhook; everything arrives over the WebSocket.
    async def verify(self, request: Any) -> None:
        return None

    async def parse(self, request: Any) -> list[Activity]:
        raise MalformedPayload("the web chat channel takes messages over its WebSocket only")

    async def send(self, activity: Activity) -> str:
        """Push to every open socket of the conversation; ChannelUnavailable if none."""
        conversation = activity.conversation.id if activity.conversation else ""
        sockets = self._sockets.get(conversation)
        if not sockets:
            raise ChannelUnavailable(f"no open web chat for {conversation}")
        frame = _frame(activity.to_wire())
        delivered = 0
        for ws in list(sockets):
            try:
                await ws.send_json(frame)
                delivered += 1
            except (ConnectionResetError, RuntimeError):
                sockets.discard(ws)
        if not delivered:
            raise ChannelUnavailable(f"web chat for {conversation} went away")
        return activity.id or ""

    async def shutdown(self) -> None:
        """Server going down: close every chat socket (pages reconnect by themselves)."""
        for sockets in list(self._sockets.values()):
            for ws in list(sockets):
                await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")

    def mount(self, app: web.Application, host: Any) -> None:
        app.router.add_get(
            self.page_path, page_handler("adapters.channels", "webchat.html", framable=True)
        )
        app.router.add_get(self.ws_path, self._serve_ws)

    async def _serve_ws(self, request: web.Request) -> web.WebSocketResponse:
        limit = self._host.config.midtier.limits
        ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=limit.max_body_bytes)
        await ws.prepare(request)
        conversation: str | None = None
        user = ""
        try:
            async for msg in ws:
                frame = parse_frame(msg)
                if frame is None:
                    await _error(ws, "malformed_frame", "frames must be JSON objects with a type")
                    continue
                kind = frame["type"]
                if kind == "hello":
                    if conversation is not None:
                        self._sockets.get(conversation, set()).discard(ws)
                    conversation, user = await self._hello(ws, frame)
                elif conversation is None:
                    await _error(ws, "not_ready", "say hello first")
                elif kind == "message":
                    await self._message(ws, conversation, user, frame, limit.max_text_chars)
                else:
                    await _error(ws, "malformed_frame", f"unknown frame type {kind!r}")
        finally:
            if conversation is not None:
                sockets = self._sockets.get(conversation)
                if sockets is not None:
                    sockets.discard(ws)
                    if not sockets:
                        del self._sockets[conversation]
        return ws

    async def _hello(
        self, ws: web.WebSocketResponse, frame: dict[str, Any]
    ) -> tuple[str | None, str]:
        store = self._host.store
        wanted = frame.get("conversation")
        history: list[dict[str, Any]] = []
        if wanted is not None:
            session = (
                await store.by_channel(self.name, str(wanted)) if isinstance(wanted, str) else None
            )
            if session is None:
                await _error(ws, "unknown_conversation", "no such conversation; start a new one")
                return None, ""
            if session.status != "active":
                await _error(ws, "session_closed", "this conversation has ended; start a new one")
                return None, ""
            conversation, user = session.channel_conversation_id, session.user_id
            pending = {e.id for e in await store.outbox_pending(self.name, conversation)}
            history = [
                _history_frame(e)
                for e in await store.transcript(session.id)
                if e.speaker != "system" or e.activity
                if e.activity.get("id") not in pending
            ]
        else:
            conversation = new_id("wc")
            asked = frame.get("user")
            user = asked if isinstance(asked, str) and _USER_ID.match(asked) else new_id("u")
        self._sockets.setdefault(conversation, set()).add(ws)
        await ws.send_json(
            {
                "type": "welcome",
                "conversation": conversation,
                "user": user,
                "resumed": wanted is not None,
                "title": self.title,
                "history": history,
            }
        )
        if wanted is not None:
            await self._host.outbox.flush(self.name, conversation)
        return conversation, user

    async def _message(
        self,
        ws: web.WebSocketResponse,
        conversation: str,
        user: str,
        frame: dict[str, Any],
        max_chars: int,
    ) -> None:
        text, client_id = frame.get("text"), frame.get("id")
        if not isinstance(text, str) or not text.strip():
            await _error(ws, "malformed_frame", "a message needs non-empty text")
            return
        if len(text) > max_chars:
            await _error(ws, "too_long", f"messages are limited to {max_chars} characters")
            return
        if client_id is not None and not isinstance(client_id, str):
            await _error(ws, "malformed_frame", "id must be a string")
            return
        activity = Activity(
            type="message",
            id=f"{conversation}:{client_id}" if client_id else None,
            timestamp=now(),
            channel_id=self.name,
            from_=ChannelAccount(id=user, role="user"),
            recipient=ChannelAccount(id="midtier", role="bot"),
            conversation=ConversationAccount(id=conversation),
            text=text,
        )
        claims = {"sub": user, "channel": self.name, "verified": False}
        try:
            await self._host.receive(self.name, activity, claims=claims)
        except SessionClosed:
            await _error(ws, "session_closed", "this conversation has ended; start a new one")
            return
        except MidtierError as exc:
            log.warning("web chat message refused: %s", exc)
            await _error(ws, "refused", str(exc))
            return
        await ws.send_json({"type": "ack", "id": client_id})


_error = send_error

"""The web chat channel: a page at ``/`` and a small JSON protocol over a WebSocket, whose
frames and resume tokens :mod:`.webchat_socket` holds (documented in README.md).

Replies reach ``send()`` through the outbox and go to every open tab of the conversation;
with none open the channel is unavailable, and the outbox keeps them for the page's next
hello.
"""

from __future__ import annotations

from typing import Any

from aiohttp import WSCloseCode, web
from pydantic import BaseModel, ConfigDict, Field

from adapters.channels.webchat_frames import encode, message_frame, send
from adapters.channels.webchat_socket import WebChatSockets
from adapters.pages import page_handler
from connector.activity import Activity, ActivityTypes
from connector.context import ChannelContext
from connector.errors import ChannelUnavailable


class WebChatSettings(BaseModel):
    """``channels.<name>`` of ``kind: webchat`` in midtier.yaml."""

    model_config = ConfigDict(extra="forbid")
    title: str | None = Field(default=None, description="shown on the page; midtier's title")
    page_path: str = Field(default="/", pattern=r"^/")
    ws_path: str = Field(default="/webchat/ws", pattern=r"^/")


class WebChatChannel:
    """Serves the chat page and its WebSocket; sends replies to every open tab."""

    Settings = WebChatSettings

    def __init__(self, context: ChannelContext[WebChatSettings]) -> None:
        self.name = context.name
        self._host = context.host
        settings = context.settings
        self.title = settings.title or self._host.config.midtier.title
        self.page_path = settings.page_path
        self.ws_path = settings.ws_path
        # Open sockets by conversation: the protocol adds and drops them, send() reads them.
        self._sockets: dict[str, set[web.WebSocketResponse]] = {}
        self._chat = WebChatSockets(self.name, self._host, self.title, self._sockets)

    async def send(self, activity: Activity) -> str:
        """Push to every open socket of the conversation; ChannelUnavailable if none."""
        return await self.send_wire(activity.to_wire())

    async def send_wire(self, activity: dict[str, Any]) -> str:
        """``send`` of a wire activity, as the outbox keeps it."""
        kind = activity.get("type", ActivityTypes.MESSAGE)
        if kind not in (ActivityTypes.MESSAGE, ActivityTypes.TYPING):
            # The page shows messages and typing; edits, deletions and events it cannot
            # show are not drawn as empty bubbles.
            return activity.get("id") or ""
        conversation = (activity.get("conversation") or {}).get("id") or ""
        sockets = self._sockets.get(conversation)
        if not sockets:
            raise ChannelUnavailable(f"no open web chat for {conversation}")
        message = message_frame(activity)
        if kind == ActivityTypes.TYPING:
            frame = {"type": "typing", "speaker": message["speaker"], "from": message["from"]}
        else:
            frame = message
        data = encode(frame)
        delivered = 0
        for ws in list(sockets):
            try:
                await send(ws, data)
                delivered += 1
            except (ConnectionResetError, RuntimeError):
                sockets.discard(ws)
        if not delivered:
            raise ChannelUnavailable(f"web chat for {conversation} went away")
        return activity.get("id") or ""

    async def shutdown(self) -> None:
        """Server going down: close every chat socket (pages reconnect by themselves)."""
        for sockets in list(self._sockets.values()):
            for ws in list(sockets):
                await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")

    def mount(self, app: web.Application) -> None:
        app.router.add_get(
            self.page_path, page_handler("adapters.channels", "webchat.html", framable=True)
        )
        app.router.add_get(self.ws_path, self._chat.serve)

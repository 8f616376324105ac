"""Direct Line's streams: the WebSockets at the stream URLs (see :mod:`.directline`).

Frames are ActivitySet JSON, and an empty text frame now and then keeps proxies from
closing an idle stream. A stream that opens is given what it missed after its watermark,
read from the transcript while the conversation's deliveries are paused, and only then
joins the live ones. Lines committed but not yet delivered are in that history in their
place; when their delivery follows, it passes this stream by. So each activity reaches a
stream once, and the history in transcript order.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode, web

from adapters.channels.directline_wire import (
    activity_set,
    client_activity,
    entry_activity,
    history,
)
from adapters.pages import ended
from connector.activity import Activity, ActivityTypes
from connector.channel_protocol import ChannelHost
from connector.errors import MalformedPayload
from connector.sessions import TranscriptEntry

MAX_STREAMS = 8  # per conversation (tabs, reconnects not yet noticed); a new one wins


@dataclass(eq=False)
class _Stream:
    """One open stream, and the activities its history held that are still to be
    delivered (it is passed by for those)."""

    ws: web.WebSocketResponse
    skip: set[str] = field(default_factory=set)

    def had(self, activity_id: str) -> bool:
        if activity_id in self.skip:
            self.skip.discard(activity_id)
            return True
        return False


class Streams:
    """The open streams of one Direct Line channel, by conversation, and what they read of
    the transcript."""

    def __init__(self, channel: str, host: ChannelHost, keepalive_s: float) -> None:
        self._channel = channel
        self._host = host
        self._keepalive_s = keepalive_s
        self._open: dict[str, list[_Stream]] = {}

    def any_open(self, conversation: str) -> bool:
        return bool(self._open.get(conversation))

    async def entries(self, conversation: str) -> list[TranscriptEntry]:
        """The transcript of the conversation's newest session (none yet: empty)."""
        store = self._host.store
        session = await store.by_channel(self._channel, conversation)
        return await store.transcript(session.id) if session is not None else []

    async def line(
        self, conversation: str, match: Callable[[TranscriptEntry], bool]
    ) -> TranscriptEntry | None:
        """The newest transcript line that ``match``es, looked for among the latest first
        (it was just written)."""
        store = self._host.store
        session = await store.by_channel(self._channel, conversation)
        if session is None:
            return None
        for last in (32, None):
            for entry in reversed(await store.transcript(session.id, last=last)):
                if match(entry):
                    return entry
        return None

    async def deliver(self, conversation: str, activity: Activity) -> None:
        """What midtier sends: to the open streams whose history did not hold it; a message
        with its transcript ``seq`` as the watermark."""
        sent = activity.id or ""
        wanted = [s for s in self._open.get(conversation, ()) if not s.had(sent)]
        if not wanted:
            return
        mark = None
        if activity.type == ActivityTypes.MESSAGE:
            found = await self.line(conversation, lambda e: e.activity.get("id") == sent)
            mark = found.seq if found is not None else None
        frame = activity_set([client_activity(activity.to_wire())], mark)
        await self._push(conversation, frame, wanted)

    async def echo(self, conversation: str, line: TranscriptEntry) -> None:
        """A user's message just recorded, to every open stream, with the client's id for
        it (the caller paused deliveries: no stream is reading the transcript meanwhile)."""
        streams = list(self._open.get(conversation, ()))
        await self._push(conversation, activity_set([entry_activity(line)], line.seq), streams)

    async def _push(self, conversation: str, frame: dict[str, Any], to: list[_Stream]) -> None:
        for stream in to:
            try:
                await stream.ws.send_json(frame)
            except (ConnectionResetError, RuntimeError):
                self._leave(conversation, stream)

    async def serve(
        self, request: web.Request, conversation: str, after: int
    ) -> web.StreamResponse:
        """The stream of an authorized request, from watermark ``after`` on."""
        ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=4096)
        if not ws.can_prepare(request).ok:
            raise MalformedPayload("the stream URL takes a WebSocket")
        await ws.prepare(request)
        stream = _Stream(ws)
        keepalive = asyncio.create_task(self._keepalive(ws), name="directline-keepalive")
        try:
            async with self._host.outbox.paused(self._channel, conversation):
                await self._catch_up(stream, conversation, after)
            async for msg in ws:  # clients send nothing here; reading sees the close
                if ended(msg):
                    break
        except (ConnectionResetError, RuntimeError):
            pass  # the client went away while it was being caught up
        finally:
            keepalive.cancel()
            self._leave(conversation, stream)
        return ws

    async def _catch_up(self, stream: _Stream, conversation: str, after: int) -> None:
        store = self._host.store
        pending = {e.id for e in await store.outbox_pending(self._channel, conversation)}
        entries = await self.entries(conversation)
        activities, mark = history(entries, after)
        while activities:
            await stream.ws.send_json(activity_set(activities, mark))
            stream.skip.update(a["id"] for a in activities if a.get("id") in pending)
            activities, mark = history(entries, mark)
        streams = self._open.setdefault(conversation, [])
        streams.append(stream)
        if len(streams) > MAX_STREAMS:
            oldest = streams.pop(0)
            await oldest.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"collision")

    async def _keepalive(self, ws: web.WebSocketResponse) -> None:
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            while not ws.closed:
                await asyncio.sleep(self._keepalive_s)
                await ws.send_str("")

    def _leave(self, conversation: str, stream: _Stream) -> None:
        streams = self._open.get(conversation)
        if streams is not None and stream in streams:
            streams.remove(stream)
            if not streams:
                del self._open[conversation]

    async def shutdown(self) -> None:
        """Close every stream (clients reconnect by themselves)."""
        for streams in list(self._open.values()):
            for stream in list(streams):
                await stream.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")

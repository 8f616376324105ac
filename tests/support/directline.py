"""A Direct Line 3.0 client for tests, doing what Web Chat's DirectLineJS does over real HTTP
and a real WebSocket, and midtier (the default deployment) with a Direct Line channel.

Every activity a client reads is also read by botbuilder-schema's own ``Activity`` model,
so what midtier sends is checked against the Bot Framework's idea of an activity.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import jwt
from botbuilder.schema import Activity as BotFrameworkActivity

from support.channel_world import channel_config, environment
from support.server import AGENT_TOKEN, REPO, Running, serve

SECRET = "dl-test-secret-0123456789abcdefghijklmnop"
OTHER_SECRET = "dl-other-secret-abcdefghijklmnop0123456789"
ENV = {
    "MIDTIER_DIRECTLINE_SECRET": SECRET,
    "MIDTIER_DIRECTLINE_OLD_SECRET": OTHER_SECRET,
    "MIDTIER_AGENT_TOKEN": AGENT_TOKEN,
}
PAYLOADS = REPO / "tests" / "payloads" / "directline"


def payload(name: str) -> dict[str, Any]:
    """A documented (or captured) Direct Line payload from ``tests/payloads/directline``."""
    data: dict[str, Any] = json.loads((PAYLOADS / name).read_text())
    return data


def settings(**extra: Any) -> dict[str, Any]:
    """The ``channels.directline`` block: the secret from the environment."""
    return {"kind": "directline", "secret": "${MIDTIER_DIRECTLINE_SECRET}", **extra}


@asynccontextmanager
async def directline_midtier(
    tmp_path: Path, midtier: dict[str, Any] | None = None, **extra: Any
) -> AsyncIterator[Running]:
    """midtier, the default deployment plus a Direct Line channel named ``directline``
    (``extra``: its settings; ``midtier``: midtier.yaml keys changed)."""
    with environment(ENV):
        config = channel_config(tmp_path, "directline", settings(**extra), midtier)
        async with serve(config, data_dir=tmp_path / "data") as run:
            yield run


def claims_of(token: str) -> dict[str, Any]:
    """What a client (Web Chat) reads of a token without the key."""
    read: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return read


def checked(activity: dict[str, Any]) -> dict[str, Any]:
    """``activity``, once botbuilder-schema read it as a Bot Framework activity."""
    read = BotFrameworkActivity().deserialize(activity)
    assert read.type and read.id and read.timestamp is not None, activity
    assert read.conversation is not None and read.conversation.id, activity
    assert read.from_property is not None and read.from_property.id, activity
    return activity


class Stream:
    """One stream's frames, kept in order; waits for the activity a test expects."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any] | None] = []  # None: a keep-alive (empty) frame
        self.activities: list[dict[str, Any]] = []
        self.watermark: str | None = None
        self._taken = 0

    async def _read(self) -> None:
        msg = await self.ws.receive()
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise AssertionError(f"the stream ended: {msg.type} {msg.data!r} {msg.extra!r}")
        if not msg.data:
            self.frames.append(None)
            return
        frame = json.loads(msg.data)
        self.frames.append(frame)
        self.activities += [checked(a) for a in frame["activities"]]
        if frame.get("watermark"):
            self.watermark = frame["watermark"]

    async def expect(
        self, where: Callable[[dict[str, Any]], bool], within: float = 15.0
    ) -> dict[str, Any]:
        """The next activity not yet taken matching ``where`` (others are passed over)."""
        async with asyncio.timeout(within):
            while True:
                for i in range(self._taken, len(self.activities)):
                    if where(self.activities[i]):
                        self._taken = i + 1
                        return self.activities[i]
                await self._read()

    async def keepalive(self, within: float = 10.0) -> None:
        """Wait for an empty frame."""
        async with asyncio.timeout(within):
            while None not in self.frames:
                await self._read()

    async def closed(self, within: float = 10.0) -> aiohttp.WSMessage:
        """Wait for the server to close the stream; the close message."""
        async with asyncio.timeout(within):
            while True:
                msg = await self.ws.receive()
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                    return msg


def bot_said(text: Callable[[str], bool]) -> Callable[[dict[str, Any]], bool]:
    """A message from a bot, an agent or midtier whose text matches."""
    return lambda a: (
        a["type"] == "message" and a["from"].get("role") != "user" and text(a.get("text", ""))
    )


class DirectLine:
    """A Direct Line client: one conversation, over the REST API and its stream."""

    def __init__(self, http: aiohttp.ClientSession, run: Running) -> None:
        self.http = http
        self.base = f"{run.base}/v3/directline"
        self.token: str | None = None
        self.conversation: str | None = None
        self.stream_url: str | None = None
        self._ids = itertools.count(1)

    def auth(self, credential: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {credential or self.token}"}

    async def call(
        self, method: str, path: str, credential: str | None = None, **kwargs: Any
    ) -> tuple[int, Any]:
        """One request; (status, the JSON body, or the text of one that is not JSON)."""
        headers = {**self.auth(credential), **kwargs.pop("headers", {})}
        async with self.http.request(method, self.base + path, headers=headers, **kwargs) as r:
            if r.content_type == "application/json":
                return r.status, await r.json()
            return r.status, await r.text()

    async def generate(self, user: str | None = None) -> dict[str, Any]:
        """``tokens/generate`` with the secret, as a token server does."""
        body = {"user": {"id": user}} if user else None
        status, answer = await self.call("POST", "/tokens/generate", SECRET, json=body)
        assert status == 200, (status, answer)
        self.token, self.conversation = answer["token"], answer["conversationId"]
        return dict(answer)

    async def start(self, credential: str | None = None) -> dict[str, Any]:
        """``POST conversations`` with a token (or the secret); keeps the stream URL."""
        status, answer = await self.call("POST", "/conversations", credential)
        assert status in (200, 201), (status, answer)
        self.token, self.conversation = answer["token"], answer["conversationId"]
        self.stream_url = answer["streamUrl"]
        return dict(answer)

    async def reconnect(self, watermark: str | None) -> str:
        """``GET conversations/{id}?watermark=``: a new stream URL."""
        query = f"?watermark={watermark}" if watermark else ""
        status, answer = await self.call("GET", f"/conversations/{self.conversation}{query}")
        assert status == 200, (status, answer)
        url: str = answer["streamUrl"]
        return url

    @asynccontextmanager
    async def stream(self, url: str | None = None) -> AsyncIterator[Stream]:
        async with self.http.ws_connect(url or self.stream_url or "") as ws:
            yield Stream(ws)

    async def post(self, activity: dict[str, Any]) -> tuple[int, Any]:
        path = f"/conversations/{self.conversation}/activities"
        return await self.call("POST", path, json=activity)

    async def say(self, text: str, user: str = "r_tester") -> str:
        """Post a message as Web Chat does (with a clientActivityID); its id."""
        client_id = f"c{next(self._ids)}"
        status, answer = await self.post(
            {
                "type": "message",
                "from": {"id": user, "role": "user"},
                "text": text,
                "channelData": {"clientActivityID": client_id},
            }
        )
        assert status == 200, (status, answer)
        return str(answer["id"])

    async def poll(self, watermark: str | None = None) -> dict[str, Any]:
        query = f"?watermark={watermark}" if watermark is not None else ""
        path = f"/conversations/{self.conversation}/activities{query}"
        status, answer = await self.call("GET", path)
        assert status == 200, (status, answer)
        for activity in answer["activities"]:
            checked(activity)
        return dict(answer)

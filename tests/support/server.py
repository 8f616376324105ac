"""A real midtier server on 127.0.0.1 for integration tests, and WebSocket clients for it."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from connector.app import ENGINE, create_app
from connector.config import load_config
from connector.engine import Engine

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = REPO / "bot_configs"
AGENT_TOKEN = "test-agent-token-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Running:
    base: str
    app: web.Application

    @property
    def engine(self) -> Engine:
        return self.app[ENGINE]

    @property
    def ws_base(self) -> str:
        return self.base.replace("http://", "ws://")


@asynccontextmanager
async def serve(
    config_dir: Path = DEFAULT_CONFIG, data_dir: Path | None = None
) -> AsyncIterator[Running]:
    """Run midtier with ``config_dir`` until the block ends."""
    assert data_dir is not None
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = create_app(load_config(config_dir), data_dir, public_url=base)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield Running(base=base, app=app)
    finally:
        await runner.cleanup()


class Frames:
    """A WebSocket client that keeps every frame and waits for the one a test expects."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.seen: list[dict[str, Any]] = []
        self._taken: set[int] = set()

    async def send(self, **frame: Any) -> None:
        await self.ws.send_str(json.dumps(frame))

    async def expect(
        self,
        kind: str,
        where: Callable[[dict[str, Any]], bool] = lambda f: True,
        within: float = 10,
    ) -> dict[str, Any]:
        """The oldest frame not yet taken of this type matching ``where``; waits for it."""
        async with asyncio.timeout(within):
            checked = 0
            while True:
                for i in range(checked, len(self.seen)):
                    frame = self.seen[i]
                    if i not in self._taken and frame.get("type") == kind and where(frame):
                        self._taken.add(i)
                        return frame
                checked = len(self.seen)
                msg = await self.ws.receive()
                if msg.type != aiohttp.WSMsgType.TEXT:
                    raise AssertionError(f"socket ended while waiting for {kind}: {msg.type}")
                self.seen.append(json.loads(msg.data))

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [f for f in self.seen if f.get("type") == kind]


@asynccontextmanager
async def chat(
    run: Running, resume: str | None = None
) -> AsyncIterator[tuple[Frames, dict[str, Any]]]:
    """A web chat client that said hello (resuming with ``resume``, a welcome's resume
    token); yields it and the welcome frame."""
    async with aiohttp.ClientSession() as http, http.ws_connect(f"{run.ws_base}/webchat/ws") as ws:
        client = Frames(ws)
        await client.send(type="hello", resume=resume, user=None)
        welcome = await client.expect("welcome")
        yield client, welcome


@asynccontextmanager
async def agent(
    run: Running, name: str = "Dana", token: str = AGENT_TOKEN
) -> AsyncIterator[Frames]:
    """An agent desk client that signed in."""
    async with aiohttp.ClientSession() as http, http.ws_connect(f"{run.ws_base}/agent/ws") as ws:
        client = Frames(ws)
        await client.send(type="auth", token=token, agent={"name": name})
        await client.expect("ready")
        yield client


class Chatter:
    """Sends numbered messages for one web chat client."""

    def __init__(self, client: Frames) -> None:
        self.client = client
        self.n = 0

    async def say(self, text: str) -> dict[str, Any]:
        """Send ``text`` and wait for its ack."""
        self.n += 1
        msg_id = f"m{self.n}"
        await self.client.send(type="message", id=msg_id, text=text)
        return await self.client.expect("ack", lambda f: f["id"] == msg_id)

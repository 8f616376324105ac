"""A fake remote service for the webhook provider: a real aiohttp server on 127.0.0.1.

It checks midtier's signature on every request with ``adapters.botside.signing.verify``,
records what it got, answers through a replaceable ``answer`` coroutine, and signs the
callbacks it sends back to midtier with the same helper.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from adapters.botside.signing import SignatureError, sign, verify

SECRET = "webhook-secret-0123456789abcdef"


@dataclass
class Received:
    """One request midtier made to the service."""

    path: str
    headers: dict[str, str]
    body: bytes
    envelope: dict[str, Any]
    verified: bool


Answer = Callable[[dict[str, Any]], Awaitable[web.Response]]


async def echo(envelope: dict[str, Any]) -> web.Response:
    """The default answer: a greeting on open, ``echo: <text>`` to messages, nothing else."""
    if envelope["type"] == "open":
        return reply("hello from the service")
    if envelope["type"] == "message":
        return reply(f"echo: {envelope['activity'].get('text')}")
    return web.Response(status=204)


def reply(*texts: str) -> web.Response:
    return web.json_response({"activities": [{"type": "message", "text": t} for t in texts]})


@dataclass
class FakeService:
    base: str
    secret: str = SECRET
    got: list[Received] = field(default_factory=list)
    answer: Answer = echo
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)
    release: asyncio.Event = field(default_factory=asyncio.Event)  # frees hung handlers

    @property
    def url(self) -> str:
        return f"{self.base}/hook"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            verify(self.secret, body, request.headers)
            verified = True
        except SignatureError:
            verified = False
        entry = Received(request.path, dict(request.headers), body, {}, verified)
        if body:
            entry.envelope = json.loads(body)
        async with self.arrived:
            self.got.append(entry)
            self.arrived.notify_all()
        if not verified:
            return web.Response(status=401)
        if request.method == "GET":
            return web.Response(status=204)
        return await self.answer(entry.envelope)

    async def wait_for(self, where: Callable[[Received], bool], within: float = 10) -> Received:
        """The first received request matching ``where``; waits for it."""
        async with asyncio.timeout(within), self.arrived:
            while True:
                for entry in self.got:
                    if where(entry):
                        return entry
                await self.arrived.wait()

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [r.envelope for r in self.got if r.envelope.get("type") == kind]

    async def hang(self, envelope: dict[str, Any]) -> web.Response:
        """An answer that never comes (until the test ends)."""
        await self.release.wait()
        return web.Response(status=204)


async def call_back(
    url: str,
    payload: dict[str, Any] | bytes,
    *,
    secret: str = SECRET,
    timestamp: int | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    """POST a signed callback to midtier; the status and JSON answer."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    sent = sign(secret, body, timestamp if timestamp is not None else int(time.time()))
    if headers is not None:
        sent = headers
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=body, headers={**sent, "Content-Type": "application/json"}) as r,
    ):
        return r.status, await r.json()


@asynccontextmanager
async def fake_service(port: int) -> AsyncIterator[FakeService]:
    """Run a FakeService on 127.0.0.1:``port`` (POST /hook, GET /health)."""
    service = FakeService(base=f"http://127.0.0.1:{port}")
    app = web.Application()
    app.router.add_post("/hook", service.handle)
    app.router.add_get("/health", service.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield service
    finally:
        service.release.set()
        await runner.cleanup()

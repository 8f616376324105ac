"""A messaging platform's API as a real HTTP server on 127.0.0.1.

It records every call midtier makes (method, path, query, headers, raw body), answers each
route with a handler the test gives (shaped like the platform's documented responses), and
can be told to fail the next calls (429 with ``Retry-After``, 500, a body of the platform's
error shape) or to hang, so that the outbox's retries are exercised for real.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from support.server import free_port


@dataclass
class Call:
    """One request midtier made to the platform."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))


Answer = web.StreamResponse | dict[str, Any] | list[Any]
Handler = Callable[[Call], Answer | Awaitable[Answer]]


@dataclass
class _Failure:
    status: int
    body: Any
    headers: dict[str, str]
    hang_s: float = 0.0


@dataclass
class FakePlatform:
    """Routes by (method, path); an unknown route is a 404 in the platform's words."""

    base_url: str = ""
    calls: list[Call] = field(default_factory=list)
    _routes: dict[tuple[str, str], Handler] = field(default_factory=dict)
    _failures: list[_Failure] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def route(self, method: str, path: str, handler: Handler) -> None:
        """Answer ``method path`` with ``handler(call)`` (a dict or list becomes JSON)."""
        self._routes[(method.upper(), path)] = handler

    def fail_next(
        self,
        times: int = 1,
        *,
        status: int = 429,
        body: Any = None,
        headers: dict[str, str] | None = None,
        hang_s: float = 0.0,
    ) -> None:
        """The next ``times`` calls (any route) get ``status`` (after ``hang_s`` seconds)."""
        for _ in range(times):
            self._failures.append(_Failure(status, body, dict(headers or {}), hang_s))

    def to(self, path: str, method: str = "POST") -> list[Call]:
        """The calls made to one route, oldest first."""
        return [c for c in self.calls if c.path == path and c.method == method]

    async def wait_for(
        self, where: Callable[[Call], bool], *, within: float = 10.0, count: int = 1
    ) -> list[Call]:
        """Wait until ``count`` recorded calls match ``where``; return them."""
        async with asyncio.timeout(within):
            while True:
                found = [c for c in self.calls if where(c)]
                if len(found) >= count:
                    return found
                self._changed.clear()
                await self._changed.wait()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        call = Call(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=dict(request.headers),
            body=await request.read(),
        )
        self.calls.append(call)
        self._changed.set()
        if self._failures:
            failure = self._failures.pop(0)
            if failure.hang_s:
                await asyncio.sleep(failure.hang_s)
            body = failure.body if failure.body is not None else {"error": "failing on purpose"}
            return web.json_response(body, status=failure.status, headers=failure.headers)
        handler = self._routes.get((request.method, request.path))
        if handler is None:
            return web.json_response({"error": f"no route {request.path}"}, status=404)
        answer = handler(call)
        if asyncio.iscoroutine(answer) or isinstance(answer, Awaitable):
            answer = await answer
        if isinstance(answer, web.StreamResponse):
            return answer
        return web.json_response(answer)


@asynccontextmanager
async def fake_platform() -> AsyncIterator[FakePlatform]:
    """A fake platform API on 127.0.0.1 for the duration of the block."""
    platform = FakePlatform()
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", platform._handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    platform.base_url = f"http://127.0.0.1:{port}"
    try:
        yield platform
    finally:
        await runner.cleanup()

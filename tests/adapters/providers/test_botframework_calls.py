"""BotFrameworkProvider's POSTs to a bot (auth off), against a fake messaging endpoint on
127.0.0.1, alone and through the core's ProviderPool: the pool's deadline is the only one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from support.providers import build, pooled, shared_http
from support.server import free_port

from adapters.providers.botframework import FAILURES_UNHEALTHY, BotFrameworkProvider
from connector.activity import Activity
from connector.context import SharedHttp
from connector.errors import ProviderError, ProviderTimeout
from connector.provider_protocol import HandoffContext
from connector.sessions import Leg, MidTierSession


@dataclass
class FakeBot:
    """A bot's messaging endpoint: records each activity; answers ``status``, or, while
    ``hang`` is set, nothing until released."""

    endpoint: str
    got: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    hang: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.got.append(await request.json())
        if self.hang.is_set():
            await self.release.wait()
        return web.Response(status=self.status)


@pytest.fixture
async def bot() -> AsyncIterator[FakeBot]:
    port = free_port()
    fake = FakeBot(endpoint=f"http://127.0.0.1:{port}/api/messages")
    app = web.Application()
    app.router.add_post("/api/messages", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield fake
    finally:
        fake.release.set()
        await runner.cleanup()


@pytest.fixture
async def http() -> AsyncIterator[SharedHttp]:
    async with shared_http() as opened:
        yield opened


async def _started(http: SharedHttp, bot: FakeBot) -> tuple[BotFrameworkProvider, Leg]:
    """A started provider (``timeout_s`` 0.3) and a leg opened on it."""
    provider = build(
        BotFrameworkProvider,
        "billing",
        SimpleNamespace(),
        http=http,
        endpoint=bot.endpoint,
        timeout_s=0.3,
    )
    await provider.start()
    session = MidTierSession(user_id="u1", channel="webchat", channel_conversation_id="c1")
    leg = Leg(channel="webchat", channel_conversation_id="c1", provider="billing")
    context = HandoffContext(session_id=session.id, user_id="u1", channel="webchat", reason="t")
    leg.provider_conversation_id = await provider.open(session, leg, context)
    return provider, leg


def _message(text: str) -> Activity:
    return Activity(type="message", text=text)


async def test_a_bot_that_does_not_answer_is_cut_off_by_the_pool_at_its_deadline(
    bot: FakeBot, http: SharedHttp
) -> None:
    provider, leg = await _started(http, bot)
    bot.hang.set()
    with pytest.raises(ProviderTimeout, match=r"no answer to message within 0\.3s") as caught:
        await pooled(provider).deliver(leg, _message("hi"))
    assert caught.value.provider == "billing"
    assert [a["text"] for a in bot.got] == ["hi"]


async def test_the_provider_alone_sets_no_deadline_of_its_own(bot: FakeBot) -> None:
    """Neither ``timeout_s`` nor the shared client's default ends a POST: the pool does."""
    async with shared_http(total_s=0.1) as short:
        provider, leg = await _started(short, bot)
        bot.hang.set()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(2 * provider.config.timeout_s) as outer:
                await provider.deliver(leg, _message("hi"))
        assert outer.expired()  # ended by this deadline, not by anything the provider raised


async def test_posts_cut_off_by_the_pool_count_against_health_until_one_is_answered(
    bot: FakeBot, http: SharedHttp
) -> None:
    provider, leg = await _started(http, bot)
    pool = pooled(provider)
    bot.hang.set()
    for n in range(FAILURES_UNHEALTHY):
        assert await provider.health() is True, f"unhealthy after {n} failed POSTs"
        with pytest.raises(ProviderTimeout):
            await pool.deliver(leg, _message(f"try {n}"))
    assert await provider.health() is False
    bot.hang.clear()
    assert await pool.deliver(leg, _message("back")) == []
    assert await provider.health() is True


async def test_an_http_error_of_the_bot_is_a_provider_error_not_a_timeout(
    bot: FakeBot, http: SharedHttp
) -> None:
    provider, leg = await _started(http, bot)
    bot.status = 500
    with pytest.raises(ProviderError, match="the bot answered HTTP 500") as caught:
        await pooled(provider).deliver(leg, _message("hi"))
    assert not isinstance(caught.value, ProviderTimeout)

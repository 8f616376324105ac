"""Telegram end to end: a real midtier with the default deployment and a ``telegram`` channel
against a fake Bot API on 127.0.0.1; webhooks are real HTTP requests carrying Telegram's
secret header, replies are what the fake Bot API accepted."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web
from support.channel_kits.telegram import TelegramKit, path
from support.channel_world import World, channel_config, channel_world, environment
from support.fake_platform import Call, FakePlatform, fake_platform
from support.journey import bot_agent_bot
from support.server import AGENT_TOKEN, Running, serve

GREETING = "Acme Pay help assistant"


async def test_a_telegram_user_goes_from_the_bot_to_an_agent_and_back(tmp_path: Path) -> None:
    kit = TelegramKit()
    async with channel_world(tmp_path, kit) as world:
        session = await bot_agent_bot(world.run, world.name, world.user("4242"))
    assert session.user_id == "4242" and session.channel_conversation_id == "4242"
    assert {reply.conversation for reply in kit.replies(world.platform)} == {"4242"}


async def test_a_pressed_button_is_answered_in_the_webhook_response_and_reaches_the_bot(
    tmp_path: Path,
) -> None:
    kit = TelegramKit()
    async with channel_world(tmp_path, kit) as world:
        press = kit.button("how do I reset my password", user="4343", update_id="77")
        status, body, _ = await world.post(press)
        assert status == 200
        assert json.loads(body) == {"method": "answerCallbackQuery", "callback_query_id": "cb-77"}
        await world.user("4343").expect(lambda t: "Forgot password" in t)
        [session] = await world.sessions()
        said = [e.text for e in await world.run.engine.store.transcript(session.id)]
        assert said[0] == "how do I reset my password"


async def _drained(run: Running) -> None:
    """Until nothing recorded is left to process or to deliver."""
    await run.engine.inbound.idle()
    ever = datetime.max.replace(tzinfo=UTC)
    async with asyncio.timeout(10):
        # No event marks an entry done: poll, within the deadline.
        while await run.engine.store.outbox_due(ever):  # noqa: ASYNC110
            await asyncio.sleep(0.05)


@asynccontextmanager
async def _deployment(tmp_path: Path, kit: TelegramKit) -> AsyncIterator[FakePlatform]:
    with environment({"MIDTIER_AGENT_TOKEN": AGENT_TOKEN, **kit.env}):
        async with fake_platform() as platform:
            kit.prepare(platform)
            channel_config(tmp_path, kit.kind, kit.settings(platform.base_url))
            yield platform


def _greetings(kit: TelegramKit, platform: FakePlatform) -> list[str]:
    return [r.text for r in kit.replies(platform) if GREETING in r.text]


async def test_a_reply_cut_off_by_a_stop_mid_delivery_goes_out_once_after_a_restart(
    tmp_path: Path,
) -> None:
    kit = TelegramKit()
    async with _deployment(tmp_path, kit) as platform:
        reached, release = asyncio.Event(), asyncio.Event()

        async def never_answered(_call: Call) -> web.StreamResponse:
            reached.set()
            await release.wait()  # the server is gone by then: nobody reads this
            return web.json_response({"ok": False, "error_code": 502}, status=502)

        platform.route("POST", path("sendMessage"), never_answered)
        async with serve(tmp_path / "config", data_dir=tmp_path / "data") as run:
            world = World(run, platform, kit, kit.kind)
            status, _, _ = await world.post(world.message("hi", user="4242"))
            assert status == 200
            async with asyncio.timeout(15):
                await reached.wait()  # the reply is on its way when the server stops
        release.set()
        assert _greetings(kit, platform) == []
        platform.route("POST", path("sendMessage"), kit.accept)
        async with serve(tmp_path / "config", data_dir=tmp_path / "data") as run:
            await World(run, platform, kit, kit.kind).user("4242").expect(lambda t: GREETING in t)
            await _drained(run)
        assert len(_greetings(kit, platform)) == 1


async def test_a_message_answered_right_before_a_stop_is_replied_to_once_after_a_restart(
    tmp_path: Path,
) -> None:
    kit = TelegramKit()
    async with _deployment(tmp_path, kit) as platform:
        async with serve(tmp_path / "config", data_dir=tmp_path / "data") as run:
            world = World(run, platform, kit, kit.kind)
            status, _, _ = await world.post(world.message("hi", user="4242"))
            assert status == 200  # recorded: the stop may catch it anywhere after this
        async with serve(tmp_path / "config", data_dir=tmp_path / "data") as run:
            await World(run, platform, kit, kit.kind).user("4242").expect(lambda t: GREETING in t)
            await _drained(run)
            [session] = await run.engine.store.list_sessions()
            said = [e.text for e in await run.engine.store.transcript(session.id)]
        assert said.count("hi") == 1
        assert len(_greetings(kit, platform)) == 1

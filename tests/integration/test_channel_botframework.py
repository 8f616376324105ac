"""The Bot Framework channel end to end: a real midtier (the default deployment) as the
messaging endpoint of a bot on a fake Azure, a Teams user going from the bot to an agent and
back, replies that survive a server stopped mid-way, and ``path_alias``."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from support.channel_kits import WebhookCall
from support.channel_kits.botframework import APP_ID, REGION, BotFrameworkKit
from support.channel_world import channel_config, channel_world, environment
from support.fake_platform import Call, FakePlatform, fake_platform
from support.journey import bot_agent_bot
from support.server import AGENT_TOKEN, Running, serve

from connector.app import create_app
from connector.config import load_config
from connector.errors import ConfigErrors

NAME = "botframework"


async def _post(url: str, call: WebhookCall, method: str = "POST") -> tuple[int, bytes]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, url, data=call.body, headers=call.headers) as response,
    ):
        return response.status, await response.read()


def _greetings(kit: BotFrameworkKit, platform: FakePlatform) -> list[str]:
    return [r.text for r in kit.replies(platform) if "help assistant" in r.text]


async def _drained(run: Running) -> None:
    """Everything recorded is processed and every reply marked delivered (with a deadline)."""
    await run.engine.inbound.idle()
    async with asyncio.timeout(15):
        while True:
            if not await run.engine.store.outbox_due(datetime.max.replace(tzinfo=UTC)):
                return
            await asyncio.sleep(0.02)


async def test_a_teams_user_goes_from_the_bot_to_an_agent_and_back(tmp_path: Path) -> None:
    kit = BotFrameworkKit()
    async with channel_world(tmp_path, kit) as world:
        session = await bot_agent_bot(world.run, world.name, world.user("megan"))
        assert session.channel_conversation_id == "msteams:a:megan"
        address = session.channel_state["address"]
        assert address["serviceUrl"] == kit.service_url and address["channelId"] == "msteams"
        assert address["replyToId"] == "mid-4"  # the newest message answered
        # Every reply went to the Connector with midtier's token, from the bot, to the user.
        replies = [c.json for c in kit.delivered if c.json["type"] == "message"]
        assert replies and all(r["from"]["id"] == f"28:{APP_ID}" for r in replies)
        assert all(r["recipient"] == {"id": "29:megan"} for r in replies)
        assert len(kit.token_requests) == 1


def _holding(kit: BotFrameworkKit, release: asyncio.Event, held: list[Call]) -> Any:
    """A Connector that takes the first message and answers it only once released (503)."""

    async def connector(call: Call) -> web.StreamResponse | dict[str, Any]:
        if call.json.get("type") == "message" and not held:
            held.append(call)
            await release.wait()
            return web.json_response({"error": {"code": "ServiceError"}}, status=503)
        return kit.connector(call)

    return connector


async def test_a_reply_goes_out_once_when_the_server_stops_while_sending_it(
    tmp_path: Path,
) -> None:
    kit = BotFrameworkKit()
    with environment({"MIDTIER_AGENT_TOKEN": AGENT_TOKEN, **kit.env}):
        async with fake_platform() as platform:
            kit.prepare(platform)
            config = channel_config(tmp_path, NAME, kit.settings(platform.base_url))
            call = kit.message("", "hi", user="megan", message_id="mid-1")
            release, held = asyncio.Event(), list[Call]()
            path = f"{REGION}v3/conversations/a:megan/activities/mid-1"
            platform.route("POST", path, _holding(kit, release, held))
            async with serve(config, data_dir=tmp_path / "data") as run:
                assert (await _post(f"{run.base}/channels/{NAME}", call))[0] == 201
                await platform.wait_for(lambda c: bool(held))
            release.set()  # the stopped server's request is answered, to nobody
            assert _greetings(kit, platform) == []
            async with serve(config, data_dir=tmp_path / "data") as run:
                await _drained(run)
                assert len(_greetings(kit, platform)) == 1
                # the platform's retry of the webhook, after the restart, is not a new message
                assert (await _post(f"{run.base}/channels/{NAME}", call))[0] == 201
                await _drained(run)
            assert len(_greetings(kit, platform)) == 1


async def test_a_reply_goes_out_once_when_the_server_stops_right_after_the_201(
    tmp_path: Path,
) -> None:
    kit = BotFrameworkKit()
    with environment({"MIDTIER_AGENT_TOKEN": AGENT_TOKEN, **kit.env}):
        async with fake_platform() as platform:
            kit.prepare(platform)
            config = channel_config(tmp_path, NAME, kit.settings(platform.base_url))
            call = kit.message("", "hi", user="megan", message_id="mid-1")
            async with serve(config, data_dir=tmp_path / "data") as run:
                assert (await _post(f"{run.base}/channels/{NAME}", call))[0] == 201
            # Stopped wherever the processing had got to: it is finished after the restart.
            async with serve(config, data_dir=tmp_path / "data") as run:
                await _drained(run)
                [session] = await run.engine.store.list_sessions()
                said = [e.text for e in await run.engine.store.transcript(session.id)]
            assert said.count("hi") == 1
            assert len(_greetings(kit, platform)) == 1


async def test_the_path_alias_answers_as_the_channel_route_does(tmp_path: Path) -> None:
    kit = BotFrameworkKit()
    with environment({"MIDTIER_AGENT_TOKEN": AGENT_TOKEN, **kit.env}):
        async with fake_platform() as platform:
            kit.prepare(platform)
            block = {**kit.settings(platform.base_url), "path_alias": "/api/messages"}
            config = channel_config(tmp_path, NAME, block)
            async with serve(config, data_dir=tmp_path / "data") as run:
                alias = f"{run.base}/api/messages"
                call = kit.message("", "hi", user="megan", message_id="mid-1")
                assert await _post(alias, call) == (201, b"")
                assert (await _post(alias, kit.forged(call)))[0] == 401
                assert (await _post(alias, call, method="PUT"))[0] == 405
                await _drained(run)
                [session] = await run.engine.store.list_sessions()
                assert session.channel == NAME
            assert len(_greetings(kit, platform)) == 1


def test_two_channels_on_one_alias_are_a_config_error_naming_the_channel(tmp_path: Path) -> None:
    kit = BotFrameworkKit()
    block = {**kit.settings("http://127.0.0.1:9"), "path_alias": "/api/messages"}
    channel_config(tmp_path, "teams", block)
    config = channel_config(tmp_path, "teams2", block)
    with environment(kit.env), pytest.raises(ConfigErrors) as caught:
        create_app(load_config(config), tmp_path / "data")
    [problem] = caught.value.errors
    assert (problem.file, problem.key) == ("midtier.yaml", "channels.teams2")
    assert "clash" in problem.message


async def test_a_serviceurl_its_token_was_not_issued_for_is_refused_and_never_stored(
    tmp_path: Path,
) -> None:
    kit = BotFrameworkKit()
    async with channel_world(tmp_path, kit) as world:
        data = kit.activity(id="mid-1", text="hi")
        data["serviceUrl"] = "https://attacker.example.com/"
        call = kit.signed(data, token=kit.token())  # a real token, for the real serviceUrl
        status, body, _ = await world.post(call)
        assert status == 401, body
        assert await world.sessions() == []
        assert not [c for c in world.platform.calls if "/v3/conversations/" in c.path]

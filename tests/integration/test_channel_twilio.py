"""The Twilio channel end to end: a real midtier with the default deployment, webhooks signed
by twilio-python, replies read from a fake Messages API; and a server stopped while a reply
is still owed, started again on the same data directory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from aiohttp import web
from support.channel_kits import WebhookCall
from support.channel_kits.twilio import MESSAGES, TwilioKit, payload, sign, sms
from support.channel_world import channel_config, channel_world, environment
from support.fake_platform import Call, FakePlatform, fake_platform
from support.journey import bot_agent_bot
from support.server import AGENT_TOKEN, Running, serve

USER = "+14155550100"


async def test_an_sms_user_goes_from_the_bot_to_an_agent_and_back(tmp_path: Path) -> None:
    async with channel_world(tmp_path, TwilioKit()) as world:
        session = await bot_agent_bot(world.run, "twilio", world.user(USER))
    assert session.user_id == USER
    assert session.channel_conversation_id == f"+14155552671:{USER}"


async def test_a_signed_form_midtier_cannot_take_is_a_400_with_twiml_only_for_messages(
    tmp_path: Path,
) -> None:
    async with channel_world(tmp_path, TwilioKit()) as world:
        broken = sign(world.url, {**sms("hi", user=USER, message_id="SM1"), "NumMedia": "x"})
        status, body, _ = await world.post(broken)
        assert status == 400 and b"NumMedia" in body
        status, body, headers = await world.post(sign(world.url, payload("status_delivered.json")))
        assert status == 200 and headers["Content-Type"].startswith("text/xml")
        assert body == b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
        assert await world.sessions() == []


# ---------------------------------------------------------------------- durability


def _down(call: Call) -> web.Response:
    """Twilio's answer while it is failing."""
    return web.json_response(payload("errors/20500.json"), status=500)


@asynccontextmanager
async def _midtier(
    tmp_path: Path, platform: FakePlatform, kit: TwilioKit
) -> AsyncIterator[Running]:
    config = channel_config(tmp_path, "twilio", kit.settings(platform.base_url))
    async with serve(config, data_dir=tmp_path / "data") as run:
        yield run


async def _post(run: Running, call: WebhookCall) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{run.base}/channels/twilio", data=call.body, headers=call.headers) as response,
    ):
        return response.status


def _webhook(run: Running, kit: TwilioKit) -> WebhookCall:
    return kit.message(f"{run.base}/channels/twilio", "hi", user=USER, message_id="SMdurable")


async def _answered_once(run: Running, kit: TwilioKit, platform: FakePlatform) -> None:
    """The bot's greeting reached the user exactly once, for the one message "hi"."""
    await platform.wait_for(
        lambda _: any("help assistant" in r.text for r in kit.replies(platform)), within=20
    )
    await run.engine.inbound.idle()
    [session] = await run.engine.store.list_sessions()
    # The fake has the reply before midtier has read its answer: flush waits for that send.
    await run.engine.outbox.flush("twilio", session.channel_conversation_id)
    assert await run.engine.store.outbox_due(datetime.max.replace(tzinfo=UTC)) == []
    greetings = [r for r in kit.replies(platform) if "help assistant" in r.text]
    assert len(greetings) == 1 and greetings[0].conversation == USER
    said = [e.text for e in await run.engine.store.transcript(session.id) if e.speaker == "user"]
    assert said == ["hi"]


async def test_a_server_stopped_right_after_the_200_still_replies_once(tmp_path: Path) -> None:
    kit = TwilioKit()
    with environment({"MIDTIER_AGENT_TOKEN": AGENT_TOKEN, **kit.env}):
        async with fake_platform() as platform:
            platform.route("POST", MESSAGES, _down)  # nothing can leave before the stop
            async with _midtier(tmp_path, platform, kit) as run:
                assert await _post(run, _webhook(run, kit)) == 200
            kit.prepare(platform)
            async with _midtier(tmp_path, platform, kit) as run:
                # Twilio retries a webhook it got no answer for: it is recorded once.
                assert await _post(run, _webhook(run, kit)) == 200
                await _answered_once(run, kit, platform)


async def test_a_reply_owed_when_the_server_stops_goes_out_once_after_a_restart(
    tmp_path: Path,
) -> None:
    kit = TwilioKit()
    with environment({"MIDTIER_AGENT_TOKEN": AGENT_TOKEN, **kit.env}):
        async with fake_platform() as platform:
            platform.route("POST", MESSAGES, _down)
            async with _midtier(tmp_path, platform, kit) as run:
                assert await _post(run, _webhook(run, kit)) == 200
                await platform.wait_for(lambda c: c.path == MESSAGES)  # processed, reply owed
                await run.engine.inbound.idle()
            assert kit.replies(platform) == []
            kit.prepare(platform)
            async with _midtier(tmp_path, platform, kit) as run:
                await _answered_once(run, kit, platform)

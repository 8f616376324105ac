"""Slack end to end: a real midtier (the default deployment plus a ``slack`` channel) and a
fake Slack Web API on 127.0.0.1; webhooks signed with slack_sdk, replies read from what
midtier posted to ``chat.postMessage``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

from support.channel_kits import WebhookCall
from support.channel_kits.slack import SlackKit, envelope, payload, sign
from support.channel_world import World, channel_config, channel_world, environment
from support.fake_platform import FakePlatform, fake_platform
from support.journey import bot_agent_bot
from support.server import AGENT_TOKEN, serve

WELCOME = "Acme Pay help assistant"


async def test_a_slack_user_goes_from_the_bot_to_an_agent_and_back(tmp_path: Path) -> None:
    async with channel_world(tmp_path, SlackKit()) as world:
        session = await bot_agent_bot(world.run, "slack", world.user("U0ALICE"))
    assert session.channel_conversation_id == "T0MIDTIER:DU0ALICE"


async def _user_lines(world: World) -> list[str | None]:
    lines: list[str | None] = []
    for session in await world.sessions():
        transcript = await world.run.engine.store.transcript(session.id)
        lines += [e.text for e in transcript if e.speaker == "user"]
    return lines


async def _delivered(world: World) -> None:
    """Until everything recorded was processed and the outbox has nothing left to send."""
    await world.run.engine.inbound.idle()
    async with asyncio.timeout(15):
        while True:
            if not await world.run.engine.store.outbox_due(datetime.max.replace(tzinfo=UTC)):
                break
            await asyncio.sleep(0.02)  # polling the store under the deadline: nothing to await


async def test_the_request_url_is_verified_with_a_signed_challenge(tmp_path: Path) -> None:
    async with channel_world(tmp_path, SlackKit()) as world:
        body = json.dumps(payload("url_verification")).encode()
        status, answer, headers = await world.post(WebhookCall(body, sign(body)))
        assert status == 200 and headers["Content-Type"].startswith("text/plain")
        assert answer == b"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
        forged = world.kit.forged(WebhookCall(body, sign(body)))
        assert (await world.post(forged))[0] == 401


async def test_slacks_retries_get_a_plain_200_and_reach_the_bot_once(tmp_path: Path) -> None:
    async with channel_world(tmp_path, SlackKit()) as world:
        first = world.message("hi", user="U0RETRY")
        status, answer, _ = await world.post(first)
        assert (status, answer) == (200, b"")
        for number, reason in ((1, "http_timeout"), (2, "http_error")):
            retry = {**sign(first.body), "X-Slack-Retry-Num": str(number)}
            retry["X-Slack-Retry-Reason"] = reason
            status, answer, _ = await world.post(WebhookCall(first.body, retry))
            assert (status, answer) == (200, b"")
        await world.user("U0RETRY").expect(lambda t: WELCOME in t)
        await _delivered(world)
        assert await _user_lines(world) == ["hi"]
        assert len([r for r in world.kit.replies(world.platform) if WELCOME in r.text]) == 1


async def test_a_mention_delivered_as_two_events_is_answered_once(tmp_path: Path) -> None:
    kit = SlackKit()
    async with channel_world(tmp_path, kit) as world:
        ts = kit.ts()
        text, channel = "<@U0MIDBOT> hi", "C0SUPPORT"
        common = {"user": "U0CAROL", "text": text, "ts": ts, "channel": channel, "event_ts": ts}
        events = [
            envelope({"type": "message", "channel_type": "channel", **common}, event_id="Ev1"),
            envelope({"type": "app_mention", **common}, event_id="Ev2"),
        ]
        for data in events:
            body = json.dumps(data).encode()
            status, _, _ = await world.post(WebhookCall(body, sign(body)))
            assert status == 200
        await world.user("U0CAROL").expect(lambda t: WELCOME in t)
        await _delivered(world)
        assert await _user_lines(world) == ["hi"]
        [answer] = [r for r in world.kit.replies(world.platform) if WELCOME in r.text]
        assert answer.conversation == channel


async def test_a_button_click_reaches_the_bot_as_the_buttons_value(tmp_path: Path) -> None:
    kit = SlackKit()
    async with channel_world(tmp_path, kit) as world:
        status, answer, _ = await world.post(kit.click("balance", user="U0DAN", channel="DU0DAN"))
        assert (status, answer) == (200, b"")
        await _delivered(world)
        assert await _user_lines(world) == ["balance"]
        [session] = await world.sessions()
        assert session.channel_conversation_id == "T0MIDTIER:DU0DAN"


async def test_a_signed_payload_of_the_wrong_shape_is_a_400_and_touches_nothing(
    tmp_path: Path,
) -> None:
    async with channel_world(tmp_path, SlackKit()) as world:
        good = payload("message_im")
        broken = [
            {**good, "event": {**good["event"], "user": 42}},
            {**good, "event": {**good["event"], "ts": "soon"}},
            {**good, "event": "hi"},
            {**good, "type": ["event_callback"]},
        ]
        for data in broken:
            body = json.dumps(data).encode()
            status, answer, _ = await world.post(WebhookCall(body, sign(body)))
            assert status == 400, answer
        assert await world.sessions() == []
        assert world.platform.calls == []


# ---------------------------------------------------------------------- durability


@asynccontextmanager
async def _deployment(tmp_path: Path) -> AsyncIterator[tuple[SlackKit, FakePlatform, Path]]:
    """One fake Slack and one config for two runs of midtier on the same data directory."""
    kit = SlackKit()
    with environment({"MIDTIER_AGENT_TOKEN": AGENT_TOKEN, **kit.env}):
        async with fake_platform() as platform:
            kit.prepare(platform)
            yield kit, platform, channel_config(tmp_path, "slack", kit.settings(platform.base_url))


async def _restarted_and_answered_once(tmp_path: Path, *, stop_while_posting: bool) -> None:
    data = tmp_path / "data"
    async with _deployment(tmp_path) as (kit, platform, config):
        async with serve(config, data_dir=data) as run:
            world = World(run, platform, kit, "slack")
            if stop_while_posting:
                # Slack holds the first post (and then refuses it): the server stops meanwhile.
                platform.fail_next(1, status=503, hang_s=3)
            status, _, _ = await world.post(world.message("hi", user="U0ERIN"))
            assert status == 200
            if stop_while_posting:
                await platform.wait_for(lambda c: c.path == "/chat.postMessage")
        # The first server is gone; the second one takes over its data directory.
        async with serve(config, data_dir=data) as run:
            world = World(run, platform, kit, "slack")
            await world.user("U0ERIN").expect(lambda t: WELCOME in t)
            await _delivered(world)
            assert await _user_lines(world) == ["hi"]
        assert len([r for r in kit.replies(platform) if WELCOME in r.text]) == 1


async def test_a_message_is_answered_once_when_the_server_stops_right_after_the_200(
    tmp_path: Path,
) -> None:
    await _restarted_and_answered_once(tmp_path, stop_while_posting=False)


async def test_a_reply_goes_out_once_when_the_server_stops_while_sending_it(
    tmp_path: Path,
) -> None:
    await _restarted_and_answered_once(tmp_path, stop_while_posting=True)

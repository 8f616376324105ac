"""A webhook channel's durability check: a message acknowledged to the platform, the server
stopped while it is being worked on, the server started again on the same data directory
and configuration; the reply must then go out exactly once.

"While it is being worked on" is made certain, not left to timing: the platform holds
midtier's first call (for these channels the typing indicator midtier shows before a bot's
turn) until the first server has stopped.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.channel_kits import ChannelKit, Reply
from support.channel_world import TYPING_AT_ONCE, World, channel_config, environment
from support.fake_platform import Call, FakePlatform, fake_platform
from support.server import AGENT_TOKEN, serve


@dataclass
class Restarted:
    """What the platform saw across both runs, and the second run's transcript."""

    platform: FakePlatform
    held: Call  # the call the first server was waiting on when it stopped
    replies: list[Reply]
    user_lines: list[str | None]


async def stop_while_working_then_restart(
    tmp_path: Path, kit: Any, send_path: str, *, user: str, text: str, expect: str
) -> Restarted:
    """Run the scenario for ``kit`` (whose ``answer(call)`` answers ``send_path``)."""
    channel_kit: ChannelKit = kit
    name = channel_kit.kind
    release = asyncio.Event()
    held: list[Call] = []

    async def platform_api(call: Call) -> Any:
        if not held:
            held.append(call)
            await release.wait()
        return kit.answer(call)

    with environment({"MIDTIER_AGENT_TOKEN": AGENT_TOKEN, **channel_kit.env}):
        async with fake_platform() as platform:
            platform.route("POST", send_path, platform_api)
            # The first call to the platform, the typing indicator, is where it stops.
            settings = channel_kit.settings(platform.base_url)
            config = channel_config(tmp_path, name, settings, TYPING_AT_ONCE)
            data = tmp_path / "data"
            async with serve(config, data_dir=data) as run:
                world = World(run, platform, channel_kit, name)
                message = world.message(text, user=user, message_id="mid-durable")
                status, body, _ = await world.post(message)
                assert status == 200, body
                await platform.wait_for(lambda call: call.path == send_path)
            release.set()  # the first server is gone: nothing it held can finish now
            async with serve(config, data_dir=data) as run:
                world = World(run, platform, channel_kit, name)
                await world.user(user).expect(lambda t: expect in t)
                # The platform, not having seen the first 200 in time, sends it again.
                status, body, _ = await world.post(message)
                assert status == 200, body
                await run.engine.inbound.idle()
                lines: list[str | None] = []
                for session in await world.sessions():
                    transcript = await run.engine.store.transcript(session.id)
                    lines += [e.text for e in transcript if e.speaker == "user"]
            return Restarted(platform, held[0], channel_kit.replies(platform), lines)

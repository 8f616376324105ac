"""A real midtier with one webhook channel pointed at a fake platform, and users who talk to
it through that platform: what the channel contract suite and each channel's end-to-end test
run against.

The deployment is the default one (``bot_configs/``) with the channel added to
``midtier.yaml``; webhooks are real HTTP requests to ``/channels/<name>``, replies are what
the fake platform recorded.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from connector.sessions import MidTierSession
from support.channel_kits import ChannelKit, Reply, WebhookCall
from support.fake_platform import FakePlatform, fake_platform
from support.server import AGENT_TOKEN, DEFAULT_CONFIG, Running, serve


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the block, then put back what was there."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def channel_config(
    tmp_path: Path, name: str, block: dict[str, Any], midtier: dict[str, Any] | None = None
) -> Path:
    """The default deployment with channel ``name`` added (and midtier.yaml keys changed)."""
    config = tmp_path / "config"
    if not config.exists():
        shutil.copytree(DEFAULT_CONFIG, config)
    settings = yaml.safe_load((config / "midtier.yaml").read_text())
    settings.setdefault("channels", {})[name] = block
    settings.update(midtier or {})
    (config / "midtier.yaml").write_text(yaml.safe_dump(settings))
    return config


@dataclass
class World:
    run: Running
    platform: FakePlatform
    kit: ChannelKit
    name: str
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def url(self) -> str:
        """The webhook URL the platform is configured with."""
        return f"{self.run.base}/channels/{self.name}"

    async def post(self, call: WebhookCall) -> tuple[int, bytes, dict[str, str]]:
        """Make a webhook request; (status, body, headers)."""
        async with (
            aiohttp.ClientSession() as http,
            http.request(
                call.method, self.url + call.query, data=call.body, headers=call.headers
            ) as response,
        ):
            return response.status, await response.read(), dict(response.headers)

    def message(
        self, text: str, *, user: str = "user-1", message_id: str | None = None
    ) -> WebhookCall:
        """A signed text message from ``user`` with a fresh (or the given) message id."""
        mid = message_id or f"mid-{next(self._ids)}"
        return self.kit.message(self.url, text, user=user, message_id=mid)

    def user(self, user: str = "user-1") -> ChannelUser:
        return ChannelUser(self, user)

    async def sessions(self) -> list[MidTierSession]:
        return [
            s
            for s in await self.run.engine.store.list_sessions(limit=1000)
            if s.channel == self.name
        ]


class ChannelUser:
    """One user of the channel: says things through webhooks, reads what midtier sent."""

    def __init__(self, world: World, user: str) -> None:
        self.world = world
        self.user = user
        self._read = 0  # replies already taken by expect()

    async def say(self, text: str) -> None:
        status, body, _ = await self.world.post(self.world.message(text, user=self.user))
        assert 200 <= status < 300, (status, body)

    async def expect(self, where: Callable[[str], bool], within: float = 15.0) -> Reply:
        """The next reply not yet taken whose text matches ``where``; earlier ones that do
        not match are skipped."""
        async with asyncio.timeout(within):
            while True:
                replies = self.world.kit.replies(self.world.platform)
                for i in range(self._read, len(replies)):
                    if where(replies[i].text):
                        self._read = i + 1
                        return replies[i]
                seen = len(self.world.platform.calls)
                await self.world.platform.wait_for(lambda _call: True, count=seen + 1)


@asynccontextmanager
async def channel_world(
    tmp_path: Path,
    kit: ChannelKit,
    *,
    name: str | None = None,
    midtier: dict[str, Any] | None = None,
) -> AsyncIterator[World]:
    """midtier (default deployment plus this channel) against a fake platform."""
    name = name or kit.kind
    with environment({"MIDTIER_AGENT_TOKEN": AGENT_TOKEN, **kit.env}):
        async with fake_platform() as platform:
            kit.prepare(platform)
            config = channel_config(tmp_path, name, kit.settings(platform.base_url), midtier)
            async with serve(config, data_dir=tmp_path / "data") as run:
                yield World(run, platform, kit, name)


# The default deployment's session settings with the typing indicator before every answer,
# however fast the bot.
TYPING_AT_ONCE = {
    "session": {
        **yaml.safe_load((DEFAULT_CONFIG / "midtier.yaml").read_text())["session"],
        "typing_after_s": 0,
    }
}

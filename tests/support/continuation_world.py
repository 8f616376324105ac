"""One midtier with the web chat and two phone channels, for the continuation tests.

The default deployment with two instances of the test-only app of
:mod:`support.phone_channel` (configured by dotted path): "sms" and "chatapp", each
answered through one fake platform; titles and a deep link for them under
``continuation.channels``.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from connector.sessions import MidTierSession
from support.channel_world import environment
from support.fake_platform import FakePlatform, fake_platform
from support.phone_channel import PhoneUser, answer_sends
from support.server import AGENT_TOKEN, DEFAULT_CONFIG, Chatter, Frames, Running
from support.server import serve as serve_config

KIND = "support.phone_channel:PhoneChannel"
SECRETS = {"sms": "sms-secret-0123456789", "chatapp": "chatapp-secret-0123456789"}
ENV = {
    "MIDTIER_AGENT_TOKEN": AGENT_TOKEN,
    "TEST_SMS_SECRET": SECRETS["sms"],
    "TEST_CHATAPP_SECRET": SECRETS["chatapp"],
}
PHONE = "+16505551234"
CODE = re.compile(r"\b([2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4})\b")
TOKEN = re.compile(r"/continue#([A-Za-z0-9_-]{40,})")


@dataclass
class Deployment:
    run: Running
    platform: FakePlatform
    data: Path

    def phone(self, channel: str, number: str = PHONE) -> PhoneUser:
        return PhoneUser(self.run.base, self.platform, channel, number, SECRETS[channel])

    async def session(self, session_id: str) -> MidTierSession:
        found = await self.run.engine.store.get(session_id)
        assert found is not None
        return found

    async def on(self, channel: str, conversation: str) -> MidTierSession:
        found = await self.run.engine.store.by_channel(channel, conversation)
        assert found is not None
        return found


def _config(tmp_path: Path, api: str, routes: dict[str, Any] | None) -> Path:
    config = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG, config, ignore=shutil.ignore_patterns("__pycache__"))
    midtier = yaml.safe_load((config / "midtier.yaml").read_text())
    for name in SECRETS:
        secret = "${TEST_" + name.upper() + "_SECRET}"
        midtier["channels"][name] = {"kind": KIND, "secret": secret, "api_base": f"{api}/{name}"}
    midtier["continuation"]["channels"].update(
        {
            "sms": {"title": "SMS"},
            "chatapp": {"title": "Chat App", "link": "https://chatapp.example/open?text={code}"},
        }
    )
    (config / "midtier.yaml").write_text(yaml.safe_dump(midtier))
    if routes:
        routing = yaml.safe_load((config / "routing.yaml").read_text())
        for name, change in routes.items():
            routing["routes"][name].update(change)
        (config / "routing.yaml").write_text(yaml.safe_dump(routing))
    return config


@asynccontextmanager
async def deployment(
    tmp_path: Path, routes: dict[str, Any] | None = None
) -> AsyncIterator[Deployment]:
    with environment(ENV):
        async with fake_platform() as platform:
            for name in SECRETS:
                answer_sends(platform, name)
            config = _config(tmp_path, platform.base_url, routes)
            async with serve_config(config, data_dir=tmp_path / "data") as run:
                yield Deployment(run, platform, tmp_path / "data")


def system(part: str) -> Any:
    return lambda f: f["speaker"] == "system" and part in f["text"]


async def code_on_web(client: Frames, me: Chatter) -> tuple[str, str]:
    """Ask for a code in the web chat; (code, link token)."""
    await me.say("continue on another channel")
    offer = await client.expect("message", system("send this code"))
    [code] = CODE.findall(offer["text"])
    [token] = TOKEN.findall(offer["text"])
    return code, token

"""A webhook platform's messages survive SIGKILL: a 200 means recorded, and recorded means
answered, once, in order, after any number of kills.

The real ``midtier run`` (the counting echo bot of ``tests/support/configs/echo`` plus a
Telegram channel) is killed at random moments while users on a fake Telegram post their
messages. Like Telegram, a user's next update goes only once the previous one got a 200,
and an update that got no 200 (the server was down, or died mid-request) is posted again.
Afterwards every acknowledged message was recorded once, seen by the bot once and in order,
and answered once in the transcript; the platform got every reply, in order (a reply the
platform took just before a kill may come twice: Telegram has no idempotency key).

Sizes: ``MIDTIER_CRASH_SESSIONS`` (8), ``MIDTIER_CRASH_MESSAGES`` per session (30),
``MIDTIER_CRASH_KILLS`` (3); ``MIDTIER_CRASH_SEED`` repeats a run.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
from pathlib import Path

import aiohttp
from support.channel_kits.telegram import TelegramKit
from support.channel_world import channel_config, environment
from support.fake_platform import FakePlatform, fake_platform
from support.process import MidtierProcess
from support.server import REPO, free_port

from connector.store import SqliteStore

ECHO_CONFIG = REPO / "tests" / "support" / "configs" / "echo"
SESSIONS = int(os.environ.get("MIDTIER_CRASH_SESSIONS", "8"))
MESSAGES = int(os.environ.get("MIDTIER_CRASH_MESSAGES", "30"))
KILLS = int(os.environ.get("MIDTIER_CRASH_KILLS", "3"))


class Acks:
    """Updates that got a 200, and a way to wait for more."""

    def __init__(self) -> None:
        self.count = 0
        self.changed = asyncio.Event()

    def append(self, _n: int) -> None:
        self.count += 1
        self.changed.set()

    async def reach(self, target: int) -> None:
        while self.count < target:
            self.changed.clear()
            await self.changed.wait()


class Sender:
    """One Telegram user: posts update after update, each until it gets a 200."""

    def __init__(self, index: int, url: str, kit: TelegramKit, acked: Acks) -> None:
        self.user = str(100 + index)
        self.url, self.kit, self.acked = url, kit, acked
        self.retries = 0

    async def run(self) -> None:
        async with aiohttp.ClientSession() as http:
            for n in range(1, MESSAGES + 1):
                mid = str(int(self.user) * 10_000 + n)
                call = self.kit.message(self.url, f"m{n}", user=self.user, message_id=mid)
                while True:
                    try:
                        async with http.post(
                            self.url, data=call.body, headers=call.headers
                        ) as answer:
                            if answer.status == 200:
                                break
                    except (aiohttp.ClientError, ConnectionError):
                        pass
                    self.retries += 1
                    await asyncio.sleep(0.05)  # the platform's retry, after a moment
                self.acked.append(n)


async def _kill_at_random_moments(server: MidtierProcess, acked: Acks, rng: random.Random) -> None:
    total = SESSIONS * MESSAGES
    for k in range(1, KILLS + 1):
        await acked.reach(int(total * k / (KILLS + 1)))
        await asyncio.sleep(rng.uniform(0, 0.05))
        await server.kill()
        await server.start()


def _replies(kit: TelegramKit, platform: FakePlatform, chat: str) -> list[str]:
    return [r.text for r in kit.replies(platform) if r.conversation == chat]


async def test_sigkill_while_a_platform_posts_loses_and_doubles_no_message(
    tmp_path: Path,
) -> None:
    seed = int(os.environ.get("MIDTIER_CRASH_SEED", str(random.randrange(1 << 30))))
    rng = random.Random(seed)
    kit = TelegramKit()
    config = tmp_path / "config"
    shutil.copytree(ECHO_CONFIG, config)
    async with fake_platform() as platform:
        kit.prepare(platform)
        channel_config(tmp_path, "telegram", kit.settings(platform.base_url))
        with environment(kit.env):
            server = MidtierProcess(tmp_path / "data", free_port(), config, env=dict(kit.env))
            await server.start()
            acked = Acks()
            url = f"{server.base}/channels/telegram"
            senders = [Sender(i, url, kit, acked) for i in range(SESSIONS)]
            try:
                killer = asyncio.create_task(_kill_at_random_moments(server, acked, rng))
                await asyncio.wait_for(asyncio.gather(*(s.run() for s in senders)), 120)
                await killer
                expected = [f"echo {n}: m{n}" for n in range(1, MESSAGES + 1)]
                async with asyncio.timeout(30):  # the last replies leave through the outbox
                    for s in senders:
                        while not set(expected) <= set(_replies(kit, platform, s.user)):
                            await platform.wait_for(lambda _c: True, count=len(platform.calls) + 1)
            finally:
                code = await server.stop()
            assert code == 0, server.log()[-3000:]

    store = SqliteStore(tmp_path / "data" / "midtier.db")
    await store.start()
    try:
        assert await store.inbound_keys() == [], "recorded messages left unprocessed"
        user_lines = [f"m{n}" for n in range(1, MESSAGES + 1)]
        doubled = 0
        for s in senders:
            session = await store.by_channel("telegram", s.user)
            assert session is not None
            transcript = await store.transcript(session.id)
            assert [e.text for e in transcript if e.speaker == "user"] == user_lines, s.user
            assert [e.text for e in transcript if e.speaker == "bot"] == expected, s.user
            [state] = session.legs[-1].data["botbuilder_state"].values()
            assert state["echo"]["got"] == user_lines, s.user
            sent = _replies(kit, platform, s.user)
            assert list(dict.fromkeys(sent)) == expected, s.user  # every reply, in order
            doubled += len(sent) - len(expected)
    finally:
        await store.close()
    print(
        f"\nwebhook crash test (seed {seed}): {SESSIONS * MESSAGES} updates, {KILLS} SIGKILLs, "
        f"{sum(s.retries for s in senders)} posts retried by the platform, "
        f"{doubled} replies the platform got twice"
    )

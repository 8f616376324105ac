"""Replies that a platform does not take at once: a real midtier, a real fake platform.

The channel is the test-only ``support.http_channel:HttpChannel``, which sends through
``adapters.channels.platform_api.call`` as the real channels do; the platform is
``support.fake_platform``, told to throttle, fail, refuse or hang.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
from support.channel_world import channel_config, environment
from support.fake_platform import Call, FakePlatform, fake_platform
from support.http_channel import SEND_PATH, TOKEN_HEADER
from support.server import AGENT_TOKEN, REPO, Running, serve

from connector.sessions import MidTierSession

TOKEN = "outbox-test-token-0123"
KIND = "support.http_channel:HttpChannel"
FAST = {"first_backoff_s": 0.2, "max_backoff_s": 1.0}  # retry passes run every second


@dataclass
class Platform:
    """One fake platform behind one channel, with the time each accepted call came."""

    name: str
    fake: FakePlatform
    accepted: dict[str, float] = field(default_factory=dict)  # activity id -> monotonic time
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def answer(self, call: Call) -> dict[str, Any]:
        self.accepted.setdefault(call.json["id"], time.monotonic())
        return {"ok": True, "id": f"p-{next(self._ids)}"}

    def calls(self, conversation: str | None = None) -> list[dict[str, Any]]:
        """What midtier tried to send (accepted or not), oldest first."""
        sent = [c.json for c in self.fake.to(SEND_PATH)]
        return [s for s in sent if conversation is None or s["conversation"] == conversation]

    def delivered(self, conversation: str) -> list[str]:
        """Texts the platform accepted for a conversation, in the order they came."""
        ids = sorted(self.accepted, key=self.accepted.__getitem__)
        texts = {s["id"]: s["text"] for s in self.calls(conversation)}
        return [texts[i] for i in ids if i in texts]


@dataclass
class World:
    run: Running
    platforms: dict[str, Platform]
    data_dir: Path
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    async def say(self, text: str, conversation: str, channel: str = "chat") -> None:
        body = {"id": f"m-{next(self._ids)}", "user": f"u-{conversation}"}
        body |= {"conversation": conversation, "text": text}
        url = f"{self.run.base}/channels/{channel}"
        async with (
            aiohttp.ClientSession() as http,
            http.post(url, json=body, headers={TOKEN_HEADER: TOKEN}) as response,
        ):
            assert response.status == 200, await response.text()

    async def session(self, conversation: str, channel: str = "chat") -> MidTierSession:
        found = await self.run.engine.store.by_channel(channel, conversation)
        assert found is not None
        return found

    async def replies(self, conversation: str, channel: str = "chat") -> list[str]:
        """What midtier wrote for the user, in commit order (the order they must arrive in)."""
        session = await self.session(conversation, channel)
        transcript = await self.run.engine.store.transcript(session.id)
        return [e.text or "" for e in transcript if e.speaker != "user" and e.activity.get("id")]

    async def waiting(self, conversation: str, channel: str = "chat") -> int:
        return len(await self.run.engine.store.outbox_pending(channel, conversation))


async def until(check: Callable[[], Any], within: float = 15.0) -> None:
    """Poll ``check`` (a function, or an async one) until it is true, for ``within`` s."""
    async with asyncio.timeout(within):
        while True:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return
            await asyncio.sleep(0.02)


async def midtier(*args: str) -> str:
    """``midtier <args>`` as a process of its own (this checkout's code); its output."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "connector.cli",
        *args,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return out.decode()


@asynccontextmanager
async def world(
    tmp_path: Path, outbox: dict[str, Any] | None = None, channels: tuple[str, ...] = ("chat",)
) -> AsyncIterator[World]:
    """midtier (the default deployment) with a test channel per name, each on its own fake
    platform, and ``outbox`` settings in midtier.yaml."""
    async with AsyncExitStack() as stack:
        stack.enter_context(
            environment({"MIDTIER_AGENT_TOKEN": AGENT_TOKEN, "TEST_CHANNEL_TOKEN": TOKEN})
        )
        platforms: dict[str, Platform] = {}
        for name in channels:
            fake = await stack.enter_async_context(fake_platform())
            platform = platforms[name] = Platform(name, fake)
            fake.route("POST", SEND_PATH, platform.answer)
            block = {"kind": KIND, "api_base": fake.base_url, "token": "${TEST_CHANNEL_TOKEN}"}
            config = channel_config(tmp_path, name, block, {"outbox": {**FAST, **(outbox or {})}})
        data = tmp_path / "data"
        run = await stack.enter_async_context(serve(config, data_dir=data))
        yield World(run, platforms, data)


async def test_a_reply_throttled_with_retry_after_arrives_after_the_wait_and_not_before(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        chat = w.platforms["chat"]
        throttled = {"ok": False, "error": "ratelimited"}
        chat.fake.fail_next(1, status=429, body=throttled, headers={"Retry-After": "3"})
        said = time.monotonic()
        await w.say("hi", "c1")
        await chat.fake.wait_for(lambda c: c.path == SEND_PATH)  # throttled now
        await w.say("what are your fees", "c1")  # a new reply must not hurry the old one
        await until(lambda: len(chat.delivered("c1")) == 2)
        hello, fees = await w.replies("c1")
        assert [c["text"] for c in chat.calls("c1")] == [hello, hello, fees]
        # Our own first backoff is 0.1-0.2 s: only the platform's 3 s explains the wait.
        assert chat.accepted[chat.calls("c1")[1]["id"]] - said >= 3.0
        assert chat.delivered("c1") == [hello, fees]
        assert (await w.session("c1")).delivery_failures == []


async def test_a_platform_failing_twice_gets_the_reply_on_the_third_try_and_the_next_after_it(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        chat = w.platforms["chat"]
        chat.fake.fail_next(2, status=503, body={"ok": False, "error": "unavailable"})
        await w.say("hi", "c1")
        await w.say("what are your fees", "c1")  # answered while the first reply waits
        await until(lambda: len(chat.delivered("c1")) == 2)
        hello, fees = await w.replies("c1")
        # The second reply never overtook the first, and did not hurry its retries either.
        assert [c["text"] for c in chat.calls("c1")] == [hello, hello, hello, fees]
        assert chat.delivered("c1") == [hello, fees]

        async def emptied() -> bool:
            return await w.waiting("c1") == 0

        await until(emptied)
        assert (await w.session("c1")).delivery_failures == []


async def test_a_refused_reply_is_recorded_at_once_and_the_replies_behind_it_still_go_out(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        chat = w.platforms["chat"]
        await w.say("hi", "c1")
        await until(lambda: len(chat.delivered("c1")) == 1)
        blocked = {"ok": False, "error": "Forbidden: bot was blocked by the user"}
        chat.fake.fail_next(1, status=403, body=blocked)
        await w.say("I want to dispute a charge", "c1")  # a notice, then two bot replies
        await until(lambda: len(chat.delivered("c1")) == 3)
        hello, notice, *disputes = await w.replies("c1")
        assert chat.delivered("c1") == [hello, *disputes]
        [failure] = (await w.session("c1")).delivery_failures
        assert (failure.outcome, failure.attempts, failure.channel) == ("rejected", 1, "chat")
        assert "HTTP 403" in failure.reason and "bot was blocked by the user" in failure.reason
        assert failure.excerpt is not None and notice.startswith(failure.excerpt.rstrip("…"))
        await w.say("Coffee Corner", "c1")  # and the conversation goes on
        await until(lambda: len(chat.delivered("c1")) == 4)
        assert chat.delivered("c1") == [r for r in await w.replies("c1") if r != notice]
        # Refused for good: tried once, never again.
        assert [c["text"] for c in chat.calls("c1")].count(notice) == 1


async def test_a_reply_not_taken_in_time_is_given_up_recorded_and_shown_by_sessions_show(
    tmp_path: Path,
) -> None:
    async with world(tmp_path, {"give_up_after_s": 1.5}) as w:
        chat = w.platforms["chat"]
        chat.fake.fail_next(1000, status=503, body={"ok": False, "error": "down for maintenance"})
        await w.say("hi", "c1")

        async def given_up() -> bool:
            return bool((await w.session("c1")).delivery_failures)

        await until(given_up)
        session = await w.session("c1")
        [failure] = session.delivery_failures
        assert failure.outcome == "given_up" and failure.attempts >= 2
        assert "HTTP 503" in failure.reason and "down for maintenance" in failure.reason
        [written] = [
            e
            for e in await w.run.engine.store.transcript(session.id)
            if e.speaker != "user" and e.activity.get("id")
        ]
        assert failure.at - written.at >= timedelta(seconds=1.5)  # not before the time
        assert await w.waiting("c1") == 0 and chat.delivered("c1") == []

        shown = await midtier("sessions", "show", session.id, "--data", str(w.data_dir))
        assert f"chat       given up after {failure.attempts} tries: " in shown
        assert failure.activity_id in shown and "outbox    0 waiting" in shown
        assert "on chat / c1" in shown  # the leg, with its channel conversation
        listed = await midtier("sessions", "list", "--failed", "--json", "--data", str(w.data_dir))
        assert [row["id"] for row in json.loads(listed)] == [session.id]


async def test_a_hanging_platform_holds_back_only_its_own_conversation(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        chat = w.platforms["chat"]
        chat.fake.fail_next(1, status=503, hang_s=6.0)
        await w.say("hi", "c-slow")
        await chat.fake.wait_for(lambda c: c.path == SEND_PATH)  # its reply hangs now
        await w.say("hi", "c-fast")
        await until(lambda: chat.delivered("c-fast"), within=4)
        assert chat.delivered("c-fast") == await w.replies("c-fast")
        # The slow conversation's next message is answered meanwhile; its reply waits.
        await w.say("what are your fees", "c-slow")

        async def answered() -> bool:
            return len(await w.replies("c-slow")) == 2

        await until(answered, within=4)
        assert chat.delivered("c-slow") == []  # still hanging
        await until(lambda: len(chat.delivered("c-slow")) == 2)
        assert chat.delivered("c-slow") == await w.replies("c-slow")


async def test_a_platform_that_is_down_keeps_its_replies_while_another_channel_flows(
    tmp_path: Path,
) -> None:
    async with world(tmp_path, channels=("chat", "other")) as w:
        down, up = w.platforms["chat"], w.platforms["other"]
        down.fake.fail_next(1000, status=502, body={"ok": False, "error": "bad gateway"})
        for n in range(3):
            await w.say("hi", f"c{n}")
        await w.say("hi", "o1", channel="other")
        await w.say("what are your fees", "o1", channel="other")
        await until(lambda: len(up.delivered("o1")) == 2)
        assert up.delivered("o1") == await w.replies("o1", channel="other")

        async def all_tried() -> bool:
            return {c["conversation"] for c in down.calls()} == {"c0", "c1", "c2"}

        await until(all_tried)
        assert [await w.waiting(f"c{n}") for n in range(3)] == [1, 1, 1]
        session = await w.session("c0")
        shown = await midtier("sessions", "show", session.id, "--data", str(w.data_dir))
        assert "outbox    1 waiting; oldest tried " in shown and "HTTP 502" in shown
        assert down.delivered("c0") == [] and session.delivery_failures == []

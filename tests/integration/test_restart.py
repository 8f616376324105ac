"""Sessions, transcripts, desk assignments, bot state and undelivered replies survive the
server being killed.

Runs the real ``midtier run`` twice on the same SQLite data directory; the first one is
stopped with SIGKILL, so nothing that only happens on a clean shutdown can save it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from support.process import MIDTIER, midtier_process
from support.server import AGENT_TOKEN, REPO, Chatter, Frames, free_port


@asynccontextmanager
async def socket(base: str, path: str) -> AsyncIterator[Frames]:
    url = base.replace("http://", "ws://") + path
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        yield Frames(ws)


async def _cli(*args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        *MIDTIER, *args, cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


def _messages(frames: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(f["speaker"], f["text"]) for f in frames if f.get("type") == "message"]


async def test_nothing_is_lost_when_the_server_is_killed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with midtier_process(data, free_port()) as server:
        async with socket(server.base, "/webchat/ws") as user:
            await user.send(type="hello", resume=None, user=None)
            welcome = await user.expect("welcome")
            me = Chatter(user)
            await me.say("hi")
            await user.expect("message", lambda f: f["speaker"] == "bot")
            await me.say("someone used my card without my permission")
            await user.expect("message", lambda f: "passing you" in f["text"])
            await user.expect("message", lambda f: "No agent is signed in" in f["text"])
        # The user has closed the tab; the agent accepts and answers meanwhile.
        async with socket(server.base, "/agent/ws") as desk:
            await desk.send(type="auth", token=AGENT_TOKEN, agent={"name": "Dana"})
            ready = await desk.expect("ready")
            queued = await desk.expect("queue", lambda f: bool(f["conversations"]))
            desk_conversation = queued["conversations"][0]["conversation"]
            await desk.send(type="accept", conversation=desk_conversation)
            await desk.expect("queue", lambda f: f["conversations"][0]["status"] == "assigned")
            await desk.send(type="send", conversation=desk_conversation, text="Card frozen.")
            await desk.expect(
                "queue",
                lambda f: any(
                    e["text"] == "Card frozen." for e in f["conversations"][0]["transcript"]
                ),
            )
        await server.kill()  # no shutdown hook runs
    shown = json.loads(await _cli("sessions", "list", "--data", str(data), "--json"))
    [summary] = shown
    assert summary["current_provider"] == "agents" and summary["legs"] == 2

    async with (
        midtier_process(data, free_port()) as server,
        socket(server.base, "/webchat/ws") as user,
    ):
        await user.send(type="hello", resume=welcome["resume"], user=None)
        resumed = await user.expect("welcome")
        assert resumed["resumed"] is True and resumed["user"] == welcome["user"]
        history = [(f["speaker"], f["text"]) for f in resumed["history"]]
        assert history[0] == ("user", "hi")
        assert ("user", "someone used my card without my permission") in history
        assert all(speaker != "agent" for speaker, _ in history)  # those were never shown
        async with socket(server.base, "/agent/ws") as desk:
            await desk.send(type="auth", token=AGENT_TOKEN, agent=ready["agent"])
            await desk.expect("ready")
            queued = await desk.expect("queue", lambda f: bool(f["conversations"]))
            [item] = queued["conversations"]
            # The desk still knows the assignment, under the same agent id.
            assert item["status"] == "assigned" and item["agent"] == ready["agent"]
            again = Chatter(user)
            again.n = me.n  # client ids must stay unique within a conversation
            await again.say("thanks, what now?")
            await desk.expect("message", lambda f: f["text"] == "thanks, what now?")
        # Everything the user got between the welcome and the ack of that message: exactly
        # the two replies it missed, once each, in order (a flush comes before any later
        # frame on the socket, so a repeat would be among these).
        got = _messages(user.seen[user.seen.index(resumed) + 1 :])
        assert got == [
            ("agent", "Hi, this is Dana from the support team. I'm reading your conversation now."),
            ("agent", "Card frozen."),
        ]

    detail = json.loads(
        await _cli("sessions", "show", summary["id"], "--data", str(data), "--json")
    )
    assert [leg["provider"] for leg in detail["session"]["legs"]] == ["faq", "agents"]
    said = [e["text"] for e in detail["transcript"] if e["speaker"] == "user"]
    assert said == ["hi", "someone used my card without my permission", "thanks, what now?"]
    assert [d["action"] for d in detail["decisions"]] == ["open", "switch", "stay"]
    text = await _cli("sessions", "show", summary["id"], "--data", str(data))
    assert "agents" in text and "resolved" not in text and "Card frozen." in text


async def test_a_dispute_half_filed_goes_on_after_a_kill(tmp_path: Path) -> None:
    """The disputes bot's flow state is committed with its replies (LegStorage)."""
    data = tmp_path / "data"
    async with midtier_process(data, free_port()) as server:
        async with socket(server.base, "/webchat/ws") as user:
            await user.send(type="hello", resume=None, user=None)
            welcome = await user.expect("welcome")
            me = Chatter(user)
            await me.say("I want to dispute a charge")
            await user.expect("message", lambda f: "Which merchant" in f["text"])
            await me.say("Corner Coffee")
            await user.expect("message", lambda f: "How much" in f["text"])
            shown = {f["id"] for f in user.of("message")}
        await server.kill()
    async with (
        midtier_process(data, free_port()) as server,
        socket(server.base, "/webchat/ws") as user,
    ):
        await user.send(type="hello", resume=welcome["resume"], user=None)
        await user.expect("welcome")
        again = Chatter(user)
        again.n = 2
        await again.say("42.50")
        # (a reply the kill caught before its delivery was noted comes again, same id: the
        # page shows it once, and so do we)
        filed = await user.expect(
            "message", lambda f: f["speaker"] == "bot" and f["id"] not in shown
        )
        assert "$42.50 at Corner Coffee" in filed["text"], filed["text"]

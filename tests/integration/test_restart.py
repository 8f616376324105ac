"""Sessions, transcripts, desk assignments and undelivered replies survive a restart.

Runs the real ``midtier run`` command twice on the same SQLite data directory.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from support.server import AGENT_TOKEN, REPO, Chatter, Frames, free_port

MIDTIER = [sys.executable, "-m", "connector.cli"]


@asynccontextmanager
async def midtier_run(data: Path, port: int) -> AsyncIterator[str]:
    env = {**os.environ, "MIDTIER_AGENT_TOKEN": AGENT_TOKEN}
    log = (data.parent / f"server-{port}.log").open("ab")
    proc = await asyncio.create_subprocess_exec(
        *MIDTIER,
        "run",
        "--port",
        str(port),
        "--data",
        str(data),
        "--config",
        str(REPO / "bot_configs"),
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with asyncio.timeout(60), aiohttp.ClientSession() as http:
            while True:  # poll until it answers (start-up trains or loads the NLU model)
                try:
                    async with http.get(f"{base}/healthz") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                if proc.returncode is not None:
                    raise AssertionError(f"midtier run exited with {proc.returncode}")
                await asyncio.sleep(0.1)
        yield base
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await proc.wait() == 0
        log.close()


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


async def test_nothing_is_lost_across_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    async with midtier_run(data, port) as base:
        async with socket(base, "/webchat/ws") as user:
            await user.send(type="hello", conversation=None, user=None)
            welcome = await user.expect("welcome")
            me = Chatter(user)
            await me.say("hi")
            await user.expect("message", lambda f: f["speaker"] == "bot")
            await me.say("someone used my card without my permission")
            await user.expect("message", lambda f: f["speaker"] == "system")
        # The user has closed the tab; the agent accepts and answers meanwhile.
        async with socket(base, "/agent/ws") as desk:
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
    shown = json.loads(await _cli("sessions", "list", "--data", str(data), "--json"))
    [summary] = shown
    assert summary["current_provider"] == "agents" and summary["legs"] == 2

    async with midtier_run(data, free_port()) as base, socket(base, "/webchat/ws") as user:
        await user.send(type="hello", conversation=welcome["conversation"], user=None)
        resumed = await user.expect("welcome")
        assert resumed["resumed"] is True and resumed["user"] == welcome["user"]
        history = [(f["speaker"], f["text"]) for f in resumed["history"]]
        assert history[0] == ("user", "hi")
        assert ("user", "someone used my card without my permission") in history
        # Replies the user missed come now, once, in order (they were in the outbox).
        missed = [await user.expect("message"), await user.expect("message")]
        assert [m["speaker"] for m in missed] == ["agent", "agent"]
        assert "Dana" in missed[0]["text"] and missed[1]["text"] == "Card frozen."
        assert all(m["text"] not in dict(history).values() for m in missed)
        # The desk still knows the assignment, under the same agent id.
        async with socket(base, "/agent/ws") as desk:
            await desk.send(type="auth", token=AGENT_TOKEN, agent=ready["agent"])
            await desk.expect("ready")
            queued = await desk.expect("queue", lambda f: bool(f["conversations"]))
            [item] = queued["conversations"]
            assert item["status"] == "assigned" and item["agent"] == ready["agent"]
            again = Chatter(user)
            again.n = me.n  # client ids must stay unique within a conversation
            await again.say("thanks, what now?")
            await desk.expect("message", lambda f: f["text"] == "thanks, what now?")

    detail = json.loads(
        await _cli("sessions", "show", summary["id"], "--data", str(data), "--json")
    )
    assert [leg["provider"] for leg in detail["session"]["legs"]] == ["faq", "agents"]
    said = [e["text"] for e in detail["transcript"] if e["speaker"] == "user"]
    assert said == ["hi", "someone used my card without my permission", "thanks, what now?"]
    assert [d["action"] for d in detail["decisions"]] == ["open", "switch", "stay"]
    text = await _cli("sessions", "show", summary["id"], "--data", str(data))
    assert "agents" in text and "resolved" not in text and "Card frozen." in text

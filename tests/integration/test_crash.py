"""Nothing acknowledged is lost when the server is killed (SIGKILL) in the middle of work.

Runs the real ``midtier run`` with one in-process bot that counts what it gets
(``tests/support/configs/echo``), and web chat clients that behave like the page: they say
hello with their resume token, resend what was not acknowledged, and show each server
message id once. The server is killed at random moments and started again; then every
acknowledged message must have been recorded once, answered once, seen by the bot once and
in order, and shown to its user once and in order.

Sizes: ``MIDTIER_CRASH_SESSIONS`` (20), ``MIDTIER_CRASH_MESSAGES`` per session (100),
``MIDTIER_CRASH_KILLS`` (4); ``MIDTIER_CRASH_SEED`` repeats a run.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from support.process import MidtierProcess
from support.server import REPO, free_port

from connector.store import SqliteStore

ECHO_CONFIG = REPO / "tests" / "support" / "configs" / "echo"
SESSIONS = int(os.environ.get("MIDTIER_CRASH_SESSIONS", "20"))
MESSAGES = int(os.environ.get("MIDTIER_CRASH_MESSAGES", "100"))
KILLS = int(os.environ.get("MIDTIER_CRASH_KILLS", "4"))
WINDOW = 3  # messages a client has in flight, as a fast typist's page would
STALL_S = 20.0  # no ack and no reply for this long: something was lost


@dataclass
class Totals:
    acks: int = 0
    progress: int = 0  # acks and replies shown
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def ack(self) -> None:
        self.acks += 1
        self.moved()

    def moved(self) -> None:
        self.progress += 1
        self.changed.set()


class PageClient:
    """One web chat user, doing what ``webchat.html`` does across server restarts."""

    def __init__(self, index: int, ws_url: str, totals: Totals) -> None:
        self.index = index
        self.ws_url = ws_url
        self.totals = totals
        self.resume: str | None = None
        self.next = 1  # the number of the next message to type
        self.unacked: dict[str, str] = {}  # client id -> text, in sending order
        self.acked: list[str] = []
        self.shown: dict[str, str] = {}  # server message id -> text, in display order
        self.repeated_frames = 0  # frames of an id already shown (the page drops them)
        self.connects = 0

    @property
    def conversation(self) -> str:
        assert self.resume is not None
        return self.resume.split(".")[0]

    def replies(self) -> list[str]:
        return [t for t in self.shown.values() if t.startswith("echo ")]

    def finished(self) -> bool:
        return len(self.acked) == MESSAGES and len(self.replies()) >= MESSAGES

    async def run(self) -> None:
        async with aiohttp.ClientSession() as http:
            while not self.finished():
                try:
                    async with http.ws_connect(self.ws_url, heartbeat=None) as ws:
                        self.connects += 1
                        await self._converse(ws)
                except (aiohttp.ClientError, ConnectionError, TimeoutError):
                    pass
                if not self.finished():
                    await asyncio.sleep(0.05)  # the server is restarting: try again soon

    async def _converse(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        await ws.send_json({"type": "hello", "resume": self.resume, "user": None})
        welcome = await self._frame(ws)
        if welcome is None:
            return
        if welcome["type"] == "error":
            # Only a conversation none of whose messages was ever recorded is unknown.
            assert welcome["code"] == "unknown_conversation" and not self.acked, welcome
            self.resume = None
            return
        assert welcome["type"] == "welcome", welcome
        self.resume = welcome["resume"]
        for item in welcome["history"]:
            self._show(item, live=False)
        await self._older_history(ws, welcome)
        for client_id, text in list(self.unacked.items()):  # the page resends these
            await ws.send_json({"type": "message", "id": client_id, "text": text})
        while not self.finished():
            while len(self.unacked) < WINDOW and self.next <= MESSAGES:
                client_id, text = f"c{self.index}-{self.next}", f"m{self.next}"
                self.unacked[client_id] = text
                self.next += 1
                await ws.send_json({"type": "message", "id": client_id, "text": text})
            frame = await self._frame(ws)
            if frame is None:
                return
            if frame["type"] == "ack":
                if frame["id"] in self.unacked:
                    del self.unacked[frame["id"]]
                    self.acked.append(frame["id"])
                    self.totals.ack()
            elif frame["type"] == "message":
                self._show(frame)
            elif frame["type"] == "error":
                raise AssertionError(f"client {self.index} got {frame}")

    async def _older_history(self, ws: aiohttp.ClientWebSocketResponse, welcome: Any) -> None:
        """Scroll up while replies are missing below the oldest one in view (as a user
        would to read what came while they were away)."""
        more, items = welcome["more"], welcome["history"]
        while more and items and self._gap_before(items):
            await ws.send_json({"type": "history", "before": items[0]["seq"]})
            while (frame := await self._frame(ws)) is not None and frame["type"] != "history":
                if frame["type"] == "message":
                    self._show(frame)
            if frame is None:
                return
            items, more = frame["entries"], frame["more"]
            for item in items:
                self._show(item, live=False)

    def _gap_before(self, items: list[dict[str, Any]]) -> bool:
        """Whether a reply older than the oldest one on this page was never shown."""
        numbers = [_number(i["text"]) for i in items if i["text"].startswith("echo ")]
        if not numbers:
            return False
        seen = {_number(text) for text in self.replies()}
        return any(n not in seen for n in range(1, min(numbers)))

    def _show(self, frame: dict[str, Any], live: bool = True) -> None:
        if frame.get("speaker") == "user":
            return
        if frame["id"] in self.shown:
            self.repeated_frames += live  # sent again after a kill; history repeats anyway
            return
        self.shown[frame["id"]] = frame["text"]
        self.totals.moved()

    @staticmethod
    async def _frame(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any] | None:
        msg = await ws.receive()
        if msg.type != aiohttp.WSMsgType.TEXT:
            return None  # closed: the server went away
        frame: dict[str, Any] = json.loads(msg.data)
        return frame


def _number(reply: str) -> int:
    return int(reply.split(":")[0].removeprefix("echo "))


async def _until_done(clients: list[PageClient], totals: Totals) -> None:
    """Wait for every client; fail early, saying who misses what, if progress stops."""
    runs = asyncio.gather(*(c.run() for c in clients))
    try:
        while not runs.done():
            before = totals.progress
            try:
                await asyncio.wait_for(asyncio.shield(runs), STALL_S)
            except TimeoutError:
                if totals.progress == before:
                    stuck = [
                        f"client {c.index}: {len(c.acked)} acked, {len(c.replies())} replies"
                        for c in clients
                        if not c.finished()
                    ]
                    raise AssertionError(f"no progress for {STALL_S:.0f} s: {stuck}") from None
        await runs
    finally:
        runs.cancel()


async def _kill_at_random_moments(
    server: MidtierProcess, totals: Totals, rng: random.Random, kills: list[int]
) -> None:
    total = SESSIONS * MESSAGES
    for k in range(1, KILLS + 1):
        target = int(total * k / (KILLS + 1) + rng.uniform(-0.05, 0.05) * total)
        while totals.acks < target:
            totals.changed.clear()
            await totals.changed.wait()
        await asyncio.sleep(rng.uniform(0, 0.03))  # anywhere in the work after that ack
        await server.kill()
        kills.append(totals.acks)
        await server.start()


async def test_sigkill_at_random_moments_loses_duplicates_and_reorders_nothing(
    tmp_path: Path,
) -> None:
    seed = int(os.environ.get("MIDTIER_CRASH_SEED", str(random.randrange(1 << 30))))
    rng = random.Random(seed)
    data = tmp_path / "data"
    turns = tmp_path / "bot-turns.txt"
    server = MidtierProcess(data, free_port(), ECHO_CONFIG, env={"MIDTIER_ECHO_TURNS": str(turns)})
    totals = Totals()
    ws_url = server.base.replace("http://", "ws://") + "/webchat/ws"
    clients = [PageClient(i, ws_url, totals) for i in range(SESSIONS)]
    kills: list[int] = []
    started = time.monotonic()
    await server.start()
    try:
        killer = asyncio.create_task(_kill_at_random_moments(server, totals, rng, kills))
        try:
            await _until_done(clients, totals)
            await killer
        finally:
            killer.cancel()
    finally:
        code = await server.stop()
    elapsed = time.monotonic() - started
    assert code == 0, server.log()[-3000:]
    assert len(kills) == KILLS

    store = SqliteStore(data / "midtier.db")
    await store.start()
    try:
        assert await store.inbound_keys() == [], "recorded messages left unprocessed"
        expected_user = [f"m{n}" for n in range(1, MESSAGES + 1)]
        expected_replies = [f"echo {n}: m{n}" for n in range(1, MESSAGES + 1)]
        for client in clients:
            session = await store.by_channel("webchat", client.conversation)
            assert session is not None
            transcript = await store.transcript(session.id)
            said = [e.text for e in transcript if e.speaker == "user"]
            answered = [e.text for e in transcript if e.speaker == "bot"]
            # Every acknowledged message recorded once, in order, and answered once.
            assert said == expected_user, f"client {client.index}: {Counter(said).most_common(3)}"
            assert answered == expected_replies, f"client {client.index}"
            # The bot's own (committed) record: each message once, in order.
            [state] = session.legs[-1].data["botbuilder_state"].values()
            assert state["echo"]["got"] == expected_user, f"client {client.index}"
            # What the page shows: each reply once, in order.
            assert client.replies() == expected_replies, f"client {client.index}"
    finally:
        await store.close()

    started_turns = Counter(turns.read_text().splitlines())
    rerun = sum(n - 1 for n in started_turns.values() if n > 1)
    print(
        f"\ncrash test (seed {seed}): {SESSIONS * MESSAGES} messages in {SESSIONS} sessions, "
        f"{KILLS} SIGKILLs after {kills} acks, {elapsed:.1f} s; "
        f"turns a kill cut short and run again: {rerun}; "
        f"replies sent again after a kill (same id, shown once): "
        f"{sum(c.repeated_frames for c in clients)}; "
        f"reconnects: {sum(c.connects for c in clients) - SESSIONS}"
    )

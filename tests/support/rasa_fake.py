"""A small Rasa-compatible server for tests, and the real rasa-sdk action server process.

``FakeRasa`` speaks the parts of Rasa's HTTP interface midtier uses (PROTOCOLS.md section 8):
the REST and callback channels, ``/model/parse``, ``/conversations/{id}/tracker/events`` and
``GET /``, and records everything it is sent. Its dialogue is a few rules; the handoff rule
runs ``action_handoff`` on a real action server (``ActionServer``) with the action-server
protocol, relays the action's ``responses`` as bot messages and applies its ``events``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from support.server import REPO, free_port

RASA_PYTHON = REPO / ".venv-rasa" / "bin" / "python"
HANDOFF_WORD = "#handoff"


class FakeRasa:
    """Rules: ``#handoff`` runs action_handoff; ``buttons``; ``picture``; else an echo."""

    def __init__(self, action_url: str | None = None, token: str = "") -> None:
        self.action_url = action_url
        self.token = token
        self.received: list[dict[str, Any]] = []  # webhook bodies, with "channel"
        self.parsed: list[str] = []
        self.events: list[tuple[str, dict[str, Any]]] = []  # tracker events appended via API
        self.action_calls: list[dict[str, Any]] = []  # action server answers
        self.paused: set[str] = set()
        self.slots: dict[str, Any] = {}  # slots the handoff rule sets before the action
        self.intents: dict[str, tuple[str, float]] = {}  # keyword -> /model/parse answer
        self.fail_status: int | None = None
        self.hang = asyncio.Event()  # set: webhooks wait until released
        self.hang_parse = asyncio.Event()  # set: /model/parse waits until released
        self.release = asyncio.Event()
        self.callback_url = ""
        self.callback_statuses: list[int] = []
        self.base = ""
        self._http: aiohttp.ClientSession | None = None

    # ------------------------------------------------------------------ dialogue

    async def turn(self, sender: str, text: str) -> list[dict[str, Any]]:
        """The bot messages for one user message (as the REST channel would answer)."""
        if text == "/restart":
            self.paused.discard(sender)
            return []
        if sender in self.paused:
            return []  # a paused tracker predicts nothing
        if HANDOFF_WORD in text:
            return await self._run_action(sender, text, "action_handoff")
        if "buttons" in text:
            buttons = [{"title": "Yes", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}]
            return [{"recipient_id": sender, "text": "Shall I?", "buttons": buttons}]
        if "picture" in text:
            return [{"recipient_id": sender, "image": "https://example.org/parcel.jpg"}]
        return [{"recipient_id": sender, "text": f"rasa heard: {text}"}]

    async def _run_action(self, sender: str, text: str, action: str) -> list[dict[str, Any]]:
        assert self.action_url and self._http is not None
        latest = {"intent": {"name": "handoff", "confidence": 1.0}, "entities": [], "text": text}
        tracker = {
            "sender_id": sender,
            "slots": dict(self.slots),
            "latest_message": latest,
            "latest_event_time": time.time(),
            "followup_action": None,
            "paused": False,
            "events": [{"event": "user", "text": text, "timestamp": time.time()}],
            "latest_input_channel": "rest",
            "active_loop": {},
            "latest_action": {"action_name": "action_listen"},
            "latest_action_name": "action_listen",
        }
        domain = {"slots": {}, "actions": [action], "intents": [], "entities": [], "responses": {}}
        body = {"next_action": action, "sender_id": sender, "version": "3.6.21"}
        body |= {"tracker": tracker, "domain": domain}
        async with self._http.post(f"{self.action_url}/webhook", json=body) as response:
            assert response.status == 200, await response.text()
            answer = await response.json()
        self.action_calls.append(answer)
        for event in answer.get("events", []):
            if event.get("event") == "pause":
                self.paused.add(sender)
            elif event.get("event") == "slot":
                self.slots[event["name"]] = event["value"]
        keys = ("text", "image", "buttons", "attachment", "elements", "custom")
        return [
            {"recipient_id": sender, **{k: r[k] for k in keys if r.get(k)}}
            for r in answer.get("responses", [])
        ]

    # ------------------------------------------------------------------ HTTP

    async def _webhook(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        channel = request.match_info["channel"]
        self.received.append({**body, "channel": channel})
        if self.hang.is_set():
            await self.release.wait()
        if self.fail_status is not None:
            return web.Response(status=self.fail_status, text="boom")
        replies = await self.turn(body["sender"], body["message"])
        if channel == "rest":
            return web.json_response(replies)
        for reply in replies:  # the callback channel posts each message, then says success
            self.callback_statuses.append(await self.post_callback(reply))
        return web.Response(text="success")

    async def post_callback(self, message: dict[str, Any], url: str | None = None) -> int:
        """POST one bot message to midtier's callback URL; the status it answered."""
        assert self._http is not None
        async with self._http.post(url or self.callback_url, json=message) as response:
            return response.status

    def _authorized(self, request: web.Request) -> bool:
        return not self.token or request.query.get("token") == self.token

    async def _parse(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"status": "failure"}, status=401)
        text = (await request.json())["text"]
        self.parsed.append(text)
        if self.hang_parse.is_set():
            await self.release.wait()
        name, conf = next(
            (v for k, v in self.intents.items() if k in text.lower()), ("nlu_fallback", 0.3)
        )
        return web.json_response(
            {
                "text": text,
                "intent": {"name": name, "confidence": conf},
                "entities": [],
                "intent_ranking": [{"name": name, "confidence": conf}],
            }
        )

    async def _tracker_events(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"status": "failure"}, status=401)
        sender = request.match_info["sender"]
        event = await request.json()
        self.events.append((sender, event))
        if event.get("event") == "resume":
            self.paused.discard(sender)
        return web.json_response({"sender_id": sender, "paused": sender in self.paused})

    async def _root(self, request: web.Request) -> web.Response:
        return web.Response(text="Hello from Rasa: 3.6.21")

    @asynccontextmanager
    async def running(self) -> AsyncIterator[FakeRasa]:
        """Serve on 127.0.0.1 until the block ends."""
        app = web.Application()
        app.router.add_post("/webhooks/{channel}/webhook", self._webhook)
        app.router.add_post("/model/parse", self._parse)
        app.router.add_post("/conversations/{sender}/tracker/events", self._tracker_events)
        app.router.add_get("/", self._root)
        runner = web.AppRunner(app, handler_cancellation=True)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        self.base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:
            self._http = http
            try:
                yield self
            finally:
                self.release.set()
                await runner.cleanup()


@contextmanager
def action_server() -> Iterator[str]:
    """The real rasa-sdk action server (``.venv-rasa``) with action_handoff; yields its URL."""
    if not RASA_PYTHON.exists():
        raise RuntimeError("run scripts/setup-rasa.sh first: .venv-rasa is missing")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    log = Path(tempfile.gettempdir()) / f"midtier-rasa-actions-{port}.log"
    command = [str(RASA_PYTHON), "-m", "rasa_sdk", "--actions", "tests.support.rasa_actions"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*command, "--port", str(port)], cwd=REPO, env=env, stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not _healthy(f"{url}/health"):
            if proc.poll() is not None:
                raise RuntimeError(f"action server exited: {log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"action server not up in 60s: {log.read_text()[-2000:]}")
            time.sleep(0.05)  # polling a process start-up, bounded by the deadline
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.unlink(missing_ok=True)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False

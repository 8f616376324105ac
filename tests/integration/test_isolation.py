"""A session is its user's alone: what providers receive cannot resume, read or write it.

A user talks to the FAQ bot, then to a webhook service (disputes), then to a remote Bot
Framework bot (dispute status), then back to the FAQ bot. Both remote providers are real
HTTP servers on 127.0.0.1 that record every request: path, headers and body. Then every
string they ever received is tried as a web chat resume token, as a conversation, and as
the secret of the user's own conversation; and both providers try to speak into the
conversation after it has left them. None of it may reach the user's session.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
import yaml
from aiohttp import web
from support.server import AGENT_TOKEN, DEFAULT_CONFIG, Chatter, Frames, chat, free_port, serve
from support.webhook_service import SECRET, call_back, fake_service


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIDTIER_AGENT_TOKEN", AGENT_TOKEN)
    monkeypatch.setenv("MIDTIER_WEBHOOK_SECRET", SECRET)


class RecordingBot:
    """A remote Bot Framework bot that answers 200 to everything and keeps each request."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.got: list[tuple[str, dict[str, str], bytes]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.got.append((request.path_qs, dict(request.headers), await request.read()))
        return web.Response(status=200)


@asynccontextmanager
async def recording_bot(port: int) -> AsyncIterator[RecordingBot]:
    bot = RecordingBot(f"http://127.0.0.1:{port}")
    app = web.Application()
    app.router.add_post("/api/messages", bot.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield bot
    finally:
        await runner.cleanup()


def _config(tmp_path: Path, hook: str, bot: str) -> Path:
    config = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG, config)
    providers = yaml.safe_load((config / "providers.yaml").read_text())
    providers["providers"]["partner"] = {
        "kind": "webhook",
        "title": "the partner desk",
        "url": hook,
        "secret": "${MIDTIER_WEBHOOK_SECRET}",
        "timeout_s": 2,
    }
    providers["providers"]["remote"] = {
        "kind": "botframework",
        "title": "the status bot",
        "endpoint": bot,
        "timeout_s": 2,
    }
    (config / "providers.yaml").write_text(yaml.safe_dump(providers, sort_keys=False))
    routing = yaml.safe_load((config / "routing.yaml").read_text())
    routes = routing["routes"]
    routes.pop("disputes")
    routing["routes"] = {
        "faq": routes.pop("faq"),
        "partner": {"intents": ["dispute_charge", "duplicate_charge"]},
        "remote": {"intents": ["dispute_status"]},
        **routes,
    }
    (config / "routing.yaml").write_text(yaml.safe_dump(routing, sort_keys=False))
    return config


def _strings(value: Any) -> Iterator[str]:
    """Every string in a JSON value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _received(*requests: tuple[str, dict[str, str], bytes]) -> set[str]:
    """Every string a provider got: path, header values, body (and each JSON string in it)."""
    found: set[str] = set()
    for path, headers, body in requests:
        found.add(path)
        found.update(headers.values())
        text = body.decode("utf-8", "replace")
        found.add(text)
        with suppress(ValueError):  # not JSON: the text itself is in already
            found.update(_strings(json.loads(text)))
    # Pieces too: a token may travel inside a longer id ("<conversation>:<n>").
    for text in list(found):
        for sep in (":", ".", "/", "?", "&", "=", " "):
            found.update(p for p in text.split(sep) if p)
    return found


async def _hello(run_ws: str, resume: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.ws_connect(run_ws) as ws:
        client = Frames(ws)
        await client.send(type="hello", resume=resume, user=None)
        async for msg in ws:
            frame: dict[str, Any] = json.loads(msg.data)
            return frame
    raise AssertionError("no answer to hello")


async def test_what_providers_receive_cannot_resume_read_or_write_the_session(
    tmp_path: Path,
) -> None:
    async with (
        fake_service(free_port()) as service,
        recording_bot(free_port()) as bot,
    ):
        config = _config(tmp_path, service.url, f"{bot.base}/api/messages")
        async with serve(config, data_dir=tmp_path / "data") as run:
            async with chat(run) as (user, welcome):
                me = Chatter(user)
                await me.say("hi")
                await user.expect("message", lambda f: f["speaker"] == "bot")
                await me.say("I want to dispute a charge")
                await user.expect("message", lambda f: f["text"].startswith("echo:"))
                await me.say("what is the status of my dispute")
                await run.engine.inbound.idle()
                await me.say("what's my balance?")
                await user.expect("message", lambda f: "balance" in f["text"].lower())
            session = await run.engine.store.by_channel("webchat", welcome["conversation"])
            assert session is not None
            assert [leg.provider for leg in session.legs] == ["faq", "partner", "remote", "faq"]
            before = [e.model_dump() for e in await run.engine.store.transcript(session.id)]

            got = _received(
                *((r.path, r.headers, r.body) for r in service.got),
                *bot.got,
            )
            assert len(service.got) >= 3 and len(bot.got) >= 2
            conversation, _, secret = welcome["resume"].partition(".")
            client_ids = {f"m{n}" for n in range(1, me.n + 1)}
            # Nothing channel-side left midtier: not the secret, not even the web chat's
            # conversation id or the page's message ids.
            assert secret not in got and welcome["resume"] not in got
            assert not any(secret in s or conversation in s for s in got)
            assert not client_ids & got

            ws_url = f"{run.ws_base}/webchat/ws"
            tried = sorted(got)[:400]  # the distinct strings, a bounded set of attempts
            for guess in tried:
                for resume in (guess, f"{conversation}.{guess}", f"{guess}.{guess}"):
                    answer = await _hello(ws_url, resume)
                    assert answer["type"] == "error", (resume, answer)
                    assert answer["code"] == "unknown_conversation"

            # Speaking into the conversation after it left them: refused, nothing recorded.
            partner_leg, remote_leg = session.legs[1], session.legs[2]
            status, answer = await call_back(
                f"{run.base}/webhooks/providers/partner",
                {
                    "conversation": partner_leg.provider_conversation_id,
                    "activities": [{"type": "message", "text": "I am the user now"}],
                },
            )
            assert status == 409, answer
            cid = quote(remote_leg.provider_conversation_id, safe="")
            async with (
                aiohttp.ClientSession() as http,
                http.post(
                    f"{run.base}/v3/conversations/{cid}/activities",
                    json={
                        "type": "message",
                        "text": "I am the user now",
                        "from": {"id": session.user_id, "role": "user"},
                    },
                ) as r,
            ):
                assert r.status == 409
            await run.engine.inbox.idle()
            after = [e.model_dump() for e in await run.engine.store.transcript(session.id)]
            assert after == before

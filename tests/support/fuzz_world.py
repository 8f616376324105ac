"""A midtier deployment with every route mounted, for the fuzz and log tests.

``bot_configs/`` plus three providers whose other ends are small real servers in the test
(``Fakes``): ``remote`` (a Bot Framework bot, auth on, so the Connector API and the token
issuer are mounted), ``partner`` (a webhook service) and ``orders`` (a Rasa bot on the
callback channel). Every secret comes from an environment variable (``ENV``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import yaml
from aiohttp import web

from support.channel_kits import KITS
from support.rasa_config import TRACK_ORDER
from support.server import DEFAULT_CONFIG, Chatter, Frames, Running, free_port, serve

APP_ID = "0d9e5c1a-7b2f-4e8a-9c3d-5f6a7b8c9d0e"

# Distinctive values, so that finding one in a log can only mean it leaked.
ENV = {
    "MIDTIER_AGENT_TOKEN": "desk-token-Zq81LmXv20sPw",
    "MIDTIER_FAQ_CREDENTIAL": "faq-cred-Ht55KoBn37qYe",
    "MIDTIER_DISPUTES_CREDENTIAL": "disputes-cred-Wm02RcTs98uJf",
    "MIDTIER_AGENTS_CREDENTIAL": "agents-cred-Pd46XhGa11vNk",
    "FUZZ_REMOTE_PASSWORD": "bot-password-Ly73QeDw05mKr",
    "FUZZ_REMOTE_CREDENTIAL": "remote-cred-Bs29NuVc64tHz",
    "FUZZ_PARTNER_SECRET": "webhook-secret-Jx18GfRk77pAo",
    "FUZZ_PARTNER_PREVIOUS_SECRET": "webhook-old-secret-Ck40TzMy92wEb",
    "FUZZ_PARTNER_CREDENTIAL": "partner-cred-Fv63SaLp28nXq",
    "FUZZ_RASA_TOKEN": "rasa-token-Ew57DjHq13bUs",
    "FUZZ_RASA_SECRET": "rasa-callback-secret-Gn84VbKt36cWl",
    "FUZZ_ORDERS_CREDENTIAL": "orders-cred-Ru12YmPe49dZi",
}
# Every webhook channel too, its secrets from the environment like the providers'.
CHANNEL_KITS = {kind: make() for kind, make in KITS.items()}
for _kit in CHANNEL_KITS.values():
    ENV.update(_kit.env)
SECRETS = sorted(ENV.values())

T = TypeVar("T")


@dataclass
class Fakes:
    """The bot, the webhook service and the Rasa server, on one port; they record and say 200."""

    base: str = ""
    bot: list[dict[str, Any]] = field(default_factory=list)
    hook: list[dict[str, Any]] = field(default_factory=list)
    rasa: list[dict[str, Any]] = field(default_factory=list)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def _record(self, into: list[dict[str, Any]], request: web.Request) -> None:
        body = await request.read()
        async with self.arrived:
            into.append(json.loads(body) if body else {})
            self.arrived.notify_all()

    async def _bot(self, request: web.Request) -> web.Response:
        await self._record(self.bot, request)
        return web.json_response({})

    async def _hook(self, request: web.Request) -> web.Response:
        await self._record(self.hook, request)
        return web.json_response({"activities": []})

    async def _rasa(self, request: web.Request) -> web.Response:
        await self._record(self.rasa, request)
        return web.Response(text="success")

    async def _rasa_any(self, request: web.Request) -> web.Response:
        return web.json_response({})

    async def wait_for(self, find: Callable[[], T | None], within: float = 20) -> T:
        """What ``find`` returns once it returns something; waits for new requests."""
        async with asyncio.timeout(within), self.arrived:
            while (found := find()) is None:
                await self.arrived.wait()
            return found


@asynccontextmanager
async def fakes() -> AsyncIterator[Fakes]:
    fake = Fakes()
    app = web.Application()
    app.router.add_post("/bot/api/messages", fake._bot)
    app.router.add_post("/hook", fake._hook)
    app.router.add_post("/rasa/webhooks/callback/webhook", fake._rasa)
    app.router.add_route("*", "/rasa/{tail:.*}", fake._rasa_any)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    fake.base = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        await runner.cleanup()


def write_config(tmp: Path, fakes_base: str) -> Path:
    """bot_configs/ plus ``remote``, ``partner`` and ``orders``, each serving one intent."""
    config = tmp / "config"
    shutil.copytree(DEFAULT_CONFIG, config, ignore=shutil.ignore_patterns("__pycache__"))
    (config / "nlu" / "orders.yml").write_text(TRACK_ORDER, encoding="utf-8")
    providers = yaml.safe_load((config / "providers.yaml").read_text(encoding="utf-8"))
    providers["providers"].update(
        {
            "remote": {
                "kind": "botframework",
                "title": "the remote bot",
                "timeout_s": 5,
                "endpoint": f"{fakes_base}/bot/api/messages",
                "app_id": APP_ID,
                "app_password": "${FUZZ_REMOTE_PASSWORD}",
                "credential": "${FUZZ_REMOTE_CREDENTIAL}",
            },
            "partner": {
                "kind": "webhook",
                "title": "the partner desk",
                "timeout_s": 5,
                "url": f"{fakes_base}/hook",
                "secret": "${FUZZ_PARTNER_SECRET}",
                "previous_secret": "${FUZZ_PARTNER_PREVIOUS_SECRET}",
                "credential": "${FUZZ_PARTNER_CREDENTIAL}",
            },
            "orders": {
                "kind": "rasa",
                "title": "the orders assistant",
                "timeout_s": 5,
                "url": f"{fakes_base}/rasa",
                "channel": "callback",
                "token": "${FUZZ_RASA_TOKEN}",
                "callback_secret": "${FUZZ_RASA_SECRET}",
                "credential": "${FUZZ_ORDERS_CREDENTIAL}",
            },
        }
    )
    # The fuzzer signs in wrongly thousands of times from one address: no slowing down
    # here (tests/integration/test_desk.py tests the throttle).
    providers["providers"]["agents"]["sign_in"] = {"max_failures": 1_000_000, "delay_s": 0}
    (config / "providers.yaml").write_text(yaml.safe_dump(providers), encoding="utf-8")
    routing = yaml.safe_load((config / "routing.yaml").read_text(encoding="utf-8"))
    routes = routing["routes"]
    routes["faq"]["intents"].remove("check_balance")
    routes["disputes"]["intents"] = ["dispute_status"]
    routing["routes"] = {
        "remote": {"intents": ["check_balance"]},
        "partner": {"intents": ["dispute_charge", "duplicate_charge"]},
        "orders": {"intents": ["track_order"]},
        **routes,
    }
    (config / "routing.yaml").write_text(yaml.safe_dump(routing), encoding="utf-8")
    midtier = yaml.safe_load((config / "midtier.yaml").read_text(encoding="utf-8"))
    for kind, kit in CHANNEL_KITS.items():  # their APIs answer 404: replies are refused
        midtier["channels"][kind] = kit.settings(fakes_base)
    (config / "midtier.yaml").write_text(yaml.safe_dump(midtier), encoding="utf-8")
    return config


@dataclass(frozen=True)
class Keys:
    """What an authenticated caller has: open conversations of each provider, a token."""

    remote: str  # Connector conversation id of an open leg of the remote bot
    partner: str  # webhook conversation id
    orders: str  # Rasa sender id
    bearer: str  # a valid Connector token of the remote bot


async def say_once(ws_base: str, text: str) -> None:
    """One web chat conversation that says ``text`` (and is acknowledged)."""
    async with aiohttp.ClientSession() as http, http.ws_connect(f"{ws_base}/webchat/ws") as ws:
        client = Frames(ws)
        await client.send(type="hello", resume=None, user=None)
        await client.expect("welcome")
        await Chatter(client).say(text)


async def open_conversations(base: str, fake: Fakes) -> Keys:
    """Open one conversation to each remote provider through the web chat; get a token."""
    ws_base = base.replace("http://", "ws://")
    await say_once(ws_base, "what's my balance?")
    await say_once(ws_base, "I want to dispute a charge")
    await say_once(ws_base, "where is my order")

    def bot_conversation() -> str | None:
        found = [a["conversation"]["id"] for a in fake.bot if a.get("type") == "message"]
        return found[0] if found else None

    def hook_conversation() -> str | None:
        found = [e["conversation"] for e in fake.hook if e.get("type") == "message"]
        return found[0] if found else None

    def rasa_sender() -> str | None:
        return fake.rasa[0]["sender"] if fake.rasa else None

    remote = await fake.wait_for(bot_conversation)
    partner = await fake.wait_for(hook_conversation)
    orders = await fake.wait_for(rasa_sender)
    form = {
        "grant_type": "client_credentials",
        "client_id": APP_ID,
        "client_secret": ENV["FUZZ_REMOTE_PASSWORD"],
        "scope": "https://api.botframework.com/.default",
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{base}/adfs/oauth2/token", data=form) as r,
    ):
        assert r.status == 200, await r.text()
        bearer = (await r.json())["access_token"]
    return Keys(remote, partner, orders, bearer)


async def normal_chat_works(ws_base: str) -> None:
    """A new web chat conversation gets a bot's answer (the server still serves)."""
    async with aiohttp.ClientSession() as http, http.ws_connect(f"{ws_base}/webchat/ws") as ws:
        client = Frames(ws)
        await client.send(type="hello", resume=None, user=None)
        await client.expect("welcome")
        await Chatter(client).say("how do I reset my password?")
        await client.expect("message", lambda f: f["speaker"] == "bot")


class Records(logging.Handler):
    """Keeps every log record, to look for crashes afterwards."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@asynccontextmanager
async def fuzzed_deployment(tmp: Path) -> AsyncIterator[tuple[Running, Fakes, Records]]:
    """The fuzz deployment served with its fakes and secrets, its log recorded."""
    import pytest

    records = Records()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(records)
    root.setLevel(logging.INFO)
    try:
        with pytest.MonkeyPatch.context() as env:
            for name, value in ENV.items():
                env.setenv(name, value)
            async with fakes() as fake:
                config = write_config(tmp, fake.base)
                async with serve(config, data_dir=tmp / "data") as run:
                    yield run, fake, records
    finally:
        root.removeHandler(records)
        root.setLevel(old_level)

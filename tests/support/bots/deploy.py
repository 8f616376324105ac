"""A midtier deployment with a remote Bot Framework bot, for the remote-bot tests."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from connector.app import create_app
from connector.config import load_config
from support.bots.launch import BotProcess, run_bot
from support.bots.tls import make_tls
from support.server import DEFAULT_CONFIG, Running, free_port, serve

KIND = "adapters.providers.botframework:BotFrameworkProvider"


def write_config(
    tmp: Path,
    remote: dict[str, Any],
    extra: dict[str, Any] | None = None,
    channels: dict[str, Any] | None = None,
) -> Path:
    """bot_configs/ with a ``remote`` botframework provider serving greetings (the default).

    ``extra``: more providers; ``channels``: replaces midtier.yaml's channels.
    """
    config = tmp / "config"
    shutil.copytree(DEFAULT_CONFIG, config)
    if channels is not None:
        midtier = yaml.safe_load((config / "midtier.yaml").read_text())
        midtier["channels"] = channels
        # Continuation may only name configured channels.
        titles = midtier.get("continuation", {}).get("channels", {})
        for name in [n for n in titles if n not in channels]:
            del titles[name]
        (config / "midtier.yaml").write_text(yaml.safe_dump(midtier))
    providers = yaml.safe_load((config / "providers.yaml").read_text())
    providers["providers"]["remote"] = {
        "kind": KIND,
        "title": "the remote bot",
        "timeout_s": 10,
        **remote,
    }
    providers["providers"].update(extra or {})
    (config / "providers.yaml").write_text(yaml.safe_dump(providers))
    routing = yaml.safe_load((config / "routing.yaml").read_text())
    faq = routing["routes"]["faq"]["intents"]
    routing["routes"] = {
        "remote": {"intents": ["greet", "goodbye", "thanks"]},
        **routing["routes"],
    }
    routing["routes"]["faq"]["intents"] = [
        i for i in faq if i not in ("greet", "goodbye", "thanks")
    ]
    routing["default"] = "remote"
    (config / "routing.yaml").write_text(yaml.safe_dump(routing))
    return config


@asynccontextmanager
async def deployment(
    tmp: Path,
    kind: str = "botbuilder",
    remote: dict[str, Any] | None = None,
    bot_env: dict[str, str] | None = None,
) -> AsyncIterator[tuple[Running, BotProcess]]:
    async with run_bot(kind, tmp, bot_env) as bot:
        config = write_config(tmp, {"endpoint": bot.endpoint, **(remote or {})})
        async with serve(config, data_dir=tmp / "data") as run:
            yield run, bot


APP_ID = "6f1c2a9e-0d4b-4c59-9a55-3b8e2f1d7c01"
APP_PASSWORD = "remote-bot-password-0123456789"


@asynccontextmanager
async def secure_deployment(
    tmp: Path,
    kind: str = "botbuilder",
    extra: dict[str, Any] | None = None,
    channels: dict[str, Any] | None = None,
) -> AsyncIterator[tuple[Running, BotProcess, str]]:
    """Auth on both ways: midtier's public side (for the bot) on HTTPS, web chat on HTTP.

    The bot is configured through its environment only; yields (run, bot, public base URL).
    """
    tls = make_tls(tmp / "tls")
    port, public_port = free_port(), free_port()
    public = f"https://127.0.0.1:{public_port}"
    async with run_bot(kind, tmp, bot_auth_env(kind, public, tls.ca_file)) as bot:
        config = write_config(
            tmp,
            {"endpoint": bot.endpoint, "app_id": APP_ID, "app_password": "${REMOTE_BOT_PASSWORD}"},
            extra,
            channels,
        )
        app = create_app(load_config(config), tmp / "data", public_url=public)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await web.TCPSite(
            runner, "127.0.0.1", public_port, ssl_context=tls.server_context()
        ).start()
        try:
            yield Running(base=f"http://127.0.0.1:{port}", app=app), bot, public
        finally:
            await runner.cleanup()


def bot_auth_env(kind: str, public: str, ca_file: Path) -> dict[str, str]:
    """What a stock bot is configured with to trust midtier as its channel (no code)."""
    return {
        "MicrosoftAppId": APP_ID,
        "MicrosoftAppPassword": APP_PASSWORD,
        "TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL": f"{public}/v1/.well-known/openidconfiguration",
        "TO_BOT_FROM_CHANNEL_TOKEN_ISSUER": public,
        "TO_CHANNEL_FROM_BOT_LOGIN_URL": f"{public}/adfs",
        "TO_CHANNEL_FROM_BOT_OAUTH_SCOPE": "https://api.botframework.com",
        "REQUESTS_CA_BUNDLE": str(ca_file),
    }

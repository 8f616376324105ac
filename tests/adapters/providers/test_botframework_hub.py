"""One Connector API per midtier app, shared by all of its ``botframework`` providers.

Two apps run side by side in this process, over real HTTP on 127.0.0.1, each with its own
bots: each app's token endpoint, OpenID metadata and signing key are its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from support.bots.deploy import KIND, write_config
from support.server import AGENT_TOKEN, Running, serve

from adapters.providers.bf_auth import CONNECTOR_AUDIENCE, KEY_FILE
from adapters.providers.bf_connector import JWKS_PATH, METADATA_PATH, TOKEN_PATH, ConnectorHub

ONE_ID = "6f1c2a9e-0d4b-4c59-9a55-3b8e2f1d7c01"
TWO_ID = "0b7d1e54-5c1f-4a0e-8f63-2d9c4b1a6e02"
NOWHERE = "http://127.0.0.1:9/api/messages"  # the bots are never called here


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIDTIER_AGENT_TOKEN", AGENT_TOKEN)
    monkeypatch.setenv("ONE_BOT_PASSWORD", "one-bot-password-0123456789")
    monkeypatch.setenv("TWO_BOT_PASSWORD", "two-bot-password-0123456789")


def _config(tmp: Path, app_id: str, password_var: str) -> Path:
    """Two botframework providers: ``remote`` (auth on, as a Teams bot) and ``emulated``."""
    remote = {
        "endpoint": NOWHERE,
        "app_id": app_id,
        "app_password": f"${{{password_var}}}",
        "channel_id": "msteams",
    }
    emulated = {"kind": KIND, "endpoint": NOWHERE, "auth": False}
    return write_config(tmp, remote, {"emulated": emulated})


def _hub(run: Running) -> ConnectorHub:
    hub = run.engine.providers["remote"].hub
    assert isinstance(hub, ConnectorHub)
    return hub


async def _token(http: aiohttp.ClientSession, run: Running, app_id: str, secret: str) -> int:
    form = {
        "grant_type": "client_credentials",
        "client_id": app_id,
        "client_secret": secret,
        "scope": f"{CONNECTOR_AUDIENCE}/.default",
    }
    async with http.post(run.base + TOKEN_PATH, data=form) as response:
        return response.status


async def _get(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as response:
        assert response.status == 200
        return await response.json()


async def test_every_botframework_provider_of_an_app_shares_its_one_connector(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path / "one", ONE_ID, "ONE_BOT_PASSWORD")
    async with serve(config, data_dir=tmp_path / "one" / "data") as run:
        hub = _hub(run)
        assert run.engine.providers["emulated"].hub is hub
        assert sorted(hub.providers) == ["emulated", "remote"]
        resources = run.app.router.resources()
        token_routes = [r for res in resources if res.canonical == TOKEN_PATH for r in res]
        assert len(token_routes) == 1  # mounted once, by the app
        async with aiohttp.ClientSession() as http:
            keys = await _get(http, run.base + JWKS_PATH)
        # Endorsed for midtier, every configured channel and the channel_id a bot is told.
        [key] = keys["keys"]
        assert key["endorsements"] == ["directline", "midtier", "msteams", "webchat"]
        assert (tmp_path / "one" / "data" / KEY_FILE).exists()


async def test_a_second_app_in_the_process_has_a_connector_of_its_own(tmp_path: Path) -> None:
    one_config = _config(tmp_path / "one", ONE_ID, "ONE_BOT_PASSWORD")
    two_config = _config(tmp_path / "two", TWO_ID, "TWO_BOT_PASSWORD")
    async with (
        serve(one_config, data_dir=tmp_path / "one" / "data") as one,
        serve(two_config, data_dir=tmp_path / "two" / "data") as two,
        aiohttp.ClientSession() as http,
    ):
        assert _hub(one) is not _hub(two)
        # Each app grants tokens to its own bots only.
        assert await _token(http, one, ONE_ID, "one-bot-password-0123456789") == 200
        assert await _token(http, one, TWO_ID, "two-bot-password-0123456789") == 401
        assert await _token(http, two, TWO_ID, "two-bot-password-0123456789") == 200
        assert await _token(http, two, ONE_ID, "one-bot-password-0123456789") == 401
        # Each tells bots where its own keys are, and signs with a key of its own.
        kids = set()
        for run in (one, two):
            metadata = await _get(http, run.base + METADATA_PATH)
            assert metadata["jwks_uri"] == run.base + JWKS_PATH
            assert metadata["token_endpoint"] == run.base + TOKEN_PATH
            [key] = (await _get(http, metadata["jwks_uri"]))["keys"]
            kids.add(key["kid"])
        assert len(kids) == 2

"""The Direct Line page over real HTTP: its title and Content-Security-Policy, Web Chat's
bundle served by midtier (the very file the fetch script pins), and the token endpoint that
hands the page a token and never the secret."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import jwt
import pytest
from support.channel_world import channel_config, environment
from support.directline import ENV, SECRET, DirectLine, directline_midtier, settings
from support.server import REPO, Running

from adapters.channels import directline_page
from connector.checks import check_config


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def run(tmp_path: Path) -> AsyncIterator[Running]:
    async with directline_midtier(tmp_path, title="Acme Pay chat") as running:
        yield running


def _policy(header: str) -> dict[str, list[str]]:
    return {
        name: values
        for name, *values in (part.split() for part in header.split(";") if part.strip())
    }


async def test_the_page_has_its_title_and_a_tight_policy(
    run: Running, http: aiohttp.ClientSession
) -> None:
    nonces = []
    for _ in range(2):
        async with http.get(f"{run.base}/directline/") as response:
            assert response.status == 200 and response.content_type == "text/html"
            page = await response.text()
            policy = _policy(response.headers["Content-Security-Policy"])
        assert "<title>Acme Pay chat</title>" in page
        assert policy["default-src"] == ["'none'"]
        assert policy["script-src"] == ["'self'"]  # no inline script, no eval
        assert policy["connect-src"] == ["'self'"]
        [nonce] = [v for v in policy["style-src"] if v.startswith("'nonce-")]
        assert f'nonce="{nonce[7:-1]}"' in page
        assert "'unsafe-inline'" not in policy["style-src"]
        assert policy["frame-ancestors"] == ["'self'"]
        assert SECRET not in page and "cdn" not in page.lower()
        nonces.append(nonce)
    assert nonces[0] != nonces[1]
    async with http.get(f"{run.base}/directline", allow_redirects=False) as response:
        assert response.status == 308 and response.headers["Location"] == "/directline/"


async def test_the_bundle_is_the_one_the_fetch_script_pins(
    run: Running, http: aiohttp.ClientSession
) -> None:
    script = (REPO / "scripts" / "fetch-webchat.sh").read_text()
    [pinned] = re.findall(r'^bundle_sha512="([^"]+)"$', script, re.M)
    async with http.get(f"{run.base}/directline/webchat.js") as response:
        assert response.status == 200 and response.content_type == "text/javascript"
        body = await response.read()
    assert base64.b64encode(hashlib.sha512(body).digest()).decode() == pinned
    async with http.get(f"{run.base}/directline/page.js") as response:
        assert response.status == 200 and b"createDirectLine" in await response.read()


async def test_the_token_endpoint_gives_a_token_for_a_new_user_and_never_the_secret(
    run: Running, http: aiohttp.ClientSession
) -> None:
    users = set()
    for _ in range(2):
        async with http.post(f"{run.base}/directline/token") as response:
            assert response.status == 200
            raw = await response.text()
            answer = await response.json()
        assert SECRET not in raw and answer["expires_in"] == 1800
        claims = jwt.decode(answer["token"], options={"verify_signature": False})
        assert claims["conv"] == answer["conversationId"] and claims["user"].startswith("dl_")
        users.add(claims["user"])
        client = DirectLine(http, run)
        client.token = answer["token"]
        assert (await client.start())["conversationId"] == answer["conversationId"]
    assert len(users) == 2
    async with http.get(f"{run.base}/directline/token") as response:
        assert response.status == 405


async def test_a_missing_bundle_is_a_503_and_no_page_path_means_no_page(
    tmp_path: Path, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(directline_page, "BUNDLE", "static/vendor/not-fetched.js")
    async with (
        directline_midtier(tmp_path / "a") as run,
        http.get(f"{run.base}/directline/webchat.js") as response,
    ):
        assert response.status == 503
    async with directline_midtier(tmp_path / "b", page_path=None) as run:
        for path in ("/directline/", "/directline/webchat.js"):
            async with http.get(run.base + path) as response:
                assert response.status == 404
        async with http.post(f"{run.base}/directline/token") as response:
            assert response.status == 404
        await DirectLine(http, run).generate()  # the API itself is there


def test_midtier_check_reports_a_missing_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(directline_page, "BUNDLE", "static/vendor/not-fetched.js")
    with environment(ENV):
        problems = [
            str(e) for e in check_config(channel_config(tmp_path, "directline", settings()))
        ]
    assert any(
        p.startswith("midtier.yaml: channels.directline.page_path: Web Chat") for p in problems
    )

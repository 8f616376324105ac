"""The fake Azure's token endpoint, checked against botbuilder's own client: what
``MicrosoftAppCredentials`` (MSAL underneath) asks for is what the channel asks for, and
the answer our fake gives is one it takes.

MSAL takes only an ``https`` authority, so the fake Azure is reached here through a small
TLS front on 127.0.0.1 (a private CA the thread trusts via ``REQUESTS_CA_BUNDLE``), and its
authority is an ``/adfs`` one, for which MSAL asks no Microsoft host for instance discovery.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import jwt
import pytest
from aiohttp import web
from botframework.connector.auth import MicrosoftAppCredentials
from support.bots.tls import make_tls
from support.channel_kits.botframework import (
    APP_ID,
    APP_PASSWORD,
    TOKEN_PATH,
    BotFrameworkKit,
    adapter,
    reply_to,
    request_of,
)
from support.fake_platform import FakePlatform, fake_platform
from support.server import free_port

from adapters.providers.bf_auth import CONNECTOR_AUDIENCE


@pytest.fixture
async def azure() -> AsyncIterator[tuple[FakePlatform, BotFrameworkKit]]:
    async with fake_platform() as platform:
        kit = BotFrameworkKit()
        kit.prepare(platform)
        yield platform, kit


async def _tls_front(platform: FakePlatform, tmp_path: Path) -> tuple[web.AppRunner, str, Path]:
    """An HTTPS server passing every request on to the fake Azure, unchanged."""
    tls = make_tls(tmp_path / "tls")
    session = aiohttp.ClientSession()

    async def forward(request: web.Request) -> web.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host",)}
        async with session.request(
            request.method, platform.base_url + request.path_qs, data=await request.read(),
            headers=headers,
        ) as answer:  # fmt: skip
            return web.Response(
                status=answer.status, body=await answer.read(), content_type=answer.content_type
            )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    app.on_cleanup.append(lambda _app: session.close())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=tls.server_context()).start()
    return runner, f"https://127.0.0.1:{port}", tls.ca_file


async def test_botbuilders_own_credentials_get_a_token_from_the_fake_azure_as_we_do(
    azure: tuple[FakePlatform, BotFrameworkKit], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform, kit = azure
    runner, front, ca_file = await _tls_front(platform, tmp_path)
    try:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_file))
        platform.route(
            "GET",
            "/adfs/.well-known/openid-configuration",
            lambda _call: {
                "issuer": front + "/adfs",
                "authorization_endpoint": front + "/adfs/oauth2/authorize",
                "token_endpoint": front + TOKEN_PATH,
            },
        )
        credentials = MicrosoftAppCredentials(APP_ID, APP_PASSWORD)
        credentials.oauth_endpoint = front + "/adfs"  # as TO_CHANNEL_FROM_BOT_LOGIN_URL does
        try:
            token = await asyncio.to_thread(credentials.get_access_token)
        finally:
            if credentials.app is not None:
                credentials.app.http_client.close()  # MSAL's pooled connection
    finally:
        await runner.cleanup()
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["aud"] == CONNECTOR_AUDIENCE and claims["appid"] == APP_ID
    [theirs] = kit.token_requests

    async with adapter(kit, tmp_path) as teams:
        request = request_of(kit.signed(kit.activity("message_teams_personal")))
        await teams.verify(request)
        [inbound] = await teams.parse(request)
        await teams.send(reply_to(inbound, text="hi"))
    ours = kit.token_requests[-1]
    assert ours is not theirs
    # Every field we send, MSAL sends with the same value (it adds its own client_info).
    assert ours.form.items() <= theirs.form.items()
    assert set(ours.form) == {"grant_type", "client_id", "client_secret", "scope"}

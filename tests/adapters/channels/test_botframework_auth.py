"""What the Bot Framework channel lets in: every token case, each checked against
botframework-connector's own ``JwtTokenValidation`` (pointed at the same fake OpenID
metadata), the signing-key cache, and the Emulator's no-auth mode."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from botbuilder.schema import Activity as BotbuilderActivity
from botframework.connector.auth import (
    ChannelValidation,
    JwtTokenExtractor,
    JwtTokenValidation,
    SimpleCredentialProvider,
)
from cryptography.hazmat.primitives import serialization
from pydantic import ValidationError
from support.channel_kits import WebhookCall
from support.channel_kits.botframework import (
    APP_ID,
    APP_PASSWORD,
    KEYS_PATH,
    METADATA_PATH,
    BotFrameworkKit,
    adapter,
    request_of,
    signing_key,
)
from support.fake_platform import FakePlatform, fake_platform

from adapters.channels.botframework import BotFrameworkChannel, BotFrameworkSettings
from adapters.channels.botframework_auth import OpenIdKeys
from adapters.providers.bf_auth import TokenIssuer
from connector.errors import AuthError, Forbidden

OTHER_BOT = "0b7d1e54-5c1f-4a0e-8f63-2d9c4b1a6e02"


@pytest.fixture
async def azure() -> AsyncIterator[tuple[FakePlatform, BotFrameworkKit]]:
    async with fake_platform() as platform:
        kit = BotFrameworkKit()
        kit.prepare(platform)
        yield platform, kit


@pytest.fixture
async def teams(
    azure: tuple[FakePlatform, BotFrameworkKit], tmp_path: Path
) -> AsyncIterator[BotFrameworkChannel]:
    async with adapter(azure[1], tmp_path) as channel:
        yield channel


async def _verdict(channel: BotFrameworkChannel, call: WebhookCall) -> int:
    """0 if the channel lets the call in, else the status it refuses it with."""
    try:
        await channel.verify(request_of(call))
    except Forbidden:
        return 403
    except AuthError:
        return 401
    return 0


def _botbuilder_accepts(kit: BotFrameworkKit, call: WebhookCall, data: dict[str, Any]) -> bool:
    """botframework-connector's verdict on the same request (it fetches the fake Azure's
    metadata with ``requests``, so it runs in a thread with a loop of its own)."""
    activity = BotbuilderActivity(channel_id=data["channelId"], service_url=data["serviceUrl"])
    header = call.headers.get("Authorization", "")
    credentials = SimpleCredentialProvider(APP_ID, APP_PASSWORD)
    try:
        asyncio.run(JwtTokenValidation.authenticate_request(activity, header, credentials))
    except Exception:  # PermissionError, jwt errors, its own bare Exceptions...
        return False
    return True


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hs256_with_the_public_key(kit: BotFrameworkKit) -> str:
    """The classic algorithm confusion: HMAC keyed with the (public) RSA key."""
    public = (
        signing_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    claims = jwt.decode(kit.token(), options={"verify_signature": False})
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kit.issuer.kid}).encode())
    body = _b64(json.dumps(claims).encode())
    mac = hmac.new(public, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(mac)}"


def _call(kit: BotFrameworkKit, case: str) -> tuple[WebhookCall, dict[str, Any]]:
    data = kit.activity("message_teams_personal")
    now = int(time.time())
    if case == "slack":
        data["channelId"] = "slack"
    if case == "elsewhere":
        data["serviceUrl"] = "https://attacker.example.com/"
    tokens: dict[str, Callable[[], str]] = {
        "skewed": lambda: kit.token(exp=now - 200, nbf=now - 3800, iat=now - 3800),
        "expired": lambda: kit.token(exp=now - 400, nbf=now - 4000, iat=now - 4000),
        "early": lambda: kit.token(nbf=now + 400, iat=now + 400),
        "other bot": lambda: kit.token(aud=OTHER_BOT),
        "elsewhere": lambda: kit.token(),  # issued for the real serviceUrl
        "other issuer": lambda: kit.token(iss="https://sts.windows.net/d6d49420-f39b/"),
        "no serviceurl": lambda: kit.token(serviceurl=None),
        "no exp": lambda: kit.token(exp=None),
        "unknown kid": lambda: jwt.encode(
            jwt.decode(kit.token(), options={"verify_signature": False}),
            signing_key(),
            algorithm="RS256",
            headers={"kid": "not-a-key-of-azure"},
        ),
        "hs256": lambda: _hs256_with_the_public_key(kit),
        "nested header": lambda: _b64(b"[" * 5000) + ".e30.x",
        "cut": lambda: kit.token()[:-20],
    }
    call = kit.signed(data, token=tokens[case]() if case in tokens else None)
    if case == "forged":
        call = kit.forged(call)
    if case == "no header":
        call = WebhookCall(body=call.body, headers={"Content-Type": "application/json"})
    if case == "basic":
        call = WebhookCall(body=call.body, headers={"Authorization": "Basic Zm9vOmJhcg=="})
    return call, data


# (case, our status (0: let in), whether botframework-connector lets it in)
CASES = [
    ("azure", 0, True),
    ("skewed", 0, True),  # expired 200 s ago: within the 5 minutes of skew
    ("forged", 401, False),
    ("other bot", 403, False),
    ("expired", 401, False),  # beyond the skew
    ("early", 401, False),
    ("other issuer", 401, False),
    ("slack", 401, False),  # a channel the key is not endorsed for
    ("elsewhere", 401, False),  # a serviceUrl the token was not issued for
    ("no serviceurl", 401, False),
    # botframework-connector does not require exp (PyJWT checks it only when present);
    # Azure always sends it, and a token that never expires is not one we take.
    ("no exp", 401, True),
    ("unknown kid", 401, False),
    ("hs256", 401, False),
    ("nested header", 401, False),
    ("cut", 401, False),
    ("no header", 401, False),
    ("basic", 401, False),
]


@pytest.mark.parametrize(("case", "status", "theirs"), CASES, ids=[c[0] for c in CASES])
async def test_each_token_is_judged_as_botframework_connector_judges_it(
    teams: BotFrameworkChannel,
    azure: tuple[FakePlatform, BotFrameworkKit],
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    status: int,
    theirs: bool,
) -> None:
    platform, kit = azure
    metadata = platform.base_url + METADATA_PATH
    monkeypatch.setattr(ChannelValidation, "open_id_metadata_endpoint", metadata)
    monkeypatch.setattr(JwtTokenExtractor, "metadataCache", {})
    call, data = _call(kit, case)
    assert await _verdict(teams, call) == status
    assert await asyncio.to_thread(_botbuilder_accepts, kit, call, data) is theirs


async def test_a_valid_token_with_a_serviceurl_it_does_not_match_never_reaches_parse(
    teams: BotFrameworkChannel, azure: tuple[FakePlatform, BotFrameworkKit]
) -> None:
    call, _ = _call(azure[1], "elsewhere")
    with pytest.raises(AuthError, match="serviceUrl"):
        await teams.verify(request_of(call))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def keys(
    azure: tuple[FakePlatform, BotFrameworkKit],
) -> AsyncIterator[tuple[OpenIdKeys, Clock]]:
    clock = Clock()
    async with aiohttp.ClientSession() as http:
        yield OpenIdKeys(lambda: http, azure[0].base_url + METADATA_PATH, clock=clock), clock


async def test_a_rotated_key_is_fetched_when_a_token_names_it_but_at_most_every_five_minutes(
    azure: tuple[FakePlatform, BotFrameworkKit], keys: tuple[OpenIdKeys, Clock]
) -> None:
    platform, kit = azure
    cache, clock = keys
    old = kit.issuer.kid
    assert await cache.get(old) is not None
    kit.issuer = TokenIssuer(kit.issuer.issuer, signing_key(2))  # Azure rotates its key
    assert kit.issuer.kid != old
    clock.now += 60
    assert await cache.get(kit.issuer.kid) is None  # refreshed a minute ago: not again
    assert len(platform.to(KEYS_PATH, "GET")) == 1
    clock.now += 241
    assert await cache.get(kit.issuer.kid) is not None
    assert len(platform.to(KEYS_PATH, "GET")) == 2


async def test_the_keys_are_fetched_again_after_a_day(
    azure: tuple[FakePlatform, BotFrameworkKit], keys: tuple[OpenIdKeys, Clock]
) -> None:
    platform, kit = azure
    cache, clock = keys
    await cache.load()
    clock.now += 23 * 3600
    assert await cache.get(kit.issuer.kid) is not None
    assert len(platform.to(METADATA_PATH, "GET")) == 1
    clock.now += 3601
    assert await cache.get(kit.issuer.kid) is not None
    assert len(platform.to(METADATA_PATH, "GET")) == 2


async def test_an_outage_of_the_key_service_keeps_the_keys_already_fetched(
    azure: tuple[FakePlatform, BotFrameworkKit], keys: tuple[OpenIdKeys, Clock]
) -> None:
    platform, kit = azure
    cache, clock = keys
    await cache.load()
    clock.now += 25 * 3600
    platform.fail_next(1, status=503)
    assert await cache.get(kit.issuer.kid) is not None
    assert len(platform.to(METADATA_PATH, "GET")) == 2  # it did try


async def test_concurrent_first_requests_fetch_the_keys_once(
    azure: tuple[FakePlatform, BotFrameworkKit], keys: tuple[OpenIdKeys, Clock]
) -> None:
    platform, kit = azure
    cache, _ = keys
    found = await asyncio.gather(*(cache.get(kit.issuer.kid) for _ in range(5)))
    assert all(k is not None for k in found)
    assert len(platform.to(METADATA_PATH, "GET")) == 1


async def test_the_emulator_without_credentials_is_let_in_only_when_allowed(
    azure: tuple[FakePlatform, BotFrameworkKit], tmp_path: Path
) -> None:
    kit = azure[1]
    call, _ = _call(kit, "no header")
    async with adapter(kit, tmp_path) as secure:
        assert await _verdict(secure, call) == 401
    local = {"app_id": "", "app_password": None, "allow_unauthenticated": True}
    async with adapter(kit, tmp_path, **local) as emulator:
        assert await _verdict(emulator, call) == 0
        # A token that is sent is still checked: it is not for a bot without an app id.
        assert await _verdict(emulator, _call(kit, "azure")[0]) == 403


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"app_id": APP_ID, "app_password": "x", "allow_unauthenticated": True}, "only for"),
        ({"app_id": "", "app_password": ""}, "required"),
        ({"app_id": APP_ID, "app_password": ""}, "required"),
        ({"app_id": APP_ID, "app_password": "x", "path_alias": "/channels/x"}, "outside"),
        ({"app_id": APP_ID, "app_password": "x", "path_alias": "api/messages"}, "pattern"),
    ],
)
def test_settings_refuse_auth_left_half_on_or_off(settings: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        BotFrameworkSettings.model_validate(settings)

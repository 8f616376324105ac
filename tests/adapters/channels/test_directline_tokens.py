"""Direct Line's tokens against a real midtier: generated for a token server, forged,
expired, another conversation's, refreshed, signed by a rotated secret; and what any string
presented as a token gets (a 401, nothing else)."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from support.channel_world import channel_config, environment
from support.directline import (
    ENV,
    OTHER_SECRET,
    SECRET,
    DirectLine,
    claims_of,
    directline_midtier,
    payload,
    settings,
)
from support.server import Running, serve

from adapters.channels.directline import DirectLineSettings
from adapters.channels.directline_tokens import LEEWAY_S, Tokens, derive_key
from connector.checks import check_config
from connector.errors import AuthError


@pytest.fixture
async def run(tmp_path: Path) -> AsyncIterator[Running]:
    async with directline_midtier(tmp_path) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_a_token_server_gets_a_token_bound_to_its_user_and_a_new_conversation(
    run: Running, http: aiohttp.ClientSession
) -> None:
    client = DirectLine(http, run)
    status, answer = await client.call(
        "POST", "/tokens/generate", SECRET, json=payload("tokens_generate.json")
    )
    assert status == 200 and answer["expires_in"] == 1800
    assert answer["conversationId"].startswith("dlc_") and len(answer["conversationId"]) == 31
    read = claims_of(answer["token"])
    assert read["user"] == "dl_user_id" and read["conv"] == answer["conversationId"]
    assert read["exp"] - read["iat"] == 1800
    _, again = await client.call("POST", "/tokens/generate", SECRET)
    assert again["conversationId"] != answer["conversationId"]
    assert "user" not in claims_of(again["token"])


async def test_tokens_generate_takes_only_the_secret(
    run: Running, http: aiohttp.ClientSession
) -> None:
    client = DirectLine(http, run)
    token = (await client.generate())["token"]
    assert (await client.call("POST", "/tokens/generate", token))[0] == 403
    assert (await client.call("POST", "/tokens/generate", OTHER_SECRET))[0] == 401
    async with http.post(client.base + "/tokens/generate") as response:
        assert response.status == 401
    basic = {"Authorization": f"Basic {SECRET}"}
    async with http.post(client.base + "/tokens/generate", headers=basic) as response:
        assert response.status == 401
    bad_user = {"user": {"id": "someone-else"}}
    assert (await client.call("POST", "/tokens/generate", SECRET, json=bad_user))[0] == 400


async def _calls_with(client: DirectLine, token: str, conversation: str) -> list[int]:
    """The statuses of every conversation call made with ``token``."""
    path = f"/conversations/{conversation}"
    message = {"type": "message", "from": {"id": "u1"}, "text": "hi"}
    return [
        (await client.call("POST", "/conversations", token))[0],
        (await client.call("POST", "/tokens/refresh", token))[0],
        (await client.call("GET", path, token))[0],
        (await client.call("GET", path + "/activities", token))[0],
        (await client.call("POST", path + "/activities", token, json=message))[0],
        (await client.call("POST", path + "/upload", token))[0],
    ]


async def test_a_forged_token_opens_nothing_and_touches_nothing(
    run: Running, http: aiohttp.ClientSession
) -> None:
    client = DirectLine(http, run)
    real = (await client.generate())["token"]
    conversation = claims_of(real)["conv"]
    other_key = Tokens("directline", [OTHER_SECRET], 1800).issue(conversation)[0]
    unsigned = jwt.encode(claims_of(real), None, algorithm="none")
    head, _, signature = real.split(".")
    swapped = jwt.encode({**claims_of(real), "conv": "dlc_" + "A" * 27}, "k" * 32).split(".")[1]
    for forged in (other_key, unsigned, f"{head}.{swapped}.{signature}", real[:-2], "garbage"):
        assert await _calls_with(client, forged, conversation) == [401] * 6
    assert await run.engine.store.list_sessions() == []


async def test_an_expired_token_is_refused_and_cannot_be_refreshed(
    run: Running, http: aiohttp.ClientSession
) -> None:
    client = DirectLine(http, run)
    tokens = Tokens("directline", [SECRET], 1800)
    conversation = "dlc_" + "b" * 27
    expired, _ = tokens.issue(conversation, now=time.time() - 1801 - LEEWAY_S)
    assert await _calls_with(client, expired, conversation) == [401] * 6
    status, answer = await client.call("POST", "/tokens/refresh", expired)
    assert status == 401 and "expired" in answer["reason"] and expired not in answer["reason"]


async def test_a_token_opens_only_its_own_conversation(
    run: Running, http: aiohttp.ClientSession
) -> None:
    client, other = DirectLine(http, run), DirectLine(http, run)
    await client.generate()
    await other.generate()
    assert client.token is not None and other.conversation is not None
    statuses = await _calls_with(client, client.token, other.conversation)
    # Starting and refreshing act on the token's own conversation; the rest are refused.
    assert statuses == [201, 200, 403, 403, 403, 403]
    assert await run.engine.store.by_channel("directline", other.conversation) is None


async def test_a_refreshed_token_keeps_its_conversation_and_user(
    run: Running, http: aiohttp.ClientSession
) -> None:
    client = DirectLine(http, run)
    first = (await client.generate("dl_refresher"))["token"]
    status, answer = await client.call("POST", "/tokens/refresh", first)
    assert status == 200 and answer["expires_in"] == 1800
    assert claims_of(answer["token"])["user"] == "dl_refresher"
    assert answer["conversationId"] == client.conversation
    assert (await client.call("POST", "/tokens/refresh", SECRET))[0] == 403


async def test_a_rotated_secret_still_opens_what_it_signed(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    rotated = ["${MIDTIER_DIRECTLINE_SECRET}", "${MIDTIER_DIRECTLINE_OLD_SECRET}"]
    async with directline_midtier(tmp_path, secret=rotated) as run:
        client = DirectLine(http, run)
        conversation = "dlc_" + "c" * 27
        old = Tokens("directline", [OTHER_SECRET], 1800).issue(conversation)[0]
        path = f"/conversations/{conversation}/activities"
        assert (await client.call("GET", path, old))[0] == 200
        assert (await client.call("POST", "/tokens/generate", OTHER_SECRET))[0] == 200
        fresh = (await client.generate())["token"]
        # New tokens are signed with the first secret.
        jwt.decode(
            fresh,
            derive_key(SECRET, "directline"),
            algorithms=["HS256"],
            audience=("directline:directline:conversation"),
        )


def test_settings_are_strict_and_want_long_secrets() -> None:
    good = "x" * 32
    assert DirectLineSettings.model_validate({"secret": good}).secret == [good]
    for bad in ({"secret": "short"}, {"secret": [good, "short"]}, {"secret": good, "colour": 1}):
        with pytest.raises(ValidationError):
            DirectLineSettings.model_validate(bad)
    # None given: midtier keeps one of its own (see the next test).
    assert DirectLineSettings.model_validate({}).secret == []


async def test_without_a_configured_secret_one_is_made_once_and_kept(tmp_path: Path) -> None:
    async with serve(_own_secret_config(tmp_path), data_dir=tmp_path / "data") as run:
        kept = (tmp_path / "data" / "directline-secret").read_text().strip()
        assert (
            len(kept) >= 32
            and (tmp_path / "data" / "directline-secret").stat().st_mode & 0o077 == 0
        )
        async with aiohttp.ClientSession() as http:
            generate = f"{run.base}/v3/directline/tokens/generate"
            headers = {"Authorization": f"Bearer {kept}"}
            async with http.post(generate, headers=headers) as answer:
                assert answer.status == 200
                first = (await answer.json())["token"]
    async with serve(_own_secret_config(tmp_path), data_dir=tmp_path / "data") as run:
        assert (tmp_path / "data" / "directline-secret").read_text().strip() == kept
        async with aiohttp.ClientSession() as http:
            # A token signed before the restart still opens its conversation.
            start = f"{run.base}/v3/directline/conversations"
            async with http.post(start, headers={"Authorization": f"Bearer {first}"}) as answer:
                assert answer.status in (200, 201)


def _own_secret_config(tmp_path: Path) -> Path:
    block = {k: v for k, v in settings().items() if k != "secret"}
    return channel_config(tmp_path, "directline", block)


def test_config_problems_name_the_file_and_key(tmp_path: Path) -> None:
    config = channel_config(tmp_path, "directline", settings(bogus=1))
    with environment(ENV):
        problems = [str(e) for e in check_config(config)]
    assert "midtier.yaml: channels.directline.bogus: unknown key" in problems
    with environment(ENV):
        del os.environ["MIDTIER_DIRECTLINE_SECRET"]  # put back by environment()
        problems = [str(e) for e in check_config(config)]
    assert any(
        p.startswith("midtier.yaml: channels.directline.secret: environment variable")
        for p in problems
    ), problems
    with environment({**ENV, "MIDTIER_DIRECTLINE_SECRET": "short"}):
        problems = [
            str(e) for e in check_config(channel_config(tmp_path, "directline", settings()))
        ]
    assert any("channels.directline.secret" in p and "32 characters" in p for p in problems)


@given(st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.hex()))
def test_any_string_presented_as_a_token_is_an_auth_error(presented: str) -> None:
    tokens = Tokens("directline", [SECRET], 1800)
    with pytest.raises(AuthError):
        tokens.read(presented)
    with pytest.raises(AuthError):
        tokens.read(presented + "." + presented + "." + presented, "stream")

"""Direct Line's REST API against a real midtier: tokens (forged, expired, another
conversation's, refreshed, signed by a rotated secret), starting and posting, and bad input
that is a 4xx, never a 500. Streams and watermarks: ``test_directline_stream.py``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from pydantic import ValidationError
from support.directline import (
    OTHER_SECRET,
    SECRET,
    DirectLine,
    bot_said,
    directline_midtier,
    payload,
)
from support.server import Running

from adapters.channels.directline import DirectLineSettings
from adapters.channels.directline_tokens import Tokens, derive_key


@pytest.fixture
async def run(tmp_path: Path) -> AsyncIterator[Running]:
    async with directline_midtier(tmp_path) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def claims_of(token: str) -> dict[str, Any]:
    """What a client (Web Chat) reads of a token without the key."""
    read: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return read


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
    expired, _ = tokens.issue(conversation, now=time.time() - 1801)
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
    for bad in ({"secret": "short"}, {"secret": []}, {"secret": good, "colour": "red"}, {}):
        with pytest.raises(ValidationError):
            DirectLineSettings.model_validate(bad)


async def test_starting_is_a_201_and_starting_again_with_the_token_a_200(
    run: Running, http: aiohttp.ClientSession
) -> None:
    client = DirectLine(http, run)
    await client.generate()
    body = payload("start_conversation.json")  # what Web Chat sends
    status, first = await client.call("POST", "/conversations", json=body)
    assert status == 201 and first["conversationId"] == client.conversation
    assert first["streamUrl"].startswith(run.ws_base + "/v3/directline/conversations/")
    assert "referenceGrammarId" in first and first["expires_in"] <= 1800
    status, second = await client.call("POST", "/conversations")
    assert status == 200 and second["conversationId"] == client.conversation
    # With the secret, each start is a new conversation with a token of its own.
    status, mine = await client.call("POST", "/conversations", SECRET)
    assert status == 201 and mine["conversationId"] != client.conversation
    assert claims_of(mine["token"])["conv"] == mine["conversationId"]


async def test_a_posted_message_is_recorded_with_unverified_claims_and_answered_with_its_id(
    run: Running, http: aiohttp.ClientSession
) -> None:
    client = DirectLine(http, run)
    await client.start(SECRET)
    status, answer = await client.post(payload("send_activity.json"))
    assert status == 200
    await run.engine.inbound.idle()
    session = await run.engine.store.by_channel("directline", client.conversation or "")
    assert session is not None and session.user_id == "user1"
    assert session.claims == {"sub": "user1", "channel": "directline", "verified": False}
    [line] = [e for e in await run.engine.store.transcript(session.id) if e.speaker == "user"]
    assert line.text == "hello" and line.activity["id"] == answer["id"]
    assert line.activity["locale"] == "en-EN"
    polled = await client.poll()
    assert [a["text"] for a in polled["activities"] if a["from"]["id"] == "user1"] == ["hello"]


async def test_a_repeated_client_activity_id_is_recorded_once_with_the_same_answer(
    run: Running, http: aiohttp.ClientSession
) -> None:
    client = DirectLine(http, run)
    await client.generate("dl_gQGsJsvw0W9vgATpHeIaLL49")
    await client.start()
    sent = payload("webchat_message.json")
    first, again = await client.post(sent), await client.post(sent)
    assert first == again and first[0] == 200
    session = await run.engine.store.by_channel("directline", client.conversation or "")
    assert session is not None
    said = [e for e in await run.engine.store.transcript(session.id) if e.speaker == "user"]
    assert [(e.text, e.ref) for e in said] == [("hi", "f661n0o8sn")]


async def test_the_user_a_token_names_cannot_be_impersonated(
    run: Running, http: aiohttp.ClientSession
) -> None:
    bound = DirectLine(http, run)
    await bound.generate("dl_alice")
    status, _ = await bound.post({"type": "message", "from": {"id": "dl_bob"}, "text": "hi"})
    assert status == 403
    status, _ = await bound.post({"type": "message", "text": "it's me"})  # no from: the token's
    assert status == 200
    anonymous = DirectLine(http, run)
    await anonymous.generate()
    status, _ = await anonymous.post({"type": "message", "from": {"id": "dl_alice"}, "text": "hi"})
    assert status == 403  # dl_ ids are the token server's to give
    await run.engine.inbound.idle()
    [session] = await run.engine.store.list_sessions()
    assert session.user_id == "dl_alice" and session.claims["sub"] == "dl_alice"


async def test_typing_is_signalled_and_not_recorded(
    run: Running, http: aiohttp.ClientSession
) -> None:
    client = DirectLine(http, run)
    await client.generate("dl_typist")
    status, answer = await client.post({"type": "typing", "from": {"id": "dl_typist"}})
    assert status == 200 and answer["id"]
    assert await run.engine.store.list_sessions() == []


async def test_a_conversation_whose_session_ended_takes_no_more_messages(
    run: Running, http: aiohttp.ClientSession
) -> None:
    client = DirectLine(http, run)
    await client.generate("dl_late")
    await client.say("hi", user="dl_late")
    await run.engine.inbound.idle()  # answered: the FAQ bot replies in its turn
    assert [a for a in (await client.poll())["activities"] if bot_said(bool)(a)]
    session = await run.engine.store.by_channel("directline", client.conversation or "")
    assert session is not None
    await run.engine.store.save(session.model_copy(update={"status": "closed"}))
    status, answer = await client.post({"type": "message", "text": "still there?"})
    assert status == 409 and "ended" in answer["reason"]


BAD_ACTIVITIES: list[tuple[bytes, int]] = [
    (b"not json", 400),
    (b"[1, 2]", 400),
    (b'{"text": "no type"}', 400),
    (b'{"type": "conversationUpdate", "from": {"id": "u"}}', 400),
    (b'{"type": "message", "from": "u", "text": "hi"}', 400),
    (b'{"type": "message", "from": {"id": 7}, "text": "hi"}', 400),
    (b'{"type": "message", "from": {"id": "u"}, "text": ["hi"]}', 400),
    (b'{"type": "message", "from": {"id": "u"}}', 400),
    (b'{"type": "message", "from": {"id": "u"}, "text": "hi", "channelData": []}', 400),
    (
        b'{"type": "message", "from": {"id": "u"}, "text": "hi", "channelData": '
        b'{"clientActivityID": "has spaces"}}',
        400,
    ),
    (
        b'{"type": "message", "from": {"id": "u"}, "text": "hi", "attachments": '
        b'[{"contentType": "image/png", "contentUrl": "http://x"}]}',
        400,
    ),
    (b'{"type": "event", "from": {"id": "u"}}', 400),
    (b'{"type": "message", "from": {"id": "u"}, "text": "\\ud800"}', 400),
    (b'{"type": "message", "from": {"id": "u"}, "text": "' + b"x" * 4001 + b'"}', 400),
    (b"[" * 10_000 + b"]" * 10_000, 400),
    (b'{"type": "message", "from": {"id": "u"}, "text": "' + b"x" * 70_000 + b'"}', 413),
]


@pytest.mark.parametrize(("body", "status"), BAD_ACTIVITIES)
async def test_a_bad_activity_is_a_4xx_and_records_nothing(
    run: Running, http: aiohttp.ClientSession, body: bytes, status: int
) -> None:
    client = DirectLine(http, run)
    await client.generate()
    path = f"/conversations/{client.conversation}/activities"
    headers = {"Content-Type": "application/json"}
    got, answer = await client.call("POST", path, data=body, headers=headers)
    assert got == status, answer
    assert await run.engine.store.list_sessions() == []


async def test_bad_requests_get_their_own_4xx(run: Running, http: aiohttp.ClientSession) -> None:
    client = DirectLine(http, run)
    await client.generate()
    conv = f"/conversations/{client.conversation}"
    assert (await client.call("GET", "/conversations/nope/activities", SECRET))[0] == 404
    assert (await client.call("GET", "/conversations/d%C3%A9j%C3%A0", SECRET))[0] == 404
    assert (await client.call("GET", conv + "/activities?watermark=abc"))[0] == 400
    assert (await client.call("GET", conv + "?watermark=-1"))[0] == 400
    assert (await client.call("POST", conv + "/upload"))[0] == 501
    assert (await client.call("GET", "/tokens/generate", SECRET))[0] == 405
    async with http.get(client.base + conv, headers={"Authorization": "Bearer \u00e9t\u00e9"}) as r:
        assert r.status == 401
    async with http.post(
        client.base + "/tokens/generate", headers=client.auth(SECRET), data=b'{"user": '
    ) as r:
        assert r.status == 400


async def test_other_sites_may_call_the_api_with_cors(
    run: Running, http: aiohttp.ClientSession
) -> None:
    url = f"{run.base}/v3/directline/conversations"
    asked = {
        "Origin": "https://shop.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,x-ms-bot-agent",
    }
    async with http.options(url, headers=asked) as preflight:
        assert preflight.status == 204
        assert preflight.headers["Access-Control-Allow-Origin"] == "*"
        assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    async with http.post(url, headers={"Origin": "https://shop.example"}) as refused:
        assert refused.status == 401  # and the page can read that it was refused
        assert refused.headers["Access-Control-Allow-Origin"] == "*"

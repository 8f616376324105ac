"""midtier's Connector API and token issuer, called the way bots call them, over real HTTP.

A real botbuilder bot (``CloudAdapter``, auth on, configured to trust midtier) opens the
conversation; the test then plays other callers against midtier's Connector API: no token, a
token signed by someone else, another bot's token, malformed bodies, unknown and closed
conversations, unsupported calls. None of them may touch the session.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from urllib.parse import quote

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from support.bots.deploy import APP_ID, APP_PASSWORD, deployment, secure_deployment
from support.server import AGENT_TOKEN, Chatter, Running, chat

from adapters.providers.bf_auth import CONNECTOR_AUDIENCE, KEY_FILE
from connector.sessions import MidTierSession, TranscriptEntry

pytestmark = [
    pytest.mark.slow,
    pytest.mark.usefixtures("bots_venv"),
]
OTHER_ID = "0b7d1e54-5c1f-4a0e-8f63-2d9c4b1a6e02"
OTHER_PASSWORD = "other-bot-password-9876543210"
KIND = "adapters.providers.botframework:BotFrameworkProvider"


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIDTIER_AGENT_TOKEN", AGENT_TOKEN)
    monkeypatch.setenv("REMOTE_BOT_PASSWORD", APP_PASSWORD)
    monkeypatch.setenv("OTHER_BOT_PASSWORD", OTHER_PASSWORD)


async def _token(
    http: aiohttp.ClientSession, base: str, app_id: str, secret: str
) -> aiohttp.ClientResponse:
    form = {
        "grant_type": "client_credentials",
        "client_id": app_id,
        "client_secret": secret,
        "scope": f"{CONNECTOR_AUDIENCE}/.default",
    }
    return await http.post(f"{base}/adfs/oauth2/token", data=form)


async def _open(run: Running) -> tuple[str, MidTierSession, str]:
    """A conversation with the remote bot: (web chat conversation, session, bot conversation)."""
    async with chat(run) as (user, welcome):
        await Chatter(user).say("hello there")
        await user.expect("message", lambda f: f["text"] == "echo: hello there")
    session = await run.engine.store.by_channel("webchat", welcome["conversation"])
    assert session is not None and session.current_leg is not None
    return welcome["conversation"], session, session.current_leg.provider_conversation_id


async def _transcript_until(
    run: Running, session_id: str, text: str, within: float = 10
) -> list[TranscriptEntry]:
    """The session's transcript once an entry with ``text`` is in it (polled, with a deadline)."""
    async with asyncio.timeout(within):
        while True:
            entries = await run.engine.store.transcript(session_id)
            if any(e.text == text for e in entries):
                return entries
            await asyncio.sleep(0.02)


def _reply(cid: str, text: str = "hi") -> dict[str, object]:
    return {"type": "message", "text": text, "conversation": {"id": cid}, "from": {"id": APP_ID}}


async def test_connector_checks_callers_and_touches_no_session(tmp_path: Path) -> None:
    other = {
        "other": {
            "kind": KIND,
            "endpoint": "http://127.0.0.1:9/api/messages",
            "app_id": OTHER_ID,
            "app_password": "${OTHER_BOT_PASSWORD}",
        }
    }
    async with secure_deployment(tmp_path, extra=other) as (run, _bot, public):
        _, before, cid = await _open(run)
        transcript = await run.engine.store.transcript(before.id)
        url = f"{run.base}/v3/conversations/{quote(cid)}/activities"
        async with aiohttp.ClientSession() as http:
            # token endpoint: wrong secret, unknown client, wrong scope
            assert (await _token(http, run.base, APP_ID, "wrong")).status == 401
            assert (await _token(http, run.base, "nobody", APP_PASSWORD)).status == 401
            bad_scope = await http.post(
                f"{run.base}/adfs/oauth2/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": APP_ID,
                    "client_secret": APP_PASSWORD,
                    "scope": "https://graph.microsoft.com/.default",
                },
            )
            assert bad_scope.status == 400
            ours = (await (await _token(http, run.base, APP_ID, APP_PASSWORD)).json())[
                "access_token"
            ]
            theirs = (await (await _token(http, run.base, OTHER_ID, OTHER_PASSWORD)).json())[
                "access_token"
            ]
            claims = jwt.decode(ours, options={"verify_signature": False})
            forged = jwt.encode(
                claims,
                rsa.generate_private_key(public_exponent=65537, key_size=2048),
                algorithm="RS256",
                headers={"kid": jwt.get_unverified_header(ours)["kid"]},
            )
            key = (tmp_path / "data" / KEY_FILE).read_bytes()  # midtier's own key
            kid = {"kid": jwt.get_unverified_header(ours)["kid"]}
            past = int(time.time()) - 4000
            expired = jwt.encode(
                {**claims, "exp": past + 3600 - 301, "nbf": past}, key, "RS256", headers=kid
            )
            foreign = jwt.encode({**claims, "iss": "https://elsewhere"}, key, "RS256", headers=kid)
            to_bot = jwt.encode({**claims, "aud": APP_ID}, key, "RS256", headers=kid)
            cases = [
                (None, 401),
                ("Basic Zm9vOmJhcg==", 401),
                (f"Bearer {forged}", 401),
                (f"Bearer {expired}", 401),  # beyond the 5 minutes of skew
                (f"Bearer {foreign}", 401),
                (f"Bearer {to_bot}", 401),  # a channel->bot token is not a Connector token
                (f"Bearer {theirs}", 403),
            ]
            for header, status in cases:
                headers = {"Authorization": header} if header else {}
                async with http.post(url, json=_reply(cid, "sneaky"), headers=headers) as response:
                    assert response.status == status, header
                    assert (await response.json())["error"] in ("AuthError", "Forbidden")
            auth = {"Authorization": f"Bearer {ours}"}
            async with http.post(url, data=b"{not json", headers=auth) as response:
                assert response.status == 400
                assert "JSON" in (await response.json())["reason"]
            async with http.post(url, json={"text": "no type"}, headers=auth) as response:
                assert response.status == 400
            async with http.post(
                f"{run.base}/v3/conversations/bf_unknown/activities", json=_reply("x"), headers=auth
            ) as response:
                assert response.status == 404
            async with http.post(f"{run.base}/v3/conversations", json={}, headers=auth) as response:
                assert response.status == 501
                assert (await response.json())["error"]["code"] == "NotSupported"
            async with http.post(f"{url}/history", json={}, headers=auth) as response:
                assert response.status == 501
            # the bot's own token works, for members too
            async with http.get(f"{run.base}/v3/conversations/{cid}/members", headers=auth) as r:
                assert r.status == 200
                assert [m["id"] for m in await r.json()][1] == APP_ID
            async with http.post(url, json=_reply(cid, "proactive"), headers=auth) as response:
                assert response.status == 200 and (await response.json())["id"]
        # Callbacks of a conversation are applied in the order they came: once the accepted
        # one shows, anything a refused call had let through would show before it.
        after = await _transcript_until(run, before.id, "proactive")
        assert after[: len(transcript)] == transcript
        assert [(e.speaker, e.text) for e in after[len(transcript) :]] == [("bot", "proactive")]
        session = await run.engine.store.get(before.id)
        assert session is not None and [leg.id for leg in session.legs] == [
            leg.id for leg in before.legs
        ]
        assert public.startswith("https://")


async def test_connector_unknown_closed_and_malformed_without_auth(tmp_path: Path) -> None:
    async with deployment(tmp_path) as (run, _bot):
        conversation, session, cid = await _open(run)
        async with aiohttp.ClientSession() as http:
            url = f"{run.base}/v3/conversations/{quote(cid, safe='')}/activities/abc"
            async with http.post(url, json=[1, 2]) as response:
                assert response.status == 400
            async with http.put(url, json=_reply(cid, "edited")) as response:
                assert response.status == 200 and (await response.json())["id"] == "abc"
            async with http.get(f"{run.base}/v3/conversations/{cid}/members/nobody") as response:
                assert response.status == 404
            await run.engine.inbox.idle()  # the PUT above was applied: read the session anew
            fresh = await run.engine.store.get(session.id)
            assert fresh is not None and fresh.current_leg is not None
            fresh.status = "closed"
            await run.engine.store.save(fresh)
            async with http.post(url, json=_reply(cid, "late")) as response:
                assert response.status == 409
            async with http.post(
                f"{run.base}/v3/conversations/{cid}x/activities", json=_reply(cid)
            ) as response:
                assert response.status == 404
        assert conversation

"""Bad input gets a clear error and leaves every session intact."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import aiohttp
import pytest
from support.server import AGENT_TOKEN, DEFAULT_CONFIG, Chatter, Frames, chat, serve


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIDTIER_AGENT_TOKEN", AGENT_TOKEN)
    monkeypatch.setenv("MIDTIER_DISPUTES_CREDENTIAL", "disputes-credential-42")


async def test_malformed_frames_get_errors_and_the_chat_goes_on(tmp_path: Path) -> None:
    async with (
        serve(data_dir=tmp_path) as run,
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{run.ws_base}/webchat/ws") as ws,
    ):
        client = Frames(ws)
        await client.send(type="message", text="too early")
        assert (await client.expect("error"))["code"] == "not_ready"
        await ws.send_str("{not json")
        assert (await client.expect("error"))["code"] == "malformed_frame"
        await ws.send_bytes(b"\x00\x01")
        assert (await client.expect("error"))["code"] == "malformed_frame"
        await client.send(type="hello", resume="wc_does-not-exist.secret", user=None)
        assert (await client.expect("error"))["code"] == "unknown_conversation"
        await client.send(type="hello", resume=None, user=None)
        welcome = await client.expect("welcome")
        await client.send(type="message", id="x", text="")
        assert (await client.expect("error"))["code"] == "malformed_frame"
        await client.send(type="message", id="y", text="a" * 4001)
        assert (await client.expect("error"))["code"] == "too_long"
        await client.send(type="dance")
        assert (await client.expect("error"))["code"] == "malformed_frame"
        # nothing of the above created or touched a session
        assert await run.engine.store.by_channel("webchat", welcome["conversation"]) is None
        await Chatter(client).say("hi")
        await client.expect("message", lambda f: f["speaker"] == "bot")


async def test_resume_of_closed_session_says_session_closed(tmp_path: Path) -> None:
    async with serve(data_dir=tmp_path) as run:
        async with chat(run) as (user, welcome):
            await Chatter(user).say("hi")
            await user.expect("message", lambda f: f["speaker"] == "bot")
        session = await run.engine.store.by_channel("webchat", welcome["conversation"])
        assert session is not None
        session.status = "closed"
        await run.engine.store.save(session)
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(f"{run.ws_base}/webchat/ws") as ws,
        ):
            client = Frames(ws)
            await client.send(type="hello", resume=welcome["resume"], user=None)
            assert (await client.expect("error"))["code"] == "session_closed"


async def test_agent_desk_needs_its_token(tmp_path: Path) -> None:
    async with serve(data_dir=tmp_path) as run, aiohttp.ClientSession() as http:
        async with http.get(f"{run.base}/agent") as page:
            assert page.status == 200 and "text/html" in page.headers["Content-Type"]
        for frame in ({"type": "auth", "token": "wrong"}, {"type": "accept", "conversation": "x"}):
            async with http.ws_connect(f"{run.ws_base}/agent/ws") as ws:
                await ws.send_str(json.dumps(frame))
                error = json.loads((await ws.receive()).data)
                assert error == {
                    "type": "error",
                    "code": "unauthorized",
                    "reason": "invalid or missing agent token",
                }
                closing = await ws.receive()
                assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
                assert ws.close_code == 4401


async def test_auth_token_endpoint(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with serve(data_dir=tmp_path) as run, chat(run) as (user, _):
        me = Chatter(user)
        await me.say("I want to dispute a charge")
        await user.expect("message", lambda f: f["speaker"] == "bot")
        # The in-process bot redeemed its own code; issue a fresh one as a switch would.
        session = (await run.engine.store.list_sessions())[0]
        code = await run.engine.auth.issue(session.id, "disputes")
        url = f"{run.base}/auth/token"
        async with aiohttp.ClientSession() as http:
            form = {"grant_type": "authorization_code", "code": code, "client_id": "disputes"}
            async with http.post(url, data={**form, "client_secret": "wrong"}) as r:
                assert r.status == 401 and (await r.json())["error"] == "invalid_client"
            async with http.post(url, json={**form, "client_id": "faq", "client_secret": "x"}) as r:
                assert r.status == 401  # faq has no credential configured
            headers = {"Authorization": "Bearer disputes-credential-42"}
            async with http.post(url, json=form, headers=headers) as r:
                assert r.status == 200 and r.headers["Cache-Control"] == "no-store"
                grant = await r.json()
            assert grant["session_id"] == session.id and grant["user_id"] == session.user_id
            assert [e["text"] for e in grant["transcript"] if e["speaker"] == "user"] == [
                "I want to dispute a charge"
            ]
            async with http.post(url, json=form, headers=headers) as r:
                assert r.status == 400
                assert await r.json() == {
                    "error": "invalid_grant",
                    "error_description": "authorization code is unknown or was already used",
                }
            async with http.post(url, data="{", headers={"Content-Type": "application/json"}) as r:
                assert r.status == 400 and (await r.json())["error"] == "invalid_request"
            async with http.post(url, data=b"x" * 70_000) as r:
                assert r.status == 413
            async with http.get(f"{run.base}/healthz") as r:
                assert r.status == 200 and (await r.json())["status"] == "ok"
    logged = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    assert code not in logged and "disputes-credential-42" not in logged
    assert AGENT_TOKEN not in logged


async def test_a_bot_that_raises_hands_over_to_the_fallback(tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG, config)
    (config / "broken_bot.py").write_text(
        "from botbuilder.core import ActivityHandler\n\n\n"
        "class BrokenBot(ActivityHandler):\n"
        "    async def on_message_activity(self, turn_context):\n"
        "        raise RuntimeError('database is down')\n"
    )
    providers = (config / "providers.yaml").read_text()
    providers = providers.replace("bot: bots.faq:FaqBot", "bot: broken_bot:BrokenBot")
    (config / "providers.yaml").write_text(providers)
    async with serve(config, data_dir=tmp_path / "data") as run, chat(run) as (user, welcome):
        await Chatter(user).say("what are your fees?")
        sorry = await user.expect("message", lambda f: f["speaker"] == "system")
        assert sorry["text"] == "Sorry, something went wrong on our side. Let me get you some help."
        session = await run.engine.store.by_channel("webchat", welcome["conversation"])
        assert session is not None and session.current_provider == "agents"
        assert [leg.provider for leg in session.legs] == ["faq", "agents"]
        assert session.legs[0].close_reason == "faq failed to answer"


async def test_pages_are_served_with_strict_headers(tmp_path: Path) -> None:
    async with serve(data_dir=tmp_path) as run, aiohttp.ClientSession() as http:
        for path, ancestors in (("/", "'self'"), ("/agent", "'none'")):
            async with http.get(f"{run.base}{path}") as page:
                assert page.status == 200 and "<html" in (await page.text()).lower()
                csp = page.headers["Content-Security-Policy"]
                assert "default-src 'self'" in csp and f"frame-ancestors {ancestors}" in csp
                assert page.headers["X-Content-Type-Options"] == "nosniff"

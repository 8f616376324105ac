"""Remote Bot Framework bots as real processes: midtier is their channel and Connector.

Each test starts a real midtier server and a real bot process (botbuilder's ``CloudAdapter``
on aiohttp as in botbuilder's samples, or the Microsoft 365 Agents SDK) from ``.venv-bots``
on 127.0.0.1, and talks to midtier as a web chat user. The bots' framework code is stock;
auth on is configuration only (environment variables of the bot process).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from support.bots.deploy import APP_ID, APP_PASSWORD, deployment, secure_deployment
from support.server import AGENT_TOKEN, Chatter, Running, chat

from connector.activity import now

pytestmark = [
    pytest.mark.slow,
    pytest.mark.usefixtures("bots_venv"),
]


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIDTIER_AGENT_TOKEN", AGENT_TOKEN)


def bot_says(text: str) -> Any:
    return lambda f: f["speaker"] == "bot" and f["text"] == text


async def test_botbuilder_bot_auth_off_round_trip_in_order(tmp_path: Path) -> None:
    async with deployment(tmp_path) as (run, bot), chat(run) as (user, welcome):
        me = Chatter(user)
        await me.say("hello there")
        await user.expect("message", bot_says("welcome from the remote bot"))
        await user.expect("message", bot_says("echo: hello there"))
        await me.say("many")
        texts = [
            (await user.expect("message", lambda f: f["speaker"] == "bot"))["text"]
            for _ in range(3)
        ]
        assert texts == ["one", "two", "three"]
        session = await run.engine.store.by_channel("webchat", welcome["conversation"])
        assert session is not None and session.current_provider == "remote"
        handoff = await bot.turn(lambda e: e["activity"].get("name") == "midtier.handoff")
        assert handoff["activity"]["value"]["auth_code"]
        assert handoff["activity"]["serviceUrl"] == run.base
        assert handoff["claims"] == {}  # auth off: anonymous, no token was sent


async def _remote_leg(run: Running, conversation: str) -> tuple[str, Any]:
    session = await run.engine.store.by_channel("webchat", conversation)
    assert session is not None
    [leg] = [leg for leg in session.legs if leg.provider == "remote"]
    return leg.provider_conversation_id, session


async def test_botbuilder_handoff_initiate_switches_and_members_answer(tmp_path: Path) -> None:
    async with deployment(tmp_path) as (run, bot), chat(run) as (user, welcome):
        me = Chatter(user)
        await me.say("hello there")
        await user.expect("message", bot_says("echo: hello there"))
        await me.say("members")
        members = await user.expect("message", lambda f: f["text"].startswith("members: "))
        assert members["text"] == f"members: {welcome['user']},remote"
        await me.say("handoff to faq")
        notice = await user.expect("message", lambda f: f["speaker"] == "system")
        assert "the Acme Pay assistant" in notice["text"]
        cid, session = await _remote_leg(run, welcome["conversation"])
        assert session.current_provider == "faq"
        assert session.legs[0].close_reason == "the remote bot handed off"
        end = await bot.turn(lambda e: e["activity"]["type"] == "endOfConversation")
        assert end["activity"]["conversation"]["id"] == cid
        status = await bot.turn(lambda e: e["activity"].get("name") == "handoff.status")
        assert status["activity"]["value"] == {"state": "accepted"}


async def test_botbuilder_failure_fails_over_and_tells_the_user(tmp_path: Path) -> None:
    async with deployment(tmp_path) as (run, _bot), chat(run) as (user, welcome):
        me = Chatter(user)
        await me.say("hello there")
        await user.expect("message", bot_says("echo: hello there"))
        await me.say("fail")
        notice = await user.expect("message", lambda f: f["speaker"] == "system")
        assert (
            notice["text"] == "Sorry, something went wrong on our side. Let me get you some help."
        )
        _, session = await _remote_leg(run, welcome["conversation"])
        assert session.current_provider == "agents"
        assert session.legs[0].close_reason == "remote failed to answer"


async def test_botbuilder_bot_auth_on_both_ways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REMOTE_BOT_PASSWORD", APP_PASSWORD)
    async with secure_deployment(tmp_path) as (run, bot, public), chat(run) as (user, welcome):
        me = Chatter(user)
        await me.say("hello there")
        await user.expect("message", bot_says("welcome from the remote bot"))
        await user.expect("message", bot_says("echo: hello there"))
        await me.say("many")
        texts = [
            (await user.expect("message", lambda f: f["speaker"] == "bot"))["text"]
            for _ in range(3)
        ]
        assert texts == ["one", "two", "three"]
        turn = await bot.turn(lambda e: e["activity"].get("text") == "many")
        # the bot validated midtier's token: our issuer, its app id, our serviceUrl
        assert turn["claims"]["iss"] == public and turn["claims"]["aud"] == APP_ID
        assert turn["claims"]["serviceurl"] == public == turn["activity"]["serviceUrl"]
        # ...and its replies came through the Connector, which demands its token (auth on)
        _, session = await _remote_leg(run, welcome["conversation"])
        assert session.current_provider == "remote"


RECORDING_WEBCHAT = {
    "webchat": {"kind": "support.recording_webchat:RecordingWebChat", "title": "Acme Pay support"}
}


async def test_a_bots_delete_reaches_the_core_as_message_delete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """botbuilder's own ``delete_activity`` (a Connector DELETE with the bot's token)."""
    monkeypatch.setenv("REMOTE_BOT_PASSWORD", APP_PASSWORD)
    async with (
        secure_deployment(tmp_path, channels=RECORDING_WEBCHAT) as (run, _bot, _public),
        chat(run) as (user, _welcome),
    ):
        channel = run.engine.channels["webchat"]
        me = Chatter(user)
        await me.say("hello there")
        await user.expect("message", bot_says("echo: hello there"))
        await me.say("say and delete")
        deleted = await user.expect("message", lambda f: f["text"].startswith("deleted "))
        gone_id = deleted["text"].removeprefix("deleted ")
        assert gone_id  # midtier answered the POST with an id, and the DELETE of it succeeded
        sent = [a for a in channel.sent if a.type != "typing"]
        kinds = [(a.type, a.text) for a in sent]
        soon = kinds.index(("message", "soon gone"))
        assert kinds[soon + 1 :] == [("messageDelete", None), ("message", f"deleted {gone_id}")]
        senders = {a.from_.id if a.from_ else None for a in sent[soon:]}
        assert len(senders) == 1 and None not in senders  # all three from the remote bot


AGENT_AUTH_OFF = {"CONNECTIONS__SERVICE_CONNECTION__SETTINGS__ANONYMOUS_ALLOWED": "true"}


async def test_agents_sdk_agent_auth_off_round_trip_and_handoff(tmp_path: Path) -> None:
    async with (
        deployment(tmp_path, "agents", bot_env=AGENT_AUTH_OFF) as (run, bot),
        chat(run) as (user, welcome),
    ):
        me = Chatter(user)
        await me.say("hello there")
        await user.expect("message", bot_says("welcome from the agent"))
        await user.expect("message", bot_says("echo: hello there"))
        await me.say("many")
        texts = [
            (await user.expect("message", lambda f: f["speaker"] == "bot"))["text"]
            for _ in range(3)
        ]
        assert texts == ["one", "two", "three"]
        handoff = await bot.turn(lambda e: e["activity"].get("name") == "midtier.handoff")
        assert handoff["activity"]["value"]["token_url"] == f"{run.base}/auth/token"
        await me.say("handoff to faq")
        notice = await user.expect("message", lambda f: f["speaker"] == "system")
        assert "the Acme Pay assistant" in notice["text"]
        _, session = await _remote_leg(run, welcome["conversation"])
        assert session.current_provider == "faq"
        assert session.legs[0].close_reason == "the agent handed off"


async def test_remote_bot_redeems_its_code_once_and_nothing_leaks(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    credential = "remote-credential-0123456789"
    remote = {"credential": credential}
    async with deployment(tmp_path, remote=remote) as (run, bot), chat(run) as (user, _):
        await Chatter(user).say("hello there")
        await user.expect("message", bot_says("echo: hello there"))
        handoff = await bot.turn(lambda e: e["activity"].get("name") == "midtier.handoff")
        code = handoff["activity"]["value"]["auth_code"]
        token_url = handoff["activity"]["value"]["token_url"]
        form = {"grant_type": "authorization_code", "code": code, "client_id": "remote"}
        async with aiohttp.ClientSession() as http:
            async with http.post(token_url, data={**form, "client_secret": "wrong"}) as r:
                assert r.status == 401
            async with http.post(
                token_url, data={**form, "client_id": "faq", "client_secret": credential}
            ) as r:
                assert r.status == 401  # faq has no credential: it cannot redeem anything
            async with http.post(token_url, data={**form, "client_secret": credential}) as r:
                assert r.status == 200
                grant = await r.json()
            assert [e["text"] for e in grant["transcript"] if e["speaker"] == "user"] == [
                "hello there"
            ]
            async with http.post(token_url, data={**form, "client_secret": credential}) as r:
                assert r.status == 400 and (await r.json())["error"] == "invalid_grant"
            # a fresh code for this bot, presented after its lifetime
            session = (await run.engine.store.list_sessions())[0]
            late = await run.engine.auth.issue(session.id, "remote")
            run.engine.auth.clock = lambda: now() + timedelta(hours=1)
            async with http.post(
                token_url, data={**form, "code": late, "client_secret": credential}
            ) as r:
                body = await r.json()
                assert r.status == 400 and body["error_description"] == (
                    "authorization code has expired"
                )
    logged = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    assert code not in logged and late not in logged and credential not in logged

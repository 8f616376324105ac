"""A webhook provider in a real midtier server, answering from a real fake service.

The service (tests/support/webhook_service.py) runs on 127.0.0.1, checks midtier's signature
on every request and signs its callbacks; the user is a web chat WebSocket client. The config
is bot_configs/ plus a ``desk`` provider of kind webhook that serves the dispute intents.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from support.server import AGENT_TOKEN, DEFAULT_CONFIG, Chatter, Frames, Running, chat, serve
from support.server import free_port as _free_port
from support.webhook_service import SECRET, FakeService, call_back, echo, fake_service, reply

from adapters.botside.signing import sign

CREDENTIAL = "desk-credential-0123456789"
DISPUTE = "I want to dispute a charge"


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIDTIER_AGENT_TOKEN", AGENT_TOKEN)
    monkeypatch.setenv("MIDTIER_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("MIDTIER_DESK_CREDENTIAL", CREDENTIAL)


def _config(tmp_path: Path, url: str) -> Path:
    config = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG, config)
    providers = yaml.safe_load((config / "providers.yaml").read_text())
    providers["providers"]["desk"] = {
        "kind": "adapters.providers.webhook:WebhookProvider",
        "title": "the partner desk",
        "url": url,
        "secret": "${MIDTIER_WEBHOOK_SECRET}",
        "credential": "${MIDTIER_DESK_CREDENTIAL}",
        "timeout_s": 2,
    }
    (config / "providers.yaml").write_text(yaml.safe_dump(providers, sort_keys=False))
    routing = yaml.safe_load((config / "routing.yaml").read_text())
    routes = routing["routes"]
    routes["disputes"]["intents"] = ["dispute_status"]
    desk = {"intents": ["dispute_charge", "duplicate_charge"], "sticky": True}
    routing["routes"] = {"faq": routes.pop("faq"), "desk": desk, **routes}
    (config / "routing.yaml").write_text(yaml.safe_dump(routing, sort_keys=False))
    return config


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[tuple[FakeService, Running]]:
    async with fake_service(_free_port()) as service:
        config = _config(tmp_path, service.url)
        async with serve(config, data_dir=tmp_path / "data") as run:
            yield service, run


def _said(user: Frames) -> list[str]:
    return [f["text"] for f in user.of("message") if f["speaker"] != "user"]


async def _until_said(user: Frames, *texts: str) -> list[str]:
    """Wait for each text (in any order), then return everything said to the user so far."""
    for text in texts:
        await user.expect("message", lambda f, t=text: f["text"] == t)  # type: ignore[misc]
    return _said(user)


def _msg(*texts: str) -> list[dict[str, Any]]:
    return [{"type": "message", "text": t} for t in texts]


async def _to_desk(run: Running, me: Chatter) -> tuple[str, str]:
    """Start with the FAQ bot, move to the desk; (desk conversation, callback url)."""
    user = me.client
    await me.say("hi")
    await user.expect("message", lambda f: f["speaker"] == "bot")
    await me.say(DISPUTE)
    await user.expect("message", lambda f: f["text"].startswith("echo:"))
    session = (await run.engine.store.list_sessions())[0]
    assert session.current_provider == "desk" and session.current_leg is not None
    return session.current_leg.provider_conversation_id, f"{run.base}/webhooks/providers/desk"


async def test_replies_inline_and_by_callback_reach_the_user_in_order(
    world: tuple[FakeService, Running],
) -> None:
    service, run = world
    callback = f"{run.base}/webhooks/providers/desk"
    statuses: list[int] = []

    async def answer(envelope: dict[str, Any]) -> web.Response:
        # Call back before answering: during open (leg not saved yet) and during a delivery
        # (midtier holds the session's lock); neither may deadlock.
        if envelope["type"] == "open":
            body = {"conversation": envelope["conversation"], "activities": _msg("early bird")}
            statuses.append((await call_back(callback, body))[0])
        if envelope["type"] == "message" and envelope["activity"]["text"] == DISPUTE:
            body = {"conversation": envelope["conversation"], "activities": _msg("d1", "d2")}
            statuses.append((await call_back(callback, body))[0])
            return reply("inline 1", "inline 2")
        return await echo(envelope)

    service.answer = answer
    async with chat(run) as (user, _):
        me = Chatter(user)
        await me.say("hi")
        await me.say(DISPUTE)
        said = await _until_said(user, "d2")
        assert statuses == [202, 202]
        assert said[1:] == [
            "One moment, I'm passing you to the partner desk. You can keep typing.",
            "hello from the service",
            "inline 1",
            "inline 2",
            "early bird",
            "d1",
            "d2",
        ]
        desk = next(f for f in user.of("message") if f["text"] == "inline 1")
        assert desk["speaker"] == "agent" and desk["from"]["id"] == "desk"
        conversation = service.of("open")[0]["conversation"]
        # Later callbacks, sent back to back, arrive in order.
        for batch in (_msg("a1", "a2", "a3"), _msg("a4"), _msg("a5", "a6")):
            status, body = await call_back(
                callback, {"conversation": conversation, "activities": batch}
            )
            assert (status, body) == (202, {"status": "accepted"})
        said = await _until_said(user, "a6")
        assert said[-6:] == ["a1", "a2", "a3", "a4", "a5", "a6"]
        await me.say("anything else")
        await _until_said(user, "echo: anything else")
        session = (await run.engine.store.list_sessions())[0]
        assert [leg.provider for leg in session.legs] == ["faq", "desk"]
        assert all(r.verified for r in service.got)


async def test_refused_callbacks_change_nothing(
    world: tuple[FakeService, Running], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    service, run = world
    async with chat(run) as (user, _):
        me = Chatter(user)
        conversation, url = await _to_desk(run, me)
        session = (await run.engine.store.list_sessions())[0]
        before = await run.engine.store.transcript(session.id)
        good = {"conversation": conversation, "activities": _msg("sneaky")}
        stale = int(time.time()) - 301
        refused = [
            (401, await call_back(url, good, secret="not-the-secret-0123456789")),
            (401, await call_back(url, good, timestamp=stale)),
            (401, await call_back(url, good, timestamp=int(time.time()) + 301)),
            (401, await call_back(url, good, headers={})),
            (400, await call_back(url, b"{not json")),
            (400, await call_back(url, {"conversation": conversation})),
            (400, await call_back(url, {"conversation": conversation, "action": "dance"})),
            (400, await call_back(url, {"conversation": conversation, "action": "transfer"})),
            (400, await call_back(url, {"conversation": 7, "activities": []})),
            (
                400,
                await call_back(url, {"conversation": conversation, "activities": [{"type": 5}]}),
            ),
            (404, await call_back(url, {**good, "conversation": "wh_unknown"})),
            (404, await call_back(url, {**good, "action": "transfer", "target": "nobody"})),
        ]
        for expected, (status, body) in refused:
            assert status == expected, body
        reasons = [body["reason"] for _, (_, body) in refused]
        assert "outside the 300 s window" in reasons[1] and "missing" in reasons[3]
        assert reasons[4:8] == [
            "body is not valid JSON (Expecting property name enclosed in double quotes"
            " at line 1 column 2)",
            "expected activities or an action",
            "action must be 'hand_back' or 'transfer'",
            "transfer needs a target provider name",
        ]
        after = (await run.engine.store.list_sessions())[0]
        assert after.version == session.version and after.legs == session.legs
        assert await run.engine.store.transcript(session.id) == before
        # The same signed request twice is applied once.
        body_bytes = (
            b'{"conversation": "%s", "activities": [{"text": "once"}]}' % conversation.encode()
        )
        headers = sign(SECRET, body_bytes)
        assert await call_back(url, body_bytes, headers=headers) == (202, {"status": "accepted"})
        assert await call_back(url, body_bytes, headers=headers) == (200, {"status": "duplicate"})
        await me.say("ping")
        said = await _until_said(user, "once", "echo: ping")
        assert said.count("once") == 1 and "sneaky" not in said
    logged = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    assert SECRET not in logged and service.of("open")[0]["context"]["auth_code"] not in logged


async def test_hand_back_then_transfer_and_a_failed_transfer(
    world: tuple[FakeService, Running],
) -> None:
    service, run = world
    async with chat(run) as (user, welcome):
        me = Chatter(user)
        conversation, url = await _to_desk(run, me)
        body = {
            "conversation": conversation,
            "activities": _msg("Glad I could help."),
            "action": "hand_back",
            "reason": "resolved",
        }
        assert (await call_back(url, body))[0] == 202
        said = await _until_said(
            user, "You're back with the Acme Pay assistant. Anything else I can help with?"
        )
        assert said[-2] == "Glad I could help."
        # The old leg is closed once the switch is committed, so it may come last.
        await service.wait_for(
            lambda r: (
                r.envelope.get("type") == "close" and r.envelope["conversation"] == conversation
            )
        )
        closes = [e for e in service.of("close") if e["conversation"] == conversation]
        assert [e["reason"] for e in closes] == ["resolved"]
        session = await run.engine.store.by_channel("webchat", welcome["conversation"])
        assert session is not None and [leg.provider for leg in session.legs] == [
            "faq",
            "desk",
            "faq",
        ]
        assert session.legs[1].close_reason == "resolved"
        # The desk's conversation is closed now.
        status, answer = await call_back(
            url, {"conversation": conversation, "activities": _msg("x")}
        )
        assert status == 409 and answer["error"] == "SessionClosed"

        # Back to the desk, which transfers to itself (refused), then to the disputes bot.
        await me.say(DISPUTE)
        await user.expect("message", lambda f: f["text"] == f"echo: {DISPUTE}")
        session = await run.engine.store.by_channel("webchat", welcome["conversation"])
        assert session is not None and session.current_leg is not None
        second = session.current_leg.provider_conversation_id
        body = {"conversation": second, "action": "transfer", "target": "desk"}
        assert (await call_back(url, body))[0] == 202
        failed = await service.wait_for(
            lambda r: r.envelope.get("type") == "event" and r.envelope["conversation"] == second
        )
        activity = failed.envelope["activity"]
        assert activity["name"] == "handoff.status" and activity["value"]["state"] == "failed"
        body = {"conversation": second, "action": "transfer", "target": "disputes", "reason": "x"}
        assert (await call_back(url, body))[0] == 202
        await _until_said(
            user, "One moment, I'm passing you to the disputes assistant. You can keep typing."
        )
        session = await run.engine.store.by_channel("webchat", welcome["conversation"])
        assert session is not None
        assert [leg.provider for leg in session.legs] == ["faq", "desk", "faq", "desk", "disputes"]
        assert session.legs[3].close_reason == "x"


@pytest.mark.parametrize("failure", ["500", "timeout", "garbage"])
async def test_a_failing_service_loses_the_conversation_to_the_fallback(
    world: tuple[FakeService, Running], failure: str
) -> None:
    service, run = world

    async def answer(envelope: dict[str, Any]) -> web.Response:
        if envelope["type"] != "message":
            return await echo(envelope)
        if failure == "timeout":
            return await service.hang(envelope)
        if failure == "garbage":
            return web.Response(text="<html>oops</html>")
        return web.Response(status=500)

    service.answer = answer
    async with chat(run) as (user, welcome):
        await Chatter(user).say(DISPUTE)
        said = await _until_said(
            user, "Sorry, something went wrong on our side. Let me get you some help."
        )
        assert "hello from the service" in said and not any(t.startswith("echo") for t in said)
        session = await run.engine.store.by_channel("webchat", welcome["conversation"])
        assert session is not None
        assert [leg.provider for leg in session.legs] == ["desk", "agents"]
        assert session.legs[0].close_reason == "desk failed to answer"
        await service.wait_for(lambda r: r.envelope.get("type") == "close")
        closes = service.of("close")
        assert [e["conversation"] for e in closes] == [session.legs[0].provider_conversation_id]


async def test_the_service_redeems_its_auth_code_once(world: tuple[FakeService, Running]) -> None:
    service, run = world
    async with chat(run) as (user, welcome):
        await _to_desk(run, Chatter(user))
        context = service.of("open")[0]["context"]
        assert context["token_url"] == f"{run.base}/auth/token"
        form = {
            "grant_type": "authorization_code",
            "client_id": "desk",
            "code": context["auth_code"],
        }
        headers = {"Authorization": f"Bearer {CREDENTIAL}"}
        async with aiohttp.ClientSession() as http:
            async with http.post(context["token_url"], json=form, headers=headers) as r:
                assert r.status == 200 and r.headers["Cache-Control"] == "no-store"
                grant = await r.json()
            assert grant["session_id"] == context["session_id"]
            assert grant["user_id"] == welcome["user"]
            assert grant["claims"]["sub"] == welcome["user"]
            assert [e["text"] for e in grant["transcript"] if e["speaker"] == "user"] == [
                "hi",
                DISPUTE,
            ]
            async with http.post(context["token_url"], json=form, headers=headers) as r:
                assert r.status == 400 and (await r.json())["error"] == "invalid_grant"

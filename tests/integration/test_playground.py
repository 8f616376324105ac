"""``POST /routing/explain`` over real HTTP: the running server's own explanation of a message.

It answers what the live router decides (classifier, health, circuit breakers, the stored
session), changes nothing, lets in only the desk's tokens (throttled as the desk's sign-in
is), and answers every bad question with a 4xx and a reason.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from support.raw import RawRequest, send
from support.server import AGENT_TOKEN, DEFAULT_CONFIG, REPO, Running, chat, serve

from connector.app import create_app
from connector.config import load_config
from connector.errors import ConfigErrors
from connector.interfaces import IntentResult
from connector.sessions import MidTierSession

FRAUD = "someone used my card without my permission"
DISPUTE = "I want to dispute a charge"
ECHO_CONFIG = REPO / "tests" / "support" / "configs" / "echo"


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIDTIER_AGENT_TOKEN", AGENT_TOKEN)


def config_with(tmp_path: Path, **sign_in: Any) -> Path:
    """The default deployment with the desk's ``sign_in`` keys changed."""
    config = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG, config)
    providers = yaml.safe_load((config / "providers.yaml").read_text())
    providers["providers"]["agents"]["sign_in"].update(sign_in)
    (config / "providers.yaml").write_text(yaml.safe_dump(providers))
    return config


async def ask(
    run: Running, body: Any, credential: str | None = AGENT_TOKEN, **headers: str
) -> tuple[int, dict[str, Any], Mapping[str, str]]:
    """POST ``body`` (JSON, or bytes as they are) with ``credential``; status, JSON, headers."""
    if credential is not None:
        headers["Authorization"] = f"Bearer {credential}"
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{run.base}/routing/explain", data=data, headers=headers) as reply,
    ):
        return reply.status, await reply.json(content_type=None), reply.headers


async def live_decision(run: Running, text: str, session: MidTierSession) -> dict[str, Any]:
    """What the server's router decides for ``text`` in ``session``, as the answer shows it."""
    intent: IntentResult = await run.engine.understanding.read(text)
    decision = run.engine.router.decide(session, intent)
    return decision.model_dump(mode="json", exclude={"at", "message_id"})


def condition(found: dict[str, Any], provider: str, name: str) -> dict[str, Any]:
    [route] = [r for r in found["routes"] if r["provider"] == provider]
    [cond] = [c for c in route["conditions"] if c["name"] == name]
    return dict(cond)


def new_session(channel: str = "webchat") -> MidTierSession:
    return MidTierSession(user_id="u", channel=channel, channel_conversation_id="c")


async def test_the_answer_is_what_the_live_router_decides_and_no_session_is_made(
    tmp_path: Path,
) -> None:
    async with serve(data_dir=tmp_path) as run:
        status, found, headers = await ask(run, {"text": FRAUD})
        assert status == 200, found
        assert found["decision"] == await live_decision(run, FRAUD, new_session())
        assert (found["text"], found["channel"], found["session"]) == (FRAUD, "webchat", None)
        assert [r["provider"] for r in found["routes"]] == list(run.engine.config.routing.routes)
        assert found["ranking"][0]["intent"] == found["intent"]
        assert headers["Cache-Control"] == "no-store"
        # The token bought a signed desk session, which lets the next question in by itself.
        issued = headers["X-Midtier-Agent-Session"]
        assert issued.startswith("v1.") and AGENT_TOKEN not in issued
        status, again, headers = await ask(run, {"text": DISPUTE}, credential=issued)
        assert status == 200 and "X-Midtier-Agent-Session" not in headers
        assert again["decision"] == await live_decision(run, DISPUTE, new_session())
        assert await run.engine.store.list_sessions() == []


async def test_explaining_the_next_message_of_a_session_leaves_the_session_as_it_was(
    tmp_path: Path,
) -> None:
    async with serve(data_dir=tmp_path) as run, chat(run) as (user, _):
        await user.send(type="message", id="m1", text="hi")
        await user.expect("message", lambda f: f["speaker"] == "bot")
        [before] = await run.engine.store.list_sessions()
        decisions = await run.engine.store.decisions(before.id)
        transcript = await run.engine.store.transcript(before.id)
        status, found, _ = await ask(run, {"text": DISPUTE, "session": before.id})
        assert status == 200, found
        assert (found["session"], found["current_provider"]) == (before.id, "faq")
        assert found["decision"] == await live_decision(run, DISPUTE, before)
        assert found["decision"]["action"] == "switch"  # what it would do, not what it did
        [after] = await run.engine.store.list_sessions()
        assert after.version == before.version and after.current_provider == "faq"
        assert after.legs == before.legs
        assert await run.engine.store.decisions(before.id) == decisions
        assert await run.engine.store.transcript(before.id) == transcript
        assert run.engine.pool.open_legs == {"faq": 1}


async def test_an_open_circuit_or_a_failed_health_check_fails_the_health_condition(
    tmp_path: Path,
) -> None:
    async with serve(data_dir=tmp_path) as run:
        pool = run.engine.pool
        _, found, _ = await ask(run, {"text": DISPUTE})
        assert condition(found, "disputes", "health") == {
            "name": "health",
            "holds": True,
            "detail": "healthy",
        }
        assert found["decision"]["provider"] == "disputes"
        for _ in range(pool.breakers.failures):
            pool.mark_failure("disputes")
        pool.healthy["faq"] = False
        _, found, _ = await ask(run, {"text": DISPUTE})
        health = condition(found, "disputes", "health")
        assert health["holds"] is False and "circuit open" in health["detail"]
        assert condition(found, "faq", "health")["holds"] is False
        assert "unhealthy" in condition(found, "faq", "health")["detail"]
        assert next(r for r in found["routes"] if r["provider"] == "disputes")["eligible"] is False
        assert found["decision"] == await live_decision(run, DISPUTE, new_session())
        assert found["decision"]["provider"] != "disputes"
        # Asking took no trial of a circuit and changed no health.
        assert pool.breakers.state("disputes") == "open" and pool.healthy["faq"] is False


async def test_missing_and_wrong_credentials_get_401_with_a_reason_and_touch_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "not-the-agent-token-00000000"
    async with serve(config_with(tmp_path, delay_s=0, max_failures=50), tmp_path / "d") as run:
        for credential, headers, reason in [
            (None, {}, "missing agent token"),
            (None, {"Authorization": f"Basic {AGENT_TOKEN}"}, "missing agent token"),
            (None, {"Authorization": "Bearer "}, "missing agent token"),
            (wrong, {}, "invalid agent token"),
            (AGENT_TOKEN + "x", {}, "invalid agent token"),
            ("v1.eyJzdWIiOiJ4In0.forged", {}, "invalid agent token"),
        ]:
            status, found, answered = await ask(run, {"text": FRAUD}, credential, **headers)
            assert (status, found["error"]) == (401, "AuthError"), found
            assert reason in found["reason"]
            assert answered["WWW-Authenticate"].startswith("Bearer")
        raw = RawRequest(
            b"POST",
            b"/routing/explain",
            ((b"Authorization", b"Bearer \xc3\xa9t\xc3\xa9"),),
            json.dumps({"text": FRAUD}).encode(),
        )
        assert (await send(int(run.base.rsplit(":", 1)[1]), raw)).status == 401
        assert await run.engine.store.list_sessions() == []
    logged = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    assert AGENT_TOKEN not in logged and wrong not in logged


async def test_wrong_tokens_here_and_on_the_desk_add_up_until_the_address_is_refused(
    tmp_path: Path,
) -> None:
    async with serve(config_with(tmp_path, delay_s=0, max_failures=3), tmp_path / "d") as run:
        for _ in range(2):
            assert (await ask(run, {"text": FRAUD}, "wrong-token-0123456789"))[0] == 401
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(f"{run.ws_base}/agent/ws") as ws,
        ):
            await ws.send_json({"type": "auth", "token": "wrong-token-0123456789"})
            assert (await ws.receive_json())["code"] == "unauthorized"
        status, found, headers = await ask(run, {"text": FRAUD})  # even the right token
        assert (status, found["error"]) == (403, "TooManyAttempts")
        assert "too many failed sign-ins" in found["reason"]
        assert int(headers["Retry-After"]) == found["retry_after"] > 0


async def test_without_an_agent_desk_every_question_is_refused_with_403(tmp_path: Path) -> None:
    async with serve(ECHO_CONFIG, data_dir=tmp_path) as run:
        status, found, _ = await ask(run, {"text": "hello"})
        assert (status, found["error"]) == (403, "Forbidden")
        assert "agent_desk" in found["reason"]
        async with aiohttp.ClientSession() as http, http.get(f"{run.base}/agent/playground") as r:
            assert r.status == 404


BAD_QUESTIONS: list[tuple[str, bytes | Any, dict[str, str], int, str]] = [
    ("not JSON", b"text=hello", {}, 400, "JSON"),
    ("binary", bytes(range(256)) * 4, {}, 400, ""),
    ("invalid UTF-8", b'{"text": "\xff\xfe"}', {}, 400, ""),
    ("a lone surrogate", b'{"text": "\\ud800"}', {}, 400, ""),
    ("NaN", b'{"text": "hi", "session": NaN}', {}, 400, ""),
    ("nested 100 deep", b'{"text": ' + b"[" * 100 + b"]" * 100 + b"}", {}, 400, ""),
    ("a JSON array", ["text", "hello"], {}, 400, "JSON object"),
    ("a JSON string", "hello", {}, 400, "JSON object"),
    ("no text", {"channel": "webchat"}, {}, 400, "text is missing"),
    ("null text", {"text": None}, {}, 400, "text is missing"),
    ("a number as text", {"text": 42}, {}, 400, "text must be a string"),
    ("nested junk as text", {"text": {"a": [{"b": None}]}}, {}, 400, "text must be a string"),
    ("empty text", {"text": "  \n "}, {}, 400, "text is empty"),
    ("text over the limit", {"text": "a" * 4001}, {}, 400, "longer than 4000"),
    ("a number as channel", {"text": "hi", "channel": 7}, {}, 400, "channel must be a string"),
    ("an unknown channel", {"text": "hi", "channel": "fax"}, {}, 400, "no channel named 'fax'"),
    ("a list as session", {"text": "hi", "session": ["x"]}, {}, 400, "session must be a string"),
    ("an unknown field", {"text": "hi", "provider": "faq"}, {}, 400, "unknown field"),
    ("a form", b"text=hi", {"Content-Type": "application/x-www-form-urlencoded"}, 415, ""),
    ("a body over the limit", {"text": "a" * 70_000}, {}, 413, "over the limit"),
    ("an unknown session", {"text": "hi", "session": "mts_unknown"}, {}, 404, "no session"),
    ("a huge session id", {"text": "hi", "session": "x" * 60_000}, {}, 404, "no session"),
]


async def test_bad_questions_get_their_4xx_with_a_reason_and_never_a_500(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with serve(data_dir=tmp_path) as run:
        async with chat(run) as (user, _):
            await user.send(type="message", id="m1", text="hi")
            await user.expect("message", lambda f: f["speaker"] == "bot")
        [session] = await run.engine.store.list_sessions()
        cases = [
            *BAD_QUESTIONS,
            ("another channel than the session's", {"text": "hi", "session": session.id,
             "channel": "directline"}, {}, 400, "is on channel 'webchat'"),
        ]  # fmt: skip
        for what, body, headers, status, reason in cases:
            got, found, _ = await ask(run, body, **headers)
            assert (got, what) == (status, what), found
            assert isinstance(found["reason"], str) and reason in found["reason"], (what, found)
        [after] = await run.engine.store.list_sessions()
        assert after.version == session.version
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def two_desks(tmp_path: Path, **second: Any) -> Path:
    """The default deployment with a second desk on its own paths."""
    config = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG, config)
    providers = yaml.safe_load((config / "providers.yaml").read_text())
    providers["providers"]["night"] = {
        "kind": "agent_desk",
        "title": "the night desk",
        "token": "night-desk-token-0123456789",
        "page_path": "/night",
        "ws_path": "/night/ws",
        **second,
    }
    (config / "providers.yaml").write_text(yaml.safe_dump(providers))
    return config


async def test_several_desks_clash_over_the_playground_until_all_but_one_have_none(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigErrors) as clash:
        create_app(load_config(two_desks(tmp_path / "a")), tmp_path / "a" / "d")
    assert "providers.night" in str(clash.value) and "playground_path: null" in str(clash.value)
    config = two_desks(tmp_path / "b", playground_path=None)
    async with serve(config, data_dir=tmp_path / "b" / "d") as run:
        assert (await ask(run, {"text": FRAUD}))[0] == 200
        assert (await ask(run, {"text": FRAUD}, "night-desk-token-0123456789"))[0] == 401

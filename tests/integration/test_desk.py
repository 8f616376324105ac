"""The agent desk as a multi-agent tool, over real WebSockets against a real server.

Each agent signs in as themselves (personal token, or the shared token plus a name and then
a signed session); accepting is atomic; sockets that do not sign in are closed; wrong tokens
are slowed down and then refused for a while; upgrades from other sites' pages get 403; the
user hears plainly when no agent is signed in; queue cards carry the customer's last message;
typing goes both ways without being recorded.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import stat
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from support.server import AGENT_TOKEN, DEFAULT_CONFIG, Chatter, Frames, Running, agent, chat, serve

from connector.activity import Activity, ChannelAccount
from connector.sessions import MidTierSession

DANA_TOKEN = "dana-personal-token-0123456789"
LEE_TOKEN = "lee-personal-token-9876543210"
GREETING = "from the support team"


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIDTIER_AGENT_TOKEN", AGENT_TOKEN)
    monkeypatch.setenv("MIDTIER_AGENT_DANA_TOKEN", DANA_TOKEN)
    monkeypatch.setenv("MIDTIER_AGENT_LEE_TOKEN", LEE_TOKEN)


def desk_config(tmp_path: Path, midtier: dict[str, Any] | None = None, **desk: Any) -> Path:
    """The default deployment with the desk's (and midtier.yaml's) keys changed."""
    config = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG, config)
    providers = yaml.safe_load((config / "providers.yaml").read_text())
    providers["providers"]["agents"].update(desk)
    (config / "providers.yaml").write_text(yaml.safe_dump(providers))
    if midtier:
        settings = yaml.safe_load((config / "midtier.yaml").read_text())
        settings.update(midtier)
        (config / "midtier.yaml").write_text(yaml.safe_dump(settings))
    return config


PERSONAL = {
    "dana": {"name": "Dana", "token": "${MIDTIER_AGENT_DANA_TOKEN}"},
    "lee": {"name": "Lee", "token": "${MIDTIER_AGENT_LEE_TOKEN}"},
}


@asynccontextmanager
async def socket(run: Running, **connect: Any) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{run.ws_base}/agent/ws", **connect) as ws,
    ):
        yield ws


async def until_closed(ws: aiohttp.ClientWebSocketResponse) -> list[dict[str, Any]]:
    """Every frame the server sends before it closes the socket."""
    frames = []
    async with asyncio.timeout(10):
        while True:
            msg = await ws.receive()
            if msg.type != aiohttp.WSMsgType.TEXT:
                return frames
            frames.append(json.loads(msg.data))


async def refused(run: Running, frame: dict[str, Any] | bytes | str) -> tuple[dict[str, Any], int]:
    """Send one first frame; return the error frame and the close code."""
    async with socket(run) as ws:
        if isinstance(frame, bytes):
            await ws.send_bytes(frame)
        else:
            await ws.send_str(frame if isinstance(frame, str) else json.dumps(frame))
        frames = await until_closed(ws)
        assert ws.close_code is not None
        [error] = frames
        assert error["type"] == "error"
        return error, ws.close_code


@asynccontextmanager
async def signed_in(run: Running, **auth: Any) -> AsyncIterator[tuple[Frames, dict[str, Any]]]:
    """A desk client that sent ``{"type": "auth", **auth}``; yields it and its ready frame."""
    async with socket(run) as ws:
        client = Frames(ws)
        await client.send(type="auth", **auth)
        ready = await client.expect("ready")
        yield client, ready


async def to_the_desk(run: Running, user: Frames, me: Chatter | None = None) -> MidTierSession:
    """The user greets the bot, then asks for a person; returns their session, now on the desk."""
    me = me or Chatter(user)
    await me.say("hi")
    await user.expect("message", lambda f: f["speaker"] == "bot")
    await me.say("I need to talk to a person")
    await user.expect("message", lambda f: f["speaker"] == "system")
    [session] = await run.engine.store.list_sessions(status="active")
    assert session.current_provider == "agents"
    return session


async def to_the_desk_of(run: Running, user: Frames) -> None:
    """As ``to_the_desk``, when other sessions exist."""
    me = Chatter(user)
    await me.say("hi")
    await user.expect("message", lambda f: f["speaker"] == "bot")
    await me.say("I need to talk to a person")
    await user.expect("message", lambda f: f["speaker"] == "system")


def waiting(frame: dict[str, Any]) -> bool:
    return any(c["status"] == "waiting" for c in frame["conversations"])


def assigned(conversation: str) -> Callable[[dict[str, Any]], bool]:
    return lambda f: any(
        c["conversation"] == conversation and c["status"] == "assigned" for c in f["conversations"]
    )


class Clock:
    """A monotonic clock a test moves forward by hand."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now


# --------------------------------------------------------------------------- signing in


async def test_a_personal_token_signs_in_as_that_agent_whatever_the_client_claims(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    config = desk_config(tmp_path, agents=PERSONAL, sign_in={"delay_s": 0})
    async with serve(config, data_dir=tmp_path / "d") as run:
        async with signed_in(
            run, token=DANA_TOKEN, agent={"id": "lee", "name": "Somebody Else"}
        ) as (_, ready):
            assert ready["agent"] == {"id": "dana", "name": "Dana"}
            assert ready["session"].startswith("v1.")
            assert ready["expires_at"] > time.time() + 3600
        # The session it got brings back the same agent, without any token.
        async with signed_in(run, session=ready["session"]) as (_, again):
            assert again["agent"] == {"id": "dana", "name": "Dana"}
        async with signed_in(run, token=LEE_TOKEN) as (_, lee):
            assert lee["agent"] == {"id": "lee", "name": "Lee"}
        for wrong in (DANA_TOKEN[:-1] + "X", DANA_TOKEN + "X", DANA_TOKEN[:16]):
            error, code = await refused(run, {"type": "auth", "token": wrong})
            assert (error["code"], code) == ("unauthorized", 4401)
    logged = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records)
    assert DANA_TOKEN[:16] not in logged and LEE_TOKEN[:16] not in logged
    assert ready["session"] not in logged


async def test_the_shared_token_gives_each_sign_in_its_own_id_kept_by_its_session(
    tmp_path: Path,
) -> None:
    async with serve(data_dir=tmp_path) as run:
        async with signed_in(run, token=AGENT_TOKEN, agent={"name": "  Ann\n\u0000 "}) as (_, ann):
            assert ann["agent"]["name"] == "Ann"
            assert ann["agent"]["id"].startswith("agent_")
        async with signed_in(
            run, token=AGENT_TOKEN, agent={"name": "Ann", "id": ann["agent"]["id"]}
        ) as (
            _,
            other,
        ):
            assert (
                other["agent"]["id"] != ann["agent"]["id"]
            )  # an id is never taken from the client
        async with signed_in(run, session=ann["session"], agent={"id": other["agent"]["id"]}) as (
            _,
            back,
        ):
            assert back["agent"] == ann["agent"]


async def test_an_agent_id_cannot_be_claimed_by_another_token_or_a_forged_session(
    tmp_path: Path,
) -> None:
    # Every forged session below counts as a failed sign-in: allow them all.
    config = desk_config(tmp_path, agents=PERSONAL, sign_in={"max_failures": 100, "delay_s": 0})
    async with serve(config, data_dir=tmp_path / "d") as run, chat(run) as (user, _):
        await to_the_desk(run, user)
        async with agent(run, token=DANA_TOKEN) as dana:
            queued = await dana.expect("queue", waiting)
            conversation = queued["conversations"][0]["conversation"]
            await dana.send(type="accept", conversation=conversation)
            await dana.expect("queue", assigned(conversation))
            session = dana.of("ready")[0]["session"]

            # Another holder of the shared token, asking to be dana, is somebody else...
            async with signed_in(run, token=AGENT_TOKEN, agent={"id": "dana", "name": "Dana2"}) as (
                mallory,
                ready,
            ):
                assert ready["agent"]["id"] != "dana"
                await mallory.send(type="send", conversation=conversation, text="it's me, Dana")
                error = await mallory.expect("error")
                assert error["code"] == "not_yours" and error["conversation"] == conversation

            # ...and a session edited to name dana (or lee) does not verify.
            version, payload, mac = session.split(".")
            claims = json.loads(_unb64(payload))
            for edit in ({"sub": "lee"}, {"exp": claims["exp"] + 10**6}, {"name": "Boss"}):
                forged = f"{version}.{_b64(json.dumps({**claims, **edit}).encode())}.{mac}"
                error, code = await refused(run, {"type": "auth", "session": forged})
                assert (error["code"], code) == ("unauthorized", 4401)
            broken_sessions = (
                f"{version}.{payload}.{mac[:-2]}",
                f"{version}.{payload}\ud800.{mac}",
                f"{version}.{payload}.\udfff",
                "v1..",
                "v2.x.y",
                "x" * 5000,
                "",
            )
            for broken in broken_sessions:
                error, code = await refused(run, {"type": "auth", "session": broken})
                # a lone surrogate makes the frame itself malformed: refused before sign-in
                lone = any(0xD800 <= ord(c) <= 0xDFFF for c in broken)
                wanted = ("malformed_frame", 1008) if lone else ("unauthorized", 4401)
                assert (error["code"], code) == wanted, broken[:40]
        user_said = [f["text"] for f in user.of("message")]
        assert "it's me, Dana" not in user_said


async def test_an_expired_session_is_refused_and_says_so(tmp_path: Path) -> None:
    async with serve(data_dir=tmp_path) as run:
        async with signed_in(run, token=AGENT_TOKEN, agent={"name": "Ann"}) as (_, ready):
            pass
        desk = run.engine.providers["agents"]
        desk.signin.clock = lambda: time.time() + 13 * 3600  # past the 12 h default
        error, code = await refused(run, {"type": "auth", "session": ready["session"]})
        assert (error["code"], code) == ("session_expired", 4401)
        assert "sign in again" in error["reason"]


async def test_a_changed_token_ends_the_sessions_issued_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = desk_config(tmp_path, agents=PERSONAL)
    async with serve(config, data_dir=tmp_path / "d") as run:
        async with signed_in(run, token=DANA_TOKEN) as (_, dana):
            pass
        async with signed_in(run, token=AGENT_TOKEN, agent={"name": "Ann"}) as (_, ann):
            pass
    monkeypatch.setenv("MIDTIER_AGENT_DANA_TOKEN", "dana-new-token-after-rotation")
    async with serve(config, data_dir=tmp_path / "d") as run:
        error, code = await refused(run, {"type": "auth", "session": dana["session"]})
        assert (error["code"], code) == ("unauthorized", 4401)
        async with signed_in(run, session=ann["session"]) as (_, still):  # shared token unchanged
            assert still["agent"] == ann["agent"]


async def test_the_shared_token_cannot_take_a_personal_agents_name(tmp_path: Path) -> None:
    async with serve(desk_config(tmp_path, agents=PERSONAL), data_dir=tmp_path / "d") as run:
        error, code = await refused(
            run, {"type": "auth", "token": AGENT_TOKEN, "agent": {"name": "dana"}}
        )
        assert (error["code"], code) == ("name_taken", 4401)


async def test_without_shared_sign_in_only_personal_tokens_work(tmp_path: Path) -> None:
    config = desk_config(tmp_path, agents=PERSONAL, shared_signin=False)
    async with serve(config, data_dir=tmp_path / "d") as run:
        error, code = await refused(
            run, {"type": "auth", "token": AGENT_TOKEN, "agent": {"name": "Ann"}}
        )
        assert (error["code"], code) == ("unauthorized", 4401)
        async with signed_in(run, token=DANA_TOKEN) as (_, ready):
            assert ready["agent"]["id"] == "dana"
    assert not (tmp_path / "d" / "agent-token").exists()


async def test_the_generated_token_and_session_key_survive_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MIDTIER_AGENT_TOKEN")
    async with serve(data_dir=tmp_path) as run:
        token = (tmp_path / "agent-token").read_text().strip()
        async with signed_in(run, token=token, agent={"name": "Ann"}) as (_, ready):
            pass
    for name in ("agent-token", "agent-session-key"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    async with serve(data_dir=tmp_path) as run:
        assert (tmp_path / "agent-token").read_text().strip() == token
        async with signed_in(run, session=ready["session"]) as (_, again):
            assert again["agent"] == ready["agent"]
        async with signed_in(run, token=token, agent={"name": "Bo"}) as (_, bo):
            assert bo["agent"]["name"] == "Bo"


# --------------------------------------------------------------------------- before sign-in


async def test_a_socket_that_does_not_sign_in_is_closed_at_the_deadline(tmp_path: Path) -> None:
    config = desk_config(tmp_path, sign_in={"timeout_s": 0.2})
    async with serve(config, data_dir=tmp_path / "d") as run:
        async with socket(run) as ws:
            assert await until_closed(ws) == []
            assert ws.close_code == 4408
        async with socket(run, heartbeat=0.05) as pinging:  # pings do not count as signing in
            assert await until_closed(pinging) == []
            assert pinging.close_code == 4408


async def test_a_bad_first_frame_closes_the_socket(tmp_path: Path) -> None:
    async with serve(data_dir=tmp_path) as run:
        for frame in (b"\x00\x01", "{not json", "[1, 2]", '{"type": 7}'):
            error, code = await refused(run, frame)
            assert (error["code"], code) == ("malformed_frame", 1008)
        for frame in ({"type": "accept", "conversation": "x"}, {"type": "auth"}):
            error, code = await refused(run, frame)
            assert (error["code"], code) == ("unauthorized", 4401)


async def test_repeated_wrong_tokens_are_refused_until_the_cool_down(tmp_path: Path) -> None:
    config = desk_config(
        tmp_path, sign_in={"max_failures": 3, "window_s": 60, "cooldown_s": 120, "delay_s": 0}
    )
    async with serve(config, data_dir=tmp_path / "d") as run:
        clock = Clock()
        run.engine.providers["agents"].throttle.clock = clock
        right = {"type": "auth", "token": AGENT_TOKEN, "agent": {"name": "Ann"}}
        for guess in ("wrong-token-000000001", "wrong-token-000000002", "wrong-token-000000003"):
            error, code = await refused(run, {"type": "auth", "token": guess})
            assert (error["code"], code) == ("unauthorized", 4401)
        error, code = await refused(run, right)  # the right token, but too late
        assert (error["code"], code) == ("too_many_attempts", 4429)
        assert error["retry_after"] == 120
        clock.now += 119
        error, code = await refused(run, right)
        assert (error["code"], error["retry_after"], code) == ("too_many_attempts", 1, 4429)
        clock.now += 2
        async with signed_in(run, **{k: v for k, v in right.items() if k != "type"}) as (_, ready):
            assert ready["agent"]["name"] == "Ann"


async def test_desk_socket_upgrades_are_checked_against_allowed_origins(tmp_path: Path) -> None:
    config = desk_config(tmp_path, midtier={"allowed_origins": ["https://Help.Example.com:443/"]})
    async with serve(config, data_dir=tmp_path / "d") as run:
        own = run.base  # the page midtier served itself
        for origin in (own, "https://help.example.com", None):
            headers = {"Origin": origin} if origin else {}
            async with signed_in_with(run, headers) as ready:
                assert ready["type"] == "ready"
        # Behind a proxy: the Host the browser used, default ports left out, scheme not compared.
        for host, origin in (
            ("desk.example.com", "https://desk.example.com"),
            ("desk.example.com", "http://DESK.example.com:80"),
            ("desk.example.com:8443", "https://desk.example.com:8443"),
            ("[::1]:3978", "http://[::1]:3978"),
        ):
            async with signed_in_with(run, {"Host": host, "Origin": origin}) as ready:
                assert ready["type"] == "ready"
        for host, origin in (
            ("desk.example.com:8443", "https://desk.example.com"),
            ("desk.example.com", "https://desk.example.com.evil.example"),
            ("desk.example.com", "https://evil.example/desk.example.com"),
        ):
            async with aiohttp.ClientSession() as http:
                with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                    await http.ws_connect(
                        f"{run.ws_base}/agent/ws", headers={"Host": host, "Origin": origin}
                    )
                assert info.value.status == 403
        for origin in ("https://evil.example", "http://help.example.com", "null", "\u00ff://x"):
            async with aiohttp.ClientSession() as http:
                with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                    await http.ws_connect(f"{run.ws_base}/agent/ws", headers={"Origin": origin})
                assert info.value.status == 403
            async with (
                aiohttp.ClientSession() as http,
                http.get(
                    f"{run.base}/agent/ws",
                    headers={"Origin": origin, "Connection": "Upgrade", "Upgrade": "websocket"},
                ) as answer,
            ):
                assert answer.status == 403
                assert "allowed_origins" in (await answer.json())["reason"]


@asynccontextmanager
async def signed_in_with(run: Running, headers: dict[str, str]) -> AsyncIterator[dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{run.ws_base}/agent/ws", headers=headers) as ws,
    ):
        client = Frames(ws)
        await client.send(type="auth", token=AGENT_TOKEN, agent={"name": "Ann"})
        yield await client.expect("ready")


# --------------------------------------------------------------------------- accepting


async def test_of_agents_accepting_at_once_exactly_one_wins_and_greets_once(
    tmp_path: Path,
) -> None:
    async with serve(data_dir=tmp_path) as run:
        for round_ in range(3):
            async with chat(run) as (user, _):
                await to_the_desk_of(run, user)
                async with (
                    agent(run, "Ann") as ann,
                    agent(run, "Bob") as bob,
                    agent(run, "Cy") as cy,
                ):
                    desks = [ann, bob, cy]
                    queued = await ann.expect("queue", waiting)
                    [card] = [c for c in queued["conversations"] if c["status"] == "waiting"]
                    conversation = card["conversation"]
                    await asyncio.gather(
                        *(d.send(type="accept", conversation=conversation) for d in desks)
                    )
                    final = await ann.expect("queue", assigned(conversation))
                    [holder] = [
                        c["agent"]
                        for c in final["conversations"]
                        if c["conversation"] == conversation
                    ]
                    ids = [d.of("ready")[0]["agent"]["id"] for d in desks]
                    [winner] = [d for d, i in zip(desks, ids, strict=True) if i == holder["id"]]
                    for loser in (d for d in desks if d is not winner):
                        error = await loser.expect("error")
                        assert error["code"] == "taken" and error["conversation"] == conversation
                        assert error["reason"] == f"{holder['name']} already took this conversation"
                    marker = f"round {round_}: how can I help?"
                    await winner.send(type="send", conversation=conversation, text=marker)
                    await user.expect("message", lambda f, m=marker: f["text"] == m)
                    assert winner.of("error") == []
                greetings = [f for f in user.of("message") if GREETING in f["text"]]
                assert len(greetings) == 1 and holder["name"] in greetings[0]["text"]
        for session in await run.engine.store.list_sessions():
            said = [e.text or "" for e in await run.engine.store.transcript(session.id)]
            assert sum(GREETING in text for text in said) == 1


async def test_accepting_twice_is_harmless_and_others_need_to_accept_first(tmp_path: Path) -> None:
    async with serve(data_dir=tmp_path) as run, chat(run) as (user, _):
        await to_the_desk(run, user)
        async with agent(run, "Ann") as ann, agent(run, "Bob") as bob:
            conversation = (await ann.expect("queue", waiting))["conversations"][0]["conversation"]
            await ann.send(type="accept", conversation=conversation)
            await ann.expect("queue", assigned(conversation))
            await ann.send(type="accept", conversation=conversation)
            await ann.send(type="send", conversation=conversation, text="still me")
            await user.expect("message", lambda f: f["text"] == "still me")
            assert ann.of("error") == []
            for kind in ("send", "resolve", "typing"):
                await bob.send(type=kind, conversation=conversation, text="x")
                assert (await bob.expect("error"))["code"] == "not_yours"
            await bob.send(type="accept", conversation="desk_nope")
            assert (await bob.expect("error"))["code"] == "not_found"
        assert sum(GREETING in f["text"] for f in user.of("message")) == 1


async def test_bad_frames_after_sign_in_get_errors_and_the_socket_stays_open(
    tmp_path: Path,
) -> None:
    async with serve(data_dir=tmp_path) as run, chat(run) as (user, _):
        await to_the_desk(run, user)
        async with agent(run, "Ann") as ann:
            conversation = (await ann.expect("queue", waiting))["conversations"][0]["conversation"]
            await ann.send(type="accept", conversation=conversation)
            await ann.expect("queue", assigned(conversation))
            bad: list[tuple[dict[str, Any] | str, str]] = [
                ({"type": "dance"}, "malformed_frame"),
                ("{not json", "malformed_frame"),
                ({"type": "accept", "conversation": 5}, "not_found"),
                ({"type": "accept", "conversation": "\ud800"}, "malformed_frame"),
                (
                    {"type": "send", "conversation": conversation, "text": "\ud800"},
                    "malformed_frame",
                ),
                ({"type": "send", "conversation": conversation, "text": ["hi"]}, "malformed_frame"),
                (
                    {"type": "transfer", "conversation": conversation, "target": "\udfff"},
                    "malformed_frame",
                ),
                (
                    {"type": "transfer", "conversation": conversation, "target": "agents"},
                    "malformed_frame",
                ),
            ]
            for frame, code in bad:
                await ann.ws.send_str(frame if isinstance(frame, str) else json.dumps(frame))
                assert (await ann.expect("error"))["code"] == code
            await ann.send(type="send", conversation=conversation, text="still here")
            await user.expect("message", lambda f: f["text"] == "still here")


# --------------------------------------------------------------------------- the user's side


async def test_the_user_is_told_when_no_agent_is_signed_in(tmp_path: Path) -> None:
    notice = "Nobody is at the desk yet; we keep your messages and answer here soon."
    config = desk_config(tmp_path, no_agent_notice=notice)
    async with serve(config, data_dir=tmp_path / "d") as run, chat(run) as (user, _):
        me = Chatter(user)
        await to_the_desk(run, user, me)
        told = await user.expect("message", lambda f: f["text"] == notice)
        # midtier says it, not an agent: no agent is there
        assert told["speaker"] == "system" and told["from"]["id"] == "midtier"
        said = [f["text"] for f in user.of("message")]
        assert said[-2:] == [
            "One moment, I'm passing you to a support agent. You can keep typing.",
            notice,
        ]
        await me.say("hello? anyone?")
        async with agent(run) as desk:
            card = (await desk.expect("queue", waiting))["conversations"][0]
            assert [e["text"] for e in card["transcript"] if e["speaker"] == "user"][-1] == (
                "hello? anyone?"
            )


async def test_nobody_is_told_there_is_no_agent_while_one_is_signed_in(tmp_path: Path) -> None:
    async with serve(data_dir=tmp_path) as run, agent(run) as desk, chat(run) as (user, _):
        await to_the_desk(run, user)
        conversation = (await desk.expect("queue", waiting))["conversations"][0]["conversation"]
        await desk.send(type="accept", conversation=conversation)
        first = await user.expect("message", lambda f: f["speaker"] == "agent")
        assert GREETING in first["text"]
        assert not any("No agent is signed in" in f["text"] for f in user.of("message"))


async def test_queue_cards_carry_the_customers_last_message(tmp_path: Path) -> None:
    async with serve(data_dir=tmp_path) as run, chat(run) as (user, _):
        me = Chatter(user)
        await to_the_desk(run, user, me)
        async with agent(run) as desk:
            card = (await desk.expect("queue", waiting))["conversations"][0]
            assert card["last_message"]["text"] == "I need to talk to a person"
            await me.say("my card was stolen")
            later = await desk.expect(
                "queue",
                lambda f: f["conversations"][0]["last_message"]["text"] == "my card was stolen",
            )
            assert later["conversations"][0]["last_message"]["at"] >= card["last_message"]["at"]


async def test_a_conversation_waiting_on_the_desk_is_on_its_queue_after_a_restart(
    tmp_path: Path,
) -> None:
    async with serve(data_dir=tmp_path) as run, chat(run) as (user, _):
        session = await to_the_desk(run, user)
    leg = session.current_leg
    assert leg is not None
    async with serve(data_dir=tmp_path) as run, agent(run) as desk:
        [card] = (await desk.expect("queue", waiting))["conversations"]
        assert card["conversation"] == leg.provider_conversation_id


# --------------------------------------------------------------------------- typing


async def customer_types(user: Frames) -> None:
    """The customer's page says it is typing (it does so while the user types)."""
    await user.send(type="typing")


async def test_agents_see_the_customer_typing(tmp_path: Path) -> None:
    async with serve(data_dir=tmp_path) as run, chat(run) as (user, _):
        session = await to_the_desk(run, user)
        async with agent(run, "Ann") as ann, agent(run, "Bob") as bob:
            conversation = (await ann.expect("queue", waiting))["conversations"][0]["conversation"]
            before = await run.engine.store.transcript(session.id)
            await customer_types(user)
            for desk in (ann, bob):
                typing = await desk.expect("typing")
                assert typing == {"type": "typing", "conversation": conversation, "speaker": "user"}
            assert await run.engine.store.transcript(session.id) == before  # nothing recorded


async def test_the_customer_sees_the_agent_typing_when_enabled(tmp_path: Path) -> None:
    config = desk_config(tmp_path, agent_typing=True)
    async with serve(config, data_dir=tmp_path / "d") as run, chat(run) as (user, _):
        session = await to_the_desk(run, user)
        async with agent(run, "Ann") as ann:
            assert ann.of("ready")[0]["typing"] is True
            conversation = (await ann.expect("queue", waiting))["conversations"][0]["conversation"]
            await ann.send(type="typing", conversation=conversation)
            assert (await ann.expect("error"))["code"] == "not_yours"  # accept first
            await ann.send(type="accept", conversation=conversation)
            await user.expect("message", lambda f: GREETING in f["text"])
            before = len(await run.engine.store.transcript(session.id))
            await ann.send(type="typing", conversation=conversation)
            shown = await user.expect("typing", lambda f: f["speaker"] == "agent")
            assert shown["from"]["name"] == "Ann"
            assert len(await run.engine.store.transcript(session.id)) == before
            await run.engine.outbox.settled(session.channel, session.channel_conversation_id)
            assert (
                await run.engine.store.outbox_pending(
                    session.channel, session.channel_conversation_id
                )
                == []
            )


async def test_agent_typing_goes_nowhere_when_nobody_listens_or_the_leg_moved_on(
    tmp_path: Path,
) -> None:
    config = desk_config(tmp_path, agent_typing=True)
    async with serve(config, data_dir=tmp_path / "d") as run:
        async with chat(run) as (user, welcome):
            me = Chatter(user)
            session = await to_the_desk(run, user, me)
        async with agent(run, "Ann") as ann:
            conversation = (await ann.expect("queue", waiting))["conversations"][0]["conversation"]
            await ann.send(type="accept", conversation=conversation)
            await ann.expect("queue", assigned(conversation))
            await ann.send(type="typing", conversation=conversation)  # the user's tab is closed
            await ann.send(type="resolve", conversation=conversation)
            assert (await ann.expect("closed"))["conversation"] == conversation
            assert ann.of("error") == []
        typing = Activity(type="typing", from_=ChannelAccount(id="agents:x", name="Ann"))
        async with chat(run, welcome["resume"]) as (back, _):
            await run.engine.host.signal("agents", conversation, typing)  # an old leg: dropped
            me.client = back
            await me.say("how do I reset my password")
            await back.expect("message", lambda f: "Forgot password" in f["text"])
        shown = [f for f in back.of("typing") if f["speaker"] == "agent"]
        assert shown == []
        # The reply came; its entry leaves the outbox in a commit right after that.
        await run.engine.outbox.settled(session.channel, session.channel_conversation_id)
        pending = await run.engine.store.outbox_pending(
            session.channel, session.channel_conversation_id
        )
        assert pending == []


def _b64(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

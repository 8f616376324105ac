"""Cross-channel continuation over real HTTP and WebSockets.

One midtier (the default deployment) with three channels: the web chat (a real WebSocket
client), and two instances of a small test-only webhook app whose platform proves the
sender's phone number (``support.phone_channel``, configured by dotted path), answered
through a fake platform. A live session moves from web chat to "SMS" with a code while an
agent has it; a user is offered their conversation by a phone number proved on both
channels; a route that serves SMS only gets the move offered; and codes that are wrong,
expired, used or guessed are refused.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from support.channel_world import environment
from support.fake_platform import FakePlatform, fake_platform
from support.phone_channel import PhoneChannel, PhoneUser, answer_sends
from support.server import AGENT_TOKEN, DEFAULT_CONFIG, Chatter, Frames, Running, agent, chat
from support.server import serve as serve_config

from connector.activity import now
from connector.cli import main
from connector.registry import resolve
from connector.sessions import MidTierSession

KIND = "support.phone_channel:PhoneChannel"
SECRETS = {"sms": "sms-secret-0123456789", "chatapp": "chatapp-secret-0123456789"}
ENV = {
    "MIDTIER_AGENT_TOKEN": AGENT_TOKEN,
    "TEST_SMS_SECRET": SECRETS["sms"],
    "TEST_CHATAPP_SECRET": SECRETS["chatapp"],
}
PHONE = "+16505551234"
CODE = re.compile(r"\b([2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4})\b")
TOKEN = re.compile(r"/continue#([A-Za-z0-9_-]{40,})")


@dataclass
class Deployment:
    run: Running
    platform: FakePlatform
    data: Path

    def phone(self, channel: str, number: str = PHONE) -> PhoneUser:
        return PhoneUser(self.run.base, self.platform, channel, number, SECRETS[channel])

    async def session(self, session_id: str) -> MidTierSession:
        found = await self.run.engine.store.get(session_id)
        assert found is not None
        return found

    async def on(self, channel: str, conversation: str) -> MidTierSession:
        found = await self.run.engine.store.by_channel(channel, conversation)
        assert found is not None
        return found


def _config(tmp_path: Path, api: str, routes: dict[str, Any] | None) -> Path:
    config = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG, config, ignore=shutil.ignore_patterns("__pycache__"))
    midtier = yaml.safe_load((config / "midtier.yaml").read_text())
    for name in SECRETS:
        secret = "${TEST_" + name.upper() + "_SECRET}"
        midtier["channels"][name] = {"kind": KIND, "secret": secret, "api_base": f"{api}/{name}"}
    midtier["continuation"]["channels"].update(
        {
            "sms": {"title": "SMS"},
            "chatapp": {"title": "Chat App", "link": "https://chatapp.example/open?text={code}"},
        }
    )
    (config / "midtier.yaml").write_text(yaml.safe_dump(midtier))
    if routes:
        routing = yaml.safe_load((config / "routing.yaml").read_text())
        for name, change in routes.items():
            routing["routes"][name].update(change)
        (config / "routing.yaml").write_text(yaml.safe_dump(routing))
    return config


@asynccontextmanager
async def deployment(
    tmp_path: Path, routes: dict[str, Any] | None = None
) -> AsyncIterator[Deployment]:
    with environment(ENV):
        async with fake_platform() as platform:
            for name in SECRETS:
                answer_sends(platform, name)
            config = _config(tmp_path, platform.base_url, routes)
            async with serve_config(config, data_dir=tmp_path / "data") as run:
                yield Deployment(run, platform, tmp_path / "data")


def _system(part: str) -> Any:
    return lambda f: f["speaker"] == "system" and part in f["text"]


async def _code_on_web(client: Frames, me: Chatter) -> tuple[str, str]:
    """Ask for a code in the web chat; (code, link token)."""
    await me.say("continue on another channel")
    offer = await client.expect("message", _system("send this code"))
    [code] = CODE.findall(offer["text"])
    [token] = TOKEN.findall(offer["text"])
    return code, token


def test_the_test_channel_is_found_by_its_dotted_path() -> None:
    assert resolve(KIND, "channels", ["adapters"], "midtier.yaml", "channels.sms.kind") is (
        PhoneChannel
    )


async def test_a_live_session_moves_from_web_chat_to_sms_with_its_agent_and_history(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with deployment(tmp_path) as world, chat(world.run) as (web, welcome):
        me, sms = Chatter(web), world.phone("sms")
        await me.say("hi")
        await web.expect("message", lambda f: "Acme Pay help assistant" in f["text"])
        await me.say("someone used my card without my permission")
        await web.expect("message", _system("passing you to"))
        async with agent(world.run) as desk:
            queued = await desk.expect("queue", lambda f: bool(f["conversations"]))
            [item] = queued["conversations"]
            ticket = item["conversation"]
            await desk.send(type="accept", conversation=ticket)
            await web.expect("message", lambda f: f["speaker"] == "agent")
            await desk.send(type="send", conversation=ticket, text="I've frozen your card.")
            await web.expect("message", lambda f: f["text"] == "I've frozen your card.")
            before = await world.on("webchat", welcome["conversation"])

            code, _ = await _code_on_web(web, me)
            lines = [e.text or "" for e in await world.run.engine.store.transcript(before.id)]
            assert not any(code in line for line in lines)  # the transcript keeps no code
            assert any("[code]" in line for line in lines)

            await sms.say(code.lower().replace("-", " "))  # as a user might type it
            here = await sms.expect(lambda t: t.startswith("You're continuing"))
            assert here == "You're continuing your conversation from web chat."
            gone = await web.expect("message", _system("continues on"))
            assert gone["text"].startswith("This conversation continues on SMS.")

            session = await world.session(before.id)
            assert (session.channel, session.channel_conversation_id) == ("sms", PHONE)
            assert session.user_id == PHONE
            channels = [(leg.channel, leg.provider) for leg in session.legs]
            assert channels == [("webchat", "faq"), ("webchat", "agents"), ("sms", "agents")]
            web_leg, sms_leg = session.legs[1:]
            assert web_leg.close_reason == "continued on sms" and sms_leg.is_open
            assert sms_leg.provider_conversation_id == web_leg.provider_conversation_id == ticket
            assert sms_leg.data["desk"]["agent"] == web_leg.data["desk"]["agent"]
            assert session.claims["verified"] is True and session.claims["channel"] == "sms"
            assert session.claims["identities"] == [f"phone:{PHONE}"]
            assert session.claims["linked"] == [
                {"sub": welcome["user"], "channel": "webchat", "verified": False}
            ]

            # The agent goes on in the same desk conversation, now answered on SMS.
            await desk.send(type="send", conversation=ticket, text="Anything else?")
            assert await sms.expect(lambda t: t == "Anything else?")
            await sms.say("no, that's all")
            said = await desk.expect("message", lambda f: f["text"] == "no, that's all")
            assert said["conversation"] == ticket
            # The desk shows the same conversation, still the agent's, with all of it.
            card = await desk.expect(
                "queue",
                lambda f: any(
                    e["text"] == "no, that's all"
                    for c in f["conversations"]
                    for e in c["transcript"]
                ),
            )
            [item] = card["conversations"]
            assert (item["conversation"], item["status"], item["agent"]["name"]) == (
                ticket,
                "assigned",
                "Dana",
            )
            lines = [e["text"] for e in item["transcript"] if e["speaker"] == "user"]
            assert lines[:2] == ["hi", "someone used my card without my permission"]
            await desk.send(type="resolve", conversation=ticket)
            await sms.expect(lambda t: t.startswith("You're back"))
        await sms.say("how do I reset my password")
        await sms.expect(lambda t: "Forgot password" in t)

        session = await world.session(before.id)
        assert [leg.provider for leg in session.legs] == ["faq", "agents", "agents", "faq"]
        assert session.legs[-1].channel == "sms"
        transcript = await world.run.engine.store.transcript(session.id)
        assert [e.text for e in transcript if e.speaker == "user"] == [
            "hi",
            "someone used my card without my permission",
            "continue on another channel",
            "no, that's all",
            "how do I reset my password",
        ]
        assert {"bot", "agent", "system"} <= {e.speaker for e in transcript}
        assert await world.run.engine.store.by_channel("webchat", welcome["conversation"]) is None

        # What the user writes in the web chat now starts a new conversation there.
        await me.say("hello again")
        await web.expect("message", lambda f: "Acme Pay help assistant" in f["text"])
        fresh = await world.on("webchat", welcome["conversation"])
        assert fresh.id != session.id and fresh.status == "active"

        # The same code a second time is refused.
        other = world.phone("sms", "+16505550000")
        await other.say(code)
        assert (await other.expect(lambda _t: True)).startswith("That code is not valid")

    capsys.readouterr()
    assert (
        await asyncio.to_thread(main, ["sessions", "show", session.id, "--data", str(world.data)])
        == 0
    )
    shown = capsys.readouterr().out
    assert f"on webchat / {welcome['conversation']}" in shown and f"on sms / {PHONE}" in shown


async def test_a_session_moves_from_sms_to_web_chat_and_the_page_shows_all_of_it(
    tmp_path: Path,
) -> None:
    async with deployment(tmp_path) as world:
        sms = world.phone("sms")
        await sms.say("what's my balance?")
        await sms.expect(lambda t: "Home tab" in t)
        await sms.say("/continue")
        [code] = CODE.findall(await sms.expect(lambda t: "send this code" in t))
        async with chat(world.run) as (web, welcome):
            await Chatter(web).say(f"{code}.")  # pasted with the sentence's full stop
            await web.expect("message", _system("continuing your conversation from SMS"))
        moved = await world.on("webchat", welcome["conversation"])
        assert moved.claims["channel"] == "sms" and moved.claims["verified"] is True
        # The page comes back later: its resume secret is the session's now, with all of it.
        async with chat(world.run, resume=welcome["resume"]) as (_, again):
            assert again["resumed"] is True
            said = [f["text"] for f in again["history"] if f["speaker"] == "user"]
            assert said == ["what's my balance?", "/continue"]


async def test_a_phone_number_proved_on_both_channels_offers_the_conversation(
    tmp_path: Path,
) -> None:
    async with deployment(tmp_path) as world:
        app, sms = world.phone("chatapp"), world.phone("sms")
        await app.say("what's my balance?")
        await app.expect(lambda t: "Home tab" in t)
        [started] = [
            s for s in await world.run.engine.store.list_sessions() if s.channel == "chatapp"
        ]

        await sms.say("hi")
        offer = await sms.expect(lambda _t: True)
        assert (
            offer
            == "Continue your conversation from Chat App? Reply YES, or just tell me what you need."
        )
        assert (await world.session(started.id)).channel == "chatapp"  # nothing moves unasked
        await sms.say("Yes")
        assert (
            await sms.expect(lambda _t: True)
            == "You're continuing your conversation from Chat App."
        )
        assert (await app.expect(lambda t: "continues on" in t)).startswith(
            "This conversation continues on SMS."
        )
        moved = await world.session(started.id)
        assert (moved.channel, moved.channel_conversation_id) == ("sms", PHONE)
        assert [(leg.channel, leg.provider) for leg in moved.legs] == [
            ("chatapp", "faq"),
            ("sms", "faq"),
        ]

        # Another number's first message is routed as usual, and one that declines the
        # offer carries on in a conversation of its own.
        stranger = world.phone("sms", "+16505550000")
        await stranger.say("hi")
        assert "Acme Pay help assistant" in await stranger.expect(lambda _t: True)
        await app.say("hi")
        await app.expect(lambda t: t.startswith("Continue your conversation from SMS?"))
        await app.say("what's my balance?")
        await app.expect(lambda t: "Home tab" in t)
        own = await world.on("chatapp", PHONE)
        assert own.id != moved.id and own.status == "active"
        assert (await world.session(moved.id)).channel == "sms"


async def test_a_provider_that_serves_another_channel_only_is_offered_as_a_move(
    tmp_path: Path,
) -> None:
    routes = {"disputes": {"channels": ["sms"]}}
    async with deployment(tmp_path, routes) as world, chat(world.run) as (web, welcome):
        me = Chatter(web)
        await me.say("I want to dispute a charge")
        offer = await web.expect("message", _system("can help you with this on SMS"))
        assert offer["text"].startswith("The disputes assistant can help you with this on SMS.")
        [code] = CODE.findall(offer["text"])
        session = await world.on("webchat", welcome["conversation"])
        [decision] = await world.run.engine.store.decisions(session.id)
        assert (decision.action, decision.provider, decision.channels) == (
            "move",
            "disputes",
            ["sms"],
        )
        assert decision.next_best == "agents" and session.legs == []

        # On SMS with the code: the question that asked for it is answered there.
        sms = world.phone("sms")
        await sms.say(code)
        await sms.expect(lambda t: t.startswith("You're continuing"))
        await sms.expect(lambda t: "merchant" in t)
        moved = await world.session(session.id)
        assert moved.channel == "sms" and moved.current_provider == "disputes"

    async with deployment(tmp_path / "again", routes) as world, chat(world.run) as (web, _):
        me = Chatter(web)
        await me.say("I want to dispute a charge")
        await web.expect("message", _system("can help you with this on SMS"))
        # Carrying on in the web chat: routing goes on as before, without the SMS-only bot.
        await me.say("I want to dispute a charge")
        await web.expect("message", _system("passing you to a support agent"))


async def test_wrong_expired_and_guessed_codes_are_refused(tmp_path: Path) -> None:
    async with deployment(tmp_path) as world, chat(world.run) as (web, welcome):
        me = Chatter(web)
        sms = world.phone("sms")
        await sms.say("ABCD-EFG2")
        assert (await sms.expect(lambda _t: True)).startswith("That code is not valid")

        # An expired code.
        codes = world.run.engine.continuation.codes
        code, _ = await _code_on_web(web, me)  # (that was one wrong code)
        later = now() + timedelta(minutes=11)
        codes.clock = lambda: later
        await sms.say(code)
        assert (await sms.expect(lambda _t: True)).startswith("That code is not valid")
        codes.clock = now

        # Guessing: after five wrong codes from one conversation (two so far), even the right
        # one is refused there, while another conversation can still use it.
        code, token = await _code_on_web(web, me)
        for _ in range(3):
            await sms.say("ZZZZ-ZZZ2")
            assert (await sms.expect(lambda _t: True)).startswith("That code is not valid")
        await sms.say(code)
        assert (await sms.expect(lambda _t: True)).startswith("Too many wrong codes")
        assert (await world.on("webchat", welcome["conversation"])).channel == "webchat"

        async with aiohttp.ClientSession() as http:
            page = await http.get(f"{world.run.base}/continue")
            assert (
                page.status == 200
                and "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
            )
            link = await http.post(f"{world.run.base}/continue", json={"token": token})
            shown = await link.json()
            assert link.status == 200 and shown["code"] == code
            by_name = {c["channel"]: c for c in shown["channels"]}
            assert set(by_name) == {"sms", "chatapp"}  # not the one the user is on
            assert by_name["chatapp"]["link"] == f"https://chatapp.example/open?text={code}"
            assert by_name["sms"] == {"channel": "sms", "title": "SMS", "link": None}
            unknown = await http.post(f"{world.run.base}/continue", json={"token": "x" * 43})
            assert unknown.status == 404

            app = world.phone("chatapp", "+16505550000")
            await app.say(code)
            await app.expect(lambda t: t.startswith("You're continuing"))
            used = await http.post(f"{world.run.base}/continue", json={"token": token})
            assert used.status == 404

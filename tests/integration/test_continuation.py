"""Cross-channel continuation over real HTTP and WebSockets: moving with a code, and by a
phone number proved on both channels.

One midtier (the default deployment) with three channels: the web chat (a real WebSocket
client), and two instances of a small test-only webhook app whose platform proves the
sender's phone number (``support.phone_channel``, configured by dotted path), answered
through a fake platform (``support.continuation_world``). A live session moves from web
chat to "SMS" with a code while an agent has it, and back into a web chat; a user is offered
their conversation by a phone number proved on both channels.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from support.continuation_world import CODE, KIND, PHONE, code_on_web, deployment, system
from support.phone_channel import PhoneChannel
from support.server import Chatter, agent, chat

from connector.cli import main
from connector.registry import resolve


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
        await web.expect("message", system("passing you to"))
        async with agent(world.run) as desk:
            queued = await desk.expect("queue", lambda f: bool(f["conversations"]))
            [item] = queued["conversations"]
            ticket = item["conversation"]
            await desk.send(type="accept", conversation=ticket)
            await web.expect("message", lambda f: f["speaker"] == "agent")
            await desk.send(type="send", conversation=ticket, text="I've frozen your card.")
            await web.expect("message", lambda f: f["text"] == "I've frozen your card.")
            before = await world.on("webchat", welcome["conversation"])

            code, _ = await code_on_web(web, me)
            lines = [e.text or "" for e in await world.run.engine.store.transcript(before.id)]
            assert not any(code in line for line in lines)  # the transcript keeps no code
            assert any("[code]" in line for line in lines)

            await sms.say(code.lower().replace("-", " "))  # as a user might type it
            here = await sms.expect(lambda t: t.startswith("You're continuing"))
            assert here == "You're continuing your conversation from web chat."
            gone = await web.expect("message", system("continues on"))
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
            await web.expect("message", system("continuing your conversation from SMS"))
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

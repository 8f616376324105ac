"""One conversation over real HTTP and WebSockets: bot -> switch -> agent -> back to the bot.

The server is the default deployment (bot_configs/) on 127.0.0.1 with a fresh SQLite file;
the user is a web chat WebSocket client, the agent an agent desk WebSocket client. After each
step the session map and transcript are checked in the store.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.server import AGENT_TOKEN, Chatter, Running, agent, chat, serve

from connector.sessions import MidTierSession


@pytest.fixture(autouse=True)
def _agent_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIDTIER_AGENT_TOKEN", AGENT_TOKEN)


async def _session(run: Running, conversation: str) -> MidTierSession:
    session = await run.engine.store.by_channel("webchat", conversation)
    assert session is not None
    return session


def _bot(text_part: str) -> object:
    return lambda f: f["speaker"] == "bot" and text_part in f["text"]


async def test_bot_switch_agent_and_back_in_one_session(tmp_path: Path) -> None:
    async with serve(data_dir=tmp_path) as run, chat(run) as (user, welcome):
        conversation = welcome["conversation"]
        assert welcome["resumed"] is False and welcome["history"] == []
        me = Chatter(user)

        # 1. The FAQ bot answers.
        await me.say("hi")
        await user.expect("message", _bot("Acme Pay help assistant"))
        await me.say("what's my balance?")
        await user.expect("message", _bot("Home tab"))
        session = await _session(run, conversation)
        assert session.user_id == welcome["user"]
        assert [leg.provider for leg in session.legs] == ["faq"]
        faq_leg = session.legs[0]
        assert (
            await run.engine.store.by_provider("faq", faq_leg.provider_conversation_id) == session
        )

        # 2. Fraud is not the FAQ bot's: the conversation moves to the agent desk.
        await me.say("someone used my card without my permission")
        notice = await user.expect("message", lambda f: f["speaker"] == "system")
        assert (
            notice["text"] == "One moment, I'm passing you to a support agent. You can keep typing."
        )
        nobody = await user.expect("message", lambda f: f["speaker"] == "system" and f != notice)
        assert nobody["text"].startswith("No agent is signed in right now.")
        session = await _session(run, conversation)
        assert [leg.provider for leg in session.legs] == ["faq", "agents"]
        assert session.legs[0].close_reason == (
            "reported fraud (agents serves report_fraud; faq does not)"
        )
        assert session.current_provider == "agents" and session.legs[1].is_open

        # 3. The agent sees it waiting, with transcript, intent and reason; the user keeps typing.
        async with agent(run) as desk:
            queued = await desk.expect("queue", lambda f: bool(f["conversations"]))
            [item] = queued["conversations"]
            assert item["status"] == "waiting" and item["intent"] == "report_fraud"
            assert item["reason"] == "reported fraud"  # for people; the rule stays in the leg
            assert item["from_provider"] == "faq"
            assert item["user"]["claims"] == {
                "sub": welcome["user"],
                "channel": "webchat",
                "verified": False,
            }
            said = [e["text"] for e in item["transcript"] if e["speaker"] == "user"]
            assert said == [
                "hi",
                "what's my balance?",
                "someone used my card without my permission",
            ]

            await me.say("hello? is anyone there")
            typed = await desk.expect("message")
            assert typed["text"] == "hello? is anyone there" and typed["speaker"] == "user"

            # 4. The agent accepts and chats.
            await desk.send(type="accept", conversation=item["conversation"])
            hello = await user.expect("message", lambda f: f["speaker"] == "agent")
            assert hello["from"]["name"] == "Dana" and "Dana" in hello["text"]
            await desk.expect(
                "queue", lambda f: any(c["status"] == "assigned" for c in f["conversations"])
            )
            await desk.send(
                type="send", conversation=item["conversation"], text="I've frozen your card."
            )
            await user.expect("message", lambda f: f["text"] == "I've frozen your card.")
            await me.say("thank you!")  # sticky: stays with the agent despite a clear intent
            await desk.expect("message", lambda f: f["text"] == "thank you!")
            session = await _session(run, conversation)
            assert session.current_provider == "agents"

            # 5. The agent resolves: the conversation goes back to the FAQ bot.
            await desk.send(type="resolve", conversation=item["conversation"])
            back = await user.expect("message", lambda f: f["text"].startswith("You're back"))
            assert back["text"] == (
                "You're back with the Acme Pay assistant. Anything else I can help with?"
            )
            closed = await desk.expect("closed")
            assert closed["reason"] == "resolved by agent Dana"

        session = await _session(run, conversation)
        assert [leg.provider for leg in session.legs] == ["faq", "agents", "faq"]
        assert session.legs[1].close_reason == "resolved by agent Dana"
        assert session.legs[2].open_reason == "resolved by agent Dana"

        # 6. The bot serves the next question, in the same mid-tier session.
        await me.say("how do I reset my password")
        await user.expect("message", _bot("Forgot password"))
        assert (await _session(run, conversation)).id == session.id

        transcript = await run.engine.store.transcript(session.id)
        flow = [(e.speaker, e.provider) for e in transcript if e.speaker != "system"]
        assert flow[:2] == [("user", None), ("bot", "faq")]
        assert ("agent", "agents") in flow and flow[-1] == ("bot", "faq")
        decisions = await run.engine.store.decisions(session.id)
        assert [d.action for d in decisions][:3] == ["open", "stay", "switch"]
        assert decisions[2].intent == "report_fraud" and decisions[2].provider == "agents"


async def test_bot_requested_handoff_reaches_the_agent_desk(tmp_path: Path) -> None:
    async with serve(data_dir=tmp_path) as run, chat(run) as (user, welcome):
        me = Chatter(user)
        await me.say("I want to dispute a charge")
        await user.expect("message", _bot("merchant"))
        session = await _session(run, welcome["conversation"])
        assert session.current_provider == "disputes"
        await me.say("Grand Hotel")
        await user.expect("message", _bot("How much"))
        await me.say("$2500")
        notice = await user.expect("message", lambda f: f["speaker"] == "system")
        assert "support agent" in notice["text"]
        session = await _session(run, welcome["conversation"])
        assert [leg.provider for leg in session.legs] == ["disputes", "agents"]
        assert session.legs[0].close_reason == "high-value dispute"
        async with agent(run) as desk:
            queued = await desk.expect("queue", lambda f: bool(f["conversations"]))
            assert queued["conversations"][0]["reason"] == "high-value dispute"


async def test_agent_transfers_to_the_disputes_bot(tmp_path: Path) -> None:
    async with serve(data_dir=tmp_path) as run, chat(run) as (user, welcome):
        me = Chatter(user)
        await me.say("hi")
        await me.say("I need to talk to a person")
        await user.expect("message", lambda f: f["speaker"] == "system")
        async with agent(run) as desk:
            ready_targets = {t["name"] for t in desk.of("ready")[0]["targets"]}
            assert ready_targets == {"faq", "disputes"}
            queued = await desk.expect("queue", lambda f: bool(f["conversations"]))
            conversation = queued["conversations"][0]["conversation"]
            await desk.send(type="transfer", conversation=conversation, target="disputes")
            await desk.expect("error", lambda f: f["code"] == "not_yours")  # accept first
            await desk.send(type="accept", conversation=conversation)
            await desk.send(type="transfer", conversation=conversation, target="nowhere")
            await desk.expect("error", lambda f: f["code"] == "malformed_frame")
            await desk.send(type="transfer", conversation=conversation, target="disputes")
            notice = await user.expect(
                "message", lambda f: f["speaker"] == "system" and "disputes" in f["text"]
            )
            assert notice["text"] == (
                "One moment, I'm passing you to the disputes assistant. You can keep typing."
            )
            assert (await desk.expect("closed"))["reason"] == "transferred by agent Dana"
        session = await _session(run, welcome["conversation"])
        assert [leg.provider for leg in session.legs] == ["faq", "agents", "disputes"]
        assert session.legs[2].open_reason == "transferred by agent Dana"
        await me.say("it's about a charge I don't recognise")
        await user.expect("message", _bot("merchant"))

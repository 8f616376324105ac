"""Rasa bots behind midtier over real HTTP: a Rasa-compatible server, a real action server.

midtier runs on 127.0.0.1 with bot_configs/ plus a Rasa provider ``orders`` (track_order);
the Rasa side is ``FakeRasa`` (records what it gets) and, for the handoff, the real rasa-sdk
action server from ``.venv-rasa`` running ``adapters.botside.rasa.ActionHandoff``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from support.rasa_config import CALLBACK_SECRET, ORDERS_CREDENTIAL, rasa_config
from support.rasa_fake import HANDOFF_WORD, FakeRasa, action_server
from support.server import AGENT_TOKEN, Chatter, Running, agent, chat, serve

from connector.sessions import MidTierSession

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _agent_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIDTIER_AGENT_TOKEN", AGENT_TOKEN)


@pytest.fixture(scope="module")
def actions() -> Iterator[str]:
    with action_server() as url:
        yield url


async def _session(run: Running, conversation: str) -> MidTierSession:
    session = await run.engine.store.by_channel("webchat", conversation)
    assert session is not None
    return session


def _from_orders(text: str) -> Any:
    return lambda f: f["speaker"] == "bot" and f["from"]["id"] == "orders" and text in f["text"]


async def test_rest_bot_answers_with_sender_and_metadata(tmp_path: Path) -> None:
    async with (
        FakeRasa().running() as rasa,
        serve(rasa_config(tmp_path, rasa.base), data_dir=tmp_path / "data") as run,
        chat(run) as (user, welcome),
    ):
        me = Chatter(user)
        await me.say("where is my order")
        await user.expect("message", _from_orders("rasa heard: where is my order"))
        await me.say("show me a picture")
        picture = await user.expect("message", _from_orders("Image: https://example.org/"))
        await me.say("buttons please")
        asked = await user.expect("message", _from_orders("Shall I?"))
        assert picture["text"] == "Image: https://example.org/parcel.jpg"
        assert asked["text"] == "Shall I?\n1: Yes\n2: No"

        session = await _session(run, welcome["conversation"])
        [leg] = session.legs
        assert leg.provider == "orders" and leg.data["expecting_input"] is True
        first, second, _ = rasa.received
        sender = leg.provider_conversation_id
        assert sender.startswith(welcome["user"] + ":") and len(sender) == len(welcome["user"]) + 17
        assert [r["sender"] for r in rasa.received] == [sender] * 3
        assert all(r["channel"] == "rest" for r in rasa.received)
        meta = first["metadata"]["midtier"]
        assert meta["intent"] == "track_order" and meta["confidence"] >= 0.45
        assert meta["session"] == session.id and meta["channel"] == "webchat"
        assert meta["leg"] == leg.id and meta["token_url"] == f"{run.base}/auth/token"
        assert meta["handoff"]["from_provider"] is None
        assert "auth_code" not in second["metadata"]["midtier"]
        assert second["metadata"]["midtier"]["session"] == session.id

        # The code in the metadata is real: the Rasa side redeems it once.
        form = {"client_id": "orders", "code": meta["auth_code"]}
        headers = {"Authorization": f"Bearer {ORDERS_CREDENTIAL}"}
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{run.base}/auth/token", data=form, headers=headers) as r:
                assert r.status == 200
                grant = await r.json()
            async with http.post(f"{run.base}/auth/token", data=form, headers=headers) as r:
                assert r.status == 400
        assert grant["session_id"] == session.id and grant["user_id"] == welcome["user"]


async def test_handoff_action_moves_the_conversation_and_the_bot_resumes_later(
    tmp_path: Path, actions: str
) -> None:
    reason = "refund over the bot's limit"
    async with (
        FakeRasa(actions).running() as rasa,
        serve(rasa_config(tmp_path, rasa.base), data_dir=tmp_path / "data") as run,
        chat(run) as (user, welcome),
    ):
        rasa.slots = {"handoff_provider": "agents", "handoff_reason": reason}
        me = Chatter(user)
        await me.say("where is my order")
        await user.expect("message", _from_orders("rasa heard"))
        await me.say(f"qqq {HANDOFF_WORD}")
        notice = await user.expect("message", lambda f: f["speaker"] == "system")
        assert notice["text"] == (
            "One moment, I'm passing you to a support agent. You can keep typing."
        )
        # What the real action server answered, and what the fake Rasa applied.
        [answer] = rasa.action_calls
        assert answer["responses"][0]["custom"] == {
            "midtier": {"handoff": {"provider": "agents", "reason": reason, "paused": True}}
        }
        assert {"event": "pause", "timestamp": None} in answer["events"]
        sender = rasa.received[0]["sender"]
        assert sender in rasa.paused
        session = await _session(run, welcome["conversation"])
        assert [leg.provider for leg in session.legs] == ["orders", "agents"]
        assert session.legs[0].close_reason == reason and session.legs[1].open_reason == reason
        assert session.legs[0].data["rasa_paused"] is True

        async with agent(run) as desk:
            queued = await desk.expect("queue", lambda f: bool(f["conversations"]))
            item = queued["conversations"][0]
            assert item["reason"] == reason and item["from_provider"] == "orders"
            await desk.send(type="accept", conversation=item["conversation"])
            await user.expect("message", lambda f: f["speaker"] == "agent")
            await desk.send(type="resolve", conversation=item["conversation"])
            await user.expect("message", lambda f: f["text"].startswith("You're back"))

        # Back with the same Rasa conversation: midtier resumed the paused tracker first.
        assert rasa.events == [(sender, {"event": "resume"})]
        assert sender not in rasa.paused
        await me.say("has it shipped")
        await user.expect("message", _from_orders("rasa heard: has it shipped"))
        session = await _session(run, welcome["conversation"])
        assert [leg.provider for leg in session.legs] == ["orders", "agents", "orders"]
        assert session.legs[2].provider_conversation_id == sender
        assert rasa.received[-1]["sender"] == sender
        back = rasa.received[-1]["metadata"]["midtier"]
        assert back["handoff"]["from_provider"] == "agents" and back["auth_code"]


@pytest.mark.parametrize("failure", ["http_500", "timeout"])
async def test_failing_rasa_loses_the_conversation_and_the_user_is_told(
    tmp_path: Path, failure: str
) -> None:
    async with (
        FakeRasa().running() as rasa,
        serve(rasa_config(tmp_path, rasa.base, timeout_s=1), data_dir=tmp_path / "data") as run,
        chat(run) as (user, welcome),
    ):
        if failure == "http_500":
            rasa.fail_status = 500
        else:
            rasa.hang.set()
        await Chatter(user).say("where is my order")
        notice = await user.expect("message", lambda f: f["speaker"] == "system")
        assert (
            notice["text"] == "Sorry, something went wrong on our side. Let me get you some help."
        )
        session = await _session(run, welcome["conversation"])
        assert [leg.provider for leg in session.legs] == ["orders", "agents"]
        assert session.legs[1].open_reason == "orders failed to answer"
        assert len(rasa.received) == 1


async def _callback_run(tmp_path: Path, rasa: FakeRasa) -> tuple[Path, str]:
    config = rasa_config(tmp_path, rasa.base, channel="callback", callback_secret=CALLBACK_SECRET)
    return config, f"?secret={CALLBACK_SECRET}"


async def test_callback_replies_reach_the_right_user(tmp_path: Path) -> None:
    async with FakeRasa().running() as rasa:
        config, query = await _callback_run(tmp_path, rasa)
        async with (
            serve(config, data_dir=tmp_path / "data") as run,
            chat(run) as (alice, hello_a),
            chat(run) as (bob, hello_b),
        ):
            callback = f"{run.base}/rasa/orders/callback"
            rasa.callback_url = callback + query
            await Chatter(alice).say("where is my order")
            await alice.expect("message", _from_orders("rasa heard: where is my order"))
            await Chatter(bob).say("track my order please")
            await bob.expect("message", _from_orders("rasa heard: track my order please"))
            assert rasa.callback_statuses == [200, 200]
            assert [r["channel"] for r in rasa.received] == ["callback", "callback"]
            alice_sender = rasa.received[0]["sender"]
            assert alice_sender.startswith(hello_a["user"] + ":")
            assert rasa.received[0]["metadata"]["midtier"]["intent"] == "track_order"

            # Later, outside any turn (a reminder, say): only Alice gets it.
            later = {"recipient_id": alice_sender, "text": "Your parcel is out for delivery."}
            assert await rasa.post_callback(later) == 200
            await alice.expect("message", _from_orders("out for delivery"))
            session_b = await _session(run, hello_b["conversation"])
            said_b = [e.text for e in await run.engine.store.transcript(session_b.id)]
            assert "Your parcel is out for delivery." not in said_b

            # Wrong or missing secret: refused, nothing touched. Unknown recipient: 404.
            session_a = await _session(run, hello_a["conversation"])
            before = await run.engine.store.transcript(session_a.id)
            sneaky = {"recipient_id": alice_sender, "text": "click this link"}
            assert await rasa.post_callback(sneaky, callback + "?secret=wrong-secret") == 403
            assert await rasa.post_callback(sneaky, callback) == 401
            async with aiohttp.ClientSession() as http:
                bearer = {"Authorization": "Bearer nope"}
                async with http.post(callback, json=sneaky, headers=bearer) as response:
                    assert response.status == 403
            assert await run.engine.store.transcript(session_a.id) == before
            assert await rasa.post_callback({"recipient_id": "nobody:x", "text": "hi"}) == 404
            assert await rasa.post_callback({"text": "no recipient"}) == 400


async def test_callback_handoff_by_intent_reaches_the_disputes_bot(
    tmp_path: Path, actions: str
) -> None:
    async with FakeRasa(actions).running() as rasa:
        config, query = await _callback_run(tmp_path, rasa)
        async with (
            serve(config, data_dir=tmp_path / "data") as run,
            chat(run) as (user, welcome),
        ):
            rasa.callback_url = f"{run.base}/rasa/orders/callback{query}"
            rasa.slots = {"handoff_intent": "dispute_charge", "handoff_reason": "wrong amount"}
            me = Chatter(user)
            await me.say("where is my order")
            await user.expect("message", _from_orders("rasa heard"))
            await me.say(f"zzz {HANDOFF_WORD}")
            notice = await user.expect("message", lambda f: f["speaker"] == "system")
            assert "disputes assistant" in notice["text"]
            session = await _session(run, welcome["conversation"])
            assert [leg.provider for leg in session.legs] == ["orders", "disputes"]
            assert session.legs[1].open_reason == "wrong amount"
            assert rasa.slots["handoff_intent"] is None  # the action cleared its slots
            await me.say("the amount is wrong")
            await user.expect("message", lambda f: f["from"]["id"] == "disputes")


async def test_callback_handoff_outside_a_turn_switches_the_conversation(tmp_path: Path) -> None:
    async with FakeRasa().running() as rasa:
        config, query = await _callback_run(tmp_path, rasa)
        async with (
            serve(config, data_dir=tmp_path / "data") as run,
            chat(run) as (user, welcome),
        ):
            rasa.callback_url = f"{run.base}/rasa/orders/callback{query}"
            await Chatter(user).say("where is my order")
            await user.expect("message", _from_orders("rasa heard"))
            sender = rasa.received[0]["sender"]
            request = {"provider": "agents", "reason": "courier lost it", "paused": True}
            custom = {"midtier": {"handoff": request}}
            assert await rasa.post_callback({"recipient_id": sender, "custom": custom}) == 200
            notice = await user.expect("message", lambda f: f["speaker"] == "system")
            assert "support agent" in notice["text"]
            session = await _session(run, welcome["conversation"])
            assert [leg.provider for leg in session.legs] == ["orders", "agents"]
            assert session.legs[0].data["rasa_paused"] is True
            assert session.legs[1].open_reason == "courier lost it"

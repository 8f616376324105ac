"""One mid-tier session across three kinds of provider, with real processes.

bot A (a remote botbuilder bot, its own process, the home bot) hands off to bot B (a Rasa bot
on a Rasa-compatible server) with ``handoff.initiate``; the user asks B for a person, so the
router moves the conversation to the agent desk; the agent resolves it and it goes back to
bot A. The legs, their reasons and the transcript are then read with ``midtier sessions show``.
(A Rasa bot's own handoff through the real rasa-sdk action server, which returns to that bot,
is in ``test_rasa_bots.py``.)
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.bots.deploy import write_config
from support.bots.launch import run_bot
from support.rasa_config import KIND as RASA_KIND
from support.rasa_config import TRACK_ORDER
from support.rasa_fake import FakeRasa
from support.server import AGENT_TOKEN, REPO, Chatter, agent, chat, serve

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _agent_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIDTIER_AGENT_TOKEN", AGENT_TOKEN)


def _add_rasa_bot(config: Path, url: str) -> None:
    (config / "nlu" / "orders.yml").write_text(TRACK_ORDER, encoding="utf-8")
    providers = yaml.safe_load((config / "providers.yaml").read_text())
    providers["providers"]["orders"] = {
        "kind": RASA_KIND,
        "title": "the orders assistant",
        "url": url,
        "timeout_s": 5,
    }
    (config / "providers.yaml").write_text(yaml.safe_dump(providers))
    routing = yaml.safe_load((config / "routing.yaml").read_text())
    routing["routes"]["orders"] = {"intents": ["track_order"]}
    (config / "routing.yaml").write_text(yaml.safe_dump(routing))


def said_by(provider: str, text: str) -> Any:
    return lambda f: f["from"]["id"] == provider and f["text"] == text


async def test_bot_a_to_rasa_bot_b_to_an_agent_and_back_to_bot_a(
    tmp_path: Path,
) -> None:
    async with (
        run_bot("botbuilder", tmp_path) as bot,
        FakeRasa().running() as rasa,
    ):
        config = write_config(tmp_path, {"endpoint": bot.endpoint})  # "remote" greets: bot A
        _add_rasa_bot(config, rasa.base)
        data = tmp_path / "data"
        async with serve(config, data_dir=data) as run, chat(run) as (user, welcome):
            me = Chatter(user)
            await me.say("hi")
            await user.expect("message", said_by("remote", "echo: hi"))

            # A hands over to B with the Bot Framework handoff event.
            await me.say("handoff to orders")
            await user.expect("message", lambda f: "orders assistant" in f["text"])
            await me.say("where is my parcel")
            await user.expect("message", said_by("orders", "rasa heard: where is my parcel"))

            # The user wants a person: the router moves the conversation to the desk.
            await me.say("I need to talk to a person")
            await user.expect("message", lambda f: "support agent" in f["text"])
            async with agent(run) as desk:
                queued = await desk.expect("queue", lambda f: bool(f["conversations"]))
                [item] = queued["conversations"]
                assert item["intent"] == "talk_to_human" and item["from_provider"] == "orders"
                said = [e["text"] for e in item["transcript"] if e["speaker"] == "user"]
                assert said[:3] == ["hi", "handoff to orders", "where is my parcel"]
                await desk.send(type="accept", conversation=item["conversation"])
                await desk.send(type="send", conversation=item["conversation"], text="Refunded.")
                await user.expect("message", lambda f: f["text"] == "Refunded.")
                await desk.send(type="resolve", conversation=item["conversation"])
                await user.expect("message", lambda f: f["text"].startswith("You're back with"))

            # Back with A, in the same session.
            await me.say("thanks")
            await user.expect("message", said_by("remote", "echo: thanks"))
            session = await run.engine.store.by_channel("webchat", welcome["conversation"])
            assert session is not None

        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "connector.cli",
            "sessions",
            "show",
            session.id,
            "--data",
            str(data),
            "--json",
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await proc.communicate()
    shown = json.loads(out)
    legs = shown["session"]["legs"]
    assert [leg["provider"] for leg in legs] == ["remote", "orders", "agents", "remote"]
    assert [leg["close_reason"] for leg in legs] == [
        "the remote bot handed off",
        "asked for a person (agents serves talk_to_human; orders does not)",
        "resolved by agent Dana",
        None,
    ]
    assert legs[1]["open_reason"] == "the remote bot handed off"
    speakers = [
        (e["speaker"], e["provider"]) for e in shown["transcript"] if e["speaker"] != "system"
    ]
    assert ("bot", "remote") in speakers and ("bot", "orders") in speakers
    assert ("agent", "agents") in speakers and speakers[-1] == ("bot", "remote")
    assert shown["current_provider"] == "remote"

"""A new user's first conversations with the default deployment, over real WebSockets.

The server is bot_configs/ on 127.0.0.1 (its real classifier and bots); the user is a web
chat client, the agent a desk client. The first test says exactly what README.md's
Quickstart tells people to try.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from support.readme import quickstart_conversation
from support.server import AGENT_TOKEN, Chatter, agent, chat, serve

# What the desk shows as the reason: the decision's summary once the switch carries it,
# the router's detail until then.
FRAUD_REASON = re.compile(r"^reported fraud$")


@pytest.fixture(autouse=True)
def _agent_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIDTIER_AGENT_TOKEN", AGENT_TOKEN)


def _said(speaker: str, part: str = "") -> Any:
    return lambda f: f["speaker"] == speaker and part in f["text"]


async def test_the_readme_conversation_reaches_the_desk(tmp_path: Path) -> None:
    balance, dispute, fraud = quickstart_conversation()
    async with serve(data_dir=tmp_path) as run, chat(run) as (user, _):
        me = Chatter(user)
        await me.say(balance)
        await user.expect("message", _said("bot", "Home tab"))
        await me.say(dispute)
        await user.expect("message", _said("system", "the disputes assistant"))
        await user.expect("message", _said("bot", "Which merchant is the charge from?"))
        await me.say(fraud)
        notice = await user.expect("message", _said("system"))
        assert notice["text"] == (
            "One moment, I'm passing you to a support agent. You can keep typing."
        )
        async with agent(run) as desk:
            queued = await desk.expect("queue", lambda f: bool(f["conversations"]))
        [item] = queued["conversations"]
        assert (item["status"], item["intent"], item["from_provider"]) == (
            "waiting",
            "report_fraud",
            "disputes",
        )
        assert FRAUD_REASON.search(item["reason"]), item["reason"]
        assert [e["text"] for e in item["transcript"] if e["speaker"] == "user"] == [
            balance,
            dispute,
            fraud,
        ]


@pytest.mark.parametrize(
    ("merchant", "amount", "filed"),
    [
        ("Amazon", "$42.50", "$42.50 at Amazon"),
        ("the coffee shop on Main St", "42.50", "$42.50 at the coffee shop on Main St"),
        ("Uber Eats", "about $100", "$100.00 at Uber Eats"),
    ],
)
async def test_answers_to_the_disputes_bot_stay_with_it(
    tmp_path: Path, merchant: str, amount: str, filed: str
) -> None:
    async with serve(data_dir=tmp_path) as run, chat(run) as (user, _):
        me = Chatter(user)
        await me.say("I want to dispute a charge")
        await user.expect("message", _said("bot", "Which merchant is the charge from?"))
        await me.say(merchant)
        await user.expect("message", _said("bot", "How much was the charge?"))
        await me.say(amount)
        done = await user.expect("message", _said("bot", "I've filed a dispute"))
        assert f"I've filed a dispute for {filed}. Your reference is DSP-" in done["text"]
        # no switch notice: nobody but the bot got the answers
        assert [f["speaker"] for f in user.of("message")] == ["bot"] * len(user.of("message"))

"""Asking the user to choose, end to end on the web chat: the choices arrive as a message
with buttons, the answer (its title, or its number as channels without buttons show them)
routes the question that was asked to the chosen provider, and both decisions are recorded
with what was done and why."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from support.server import DEFAULT_CONFIG, Chatter, chat, serve

FEES = "what fees do you charge?"
FEES_ANSWER = "Sending money to friends in the same currency is free"
ASK = """
next_best_action:
  by_intent: {fees: ask}
  titles: {fees: Our fees, dispute_charge: Dispute a charge}
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    config = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG, config, ignore=shutil.ignore_patterns("__pycache__"))
    with (config / "routing.yaml").open("a") as routing:
        routing.write(ASK)
    return config


@pytest.mark.parametrize("answer", ["Our fees", "1", " our FEES "])
async def test_the_user_chooses_and_the_question_goes_to_the_chosen_provider(
    tmp_path: Path, config: Path, answer: str
) -> None:
    async with serve(config, data_dir=tmp_path / "data") as run, chat(run) as (user, _):
        me = Chatter(user)
        await me.say(FEES)
        asked = await user.expect("message")
        assert asked["speaker"] == "system"
        assert asked["text"] == "I want to get this to the right place. Which of these is it about?"
        assert asked["choices"][0] == "Our fees"
        assert len(asked["choices"]) >= 2  # other providers of the next intents
        await me.say(answer)
        reply = await user.expect("message")
        assert reply["speaker"] == "bot"
        assert reply["text"].startswith(FEES_ANSWER)
        engine = run.engine
        [session] = await engine.store.list_sessions()
        decisions = await engine.store.decisions(session.id)
        assert [(d.action, d.provider) for d in decisions] == [("ask", None), ("open", "faq")]
        assert decisions[0].reason.startswith("next best action for fees: asked the user")
        assert [c.title for c in decisions[0].choices] == asked["choices"]
        assert (decisions[1].intent, decisions[1].confidence) == ("fees", 1.0)


async def test_another_message_instead_of_a_choice_is_routed_as_usual(
    tmp_path: Path, config: Path
) -> None:
    async with serve(config, data_dir=tmp_path / "data") as run, chat(run) as (user, _):
        me = Chatter(user)
        await me.say(FEES)
        assert "choices" in await user.expect("message")
        await me.say("hello")
        reply = await user.expect("message")
        assert (reply["speaker"], "choices" in reply) == ("bot", False)
        assert "Acme Pay help assistant" in reply["text"]
        # The question is gone: "1" now is just a message, not the first choice.
        await me.say("1")
        later = await user.expect("message")
        assert not later["text"].startswith(FEES_ANSWER)

"""Messages the classifier was never trained for (emoji only, other scripts, control and
invisible characters, the longest text allowed) each get a route decision and an answer,
never an error; the conversation goes on after them. Text that is not Unicode at all (a
lone surrogate) is refused with its reason before anything is recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.server import Chatter, chat, serve

ODD = [
    "😀😀😀",
    "🙏",
    "Привет, как дела?",
    "我的卡被偷了",
    "مرحبا",
    "\u200b\u200d\ufeff",
    "\x00\x07\x1b[31m",
    "é" * 4000,
    "🙂" * 4000,
    "!!!???...",
]


@pytest.mark.parametrize("text", ODD, ids=range(len(ODD)))
async def test_an_odd_message_gets_a_decision_and_an_answer(tmp_path: Path, text: str) -> None:
    async with serve(data_dir=tmp_path) as run, chat(run) as (user, _):
        me = Chatter(user)
        await me.say(text)
        answer = await user.expect("message")
        assert answer["speaker"] in ("bot", "system")
        [session] = await run.engine.store.list_sessions()
        [decision] = await run.engine.store.decisions(session.id)
        assert decision.provider is not None
        assert json.loads(decision.model_dump_json())["reason"]
        await me.say("hi")  # the conversation goes on
        assert (await user.expect("message"))["text"]
        assert not user.of("error")


async def test_a_lone_surrogate_is_refused_with_its_reason_and_nothing_is_recorded(
    tmp_path: Path,
) -> None:
    async with serve(data_dir=tmp_path) as run, chat(run) as (user, _):
        await user.send(type="message", id="m1", text="\ud800 half a pair")
        error = await user.expect("error")
        assert error["code"] == "malformed_frame"
        assert error["reason"].endswith("a lone UTF-16 surrogate in a string")
        assert await run.engine.store.list_sessions() == []
        await Chatter(user).say("hi")
        assert (await user.expect("message"))["speaker"] == "bot"

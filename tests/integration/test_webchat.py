"""The web chat protocol over a real WebSocket: acknowledgement, typing, history in pages,
resume and rotation of the resume secret."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from support.server import AGENT_TOKEN, DEFAULT_CONFIG, Chatter, Running, chat, serve

from adapters.channels.webchat_frames import HISTORY_PAGE
from connector.sessions import TranscriptEntry


@asynccontextmanager
async def hello(run: Running, resume: str) -> AsyncIterator[dict[str, Any]]:
    """Say hello with ``resume``; yields the first answer, whatever it is."""
    async with aiohttp.ClientSession() as http, http.ws_connect(f"{run.ws_base}/webchat/ws") as ws:
        await ws.send_json({"type": "hello", "resume": resume, "user": None})
        yield json.loads((await ws.receive()).data)


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIDTIER_AGENT_TOKEN", AGENT_TOKEN)


def _typing_after(tmp_path: Path, seconds: float) -> Path:
    """The default deployment with ``session.typing_after_s`` set."""
    config = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG, config)
    settings = yaml.safe_load((config / "midtier.yaml").read_text())
    settings["session"]["typing_after_s"] = seconds
    (config / "midtier.yaml").write_text(yaml.safe_dump(settings))
    return config


async def test_a_bot_at_work_shows_as_typing_before_its_reply(tmp_path: Path) -> None:
    config = _typing_after(tmp_path, 0)  # at once, however fast the bot
    async with serve(config, data_dir=tmp_path / "data") as run, chat(run) as (user, _):
        me = Chatter(user)
        await me.say("hi")
        first = await user.expect("message", lambda f: f["speaker"] == "bot")
        # Before any bot has the conversation, midtier itself is at work on it.
        [opening] = [f for f in user.of("typing") if user.seen.index(f) < user.seen.index(first)]
        assert opening["speaker"] == "system"
        await me.say("what are your fees?")
        reply = await user.expect("message", lambda f: "free" in f["text"])
        typing = [f for f in user.of("typing") if user.seen.index(f) > user.seen.index(first)]
        assert len(typing) == 1 and user.seen.index(typing[0]) < user.seen.index(reply)
        assert typing[0]["speaker"] == "bot"
        assert typing[0]["from"]["name"] == "the Acme Pay assistant"


async def test_a_bot_that_answers_before_typing_is_due_shows_no_typing(tmp_path: Path) -> None:
    config = _typing_after(tmp_path, 30)  # far longer than the FAQ bot takes
    async with serve(config, data_dir=tmp_path / "data") as run, chat(run) as (user, _):
        me = Chatter(user)
        await me.say("hi")
        await user.expect("message", lambda f: f["speaker"] == "bot")
        await me.say("what are your fees?")
        await user.expect("message", lambda f: "free" in f["text"])
        assert user.of("typing") == []


async def test_a_bot_slower_than_typing_after_shows_typing_before_its_reply(
    tmp_path: Path,
) -> None:
    config = _typing_after(tmp_path, 0.05)
    async with serve(config, data_dir=tmp_path / "data") as run, chat(run) as (user, _):
        me = Chatter(user)
        await me.say("hi")
        first = await user.expect("message", lambda f: f["speaker"] == "bot")
        bot = run.engine.providers["faq"]
        answer = bot.deliver

        async def slow(leg: Any, activity: Any) -> Any:  # the bot takes 0.3 s to answer
            await asyncio.sleep(0.3)
            return await answer(leg, activity)

        bot.deliver = slow  # type: ignore[method-assign]
        await me.say("what are your fees?")
        reply = await user.expect("message", lambda f: "free" in f["text"])
        [typing] = [f for f in user.of("typing") if user.seen.index(f) > user.seen.index(first)]
        assert user.seen.index(typing) < user.seen.index(reply)
        assert typing["speaker"] == "bot"


async def test_history_comes_in_pages_back_to_the_first_line(tmp_path: Path) -> None:
    async with serve(data_dir=tmp_path) as run:
        async with chat(run) as (user, welcome):
            await Chatter(user).say("hi")
            await user.expect("message", lambda f: f["speaker"] == "bot")
        session = await run.engine.store.by_channel("webchat", welcome["conversation"])
        assert session is not None
        for n in range(1, 121):
            speaker = "user" if n % 2 else "bot"
            await run.engine.store.append_transcript(
                session.id,
                TranscriptEntry(speaker=speaker, text=f"line {n}", activity={"id": f"a{n}"}),
            )
        everything = [
            e.text
            for e in await run.engine.store.transcript(session.id)
            if e.speaker != "system" or e.activity
        ]
        async with chat(run, welcome["resume"]) as (again, resumed):
            assert resumed["resumed"] is True and resumed["more"] is True
            page = resumed["history"]
            assert len(page) == HISTORY_PAGE
            shown = [f["text"] for f in page]
            pages = 1
            while True:
                await again.send(type="history", before=page[0]["seq"])
                answer = await again.expect("history")
                page = answer["entries"]
                shown = [f["text"] for f in page] + shown
                pages += 1
                if not answer["more"]:
                    break
            assert shown == everything  # each line once, in order, nothing missing
            assert pages == 3
            for wrong in ("x", 0, 10**18, 10**40):  # 10**40 overflowed SQLite's integers
                await again.send(type="history", before=wrong)
                assert (await again.expect("error"))["code"] == "malformed_frame"
            await again.send(type="history", before=10**18 - 1)  # the largest: the last page
            assert [f["text"] for f in (await again.expect("history"))["entries"]] == [
                f["text"] for f in resumed["history"]
            ]


async def test_a_rotated_secret_resumes_and_the_old_one_no_longer_does(tmp_path: Path) -> None:
    async with serve(data_dir=tmp_path) as run:
        async with chat(run) as (user, welcome):
            await Chatter(user).say("hi")
            await user.expect("message", lambda f: f["speaker"] == "bot")
            await user.send(type="rotate")
            rotated = (await user.expect("resume"))["resume"]
        assert rotated != welcome["resume"]
        assert rotated.split(".")[0] == welcome["conversation"]
        async with hello(run, welcome["resume"]) as answer:
            pass
        assert answer == {
            "type": "error",
            "code": "unknown_conversation",
            "reason": "no such conversation; start a new one",
        }
        async with chat(run, rotated) as (_, resumed):
            assert resumed["type"] == "welcome" and resumed["resumed"] is True
            assert resumed["history"][0]["text"] == "hi"
        session = await run.engine.store.by_channel("webchat", welcome["conversation"])
        assert session is not None
        stored = str(session.model_dump())
        assert rotated.split(".")[1] not in stored and welcome["resume"].split(".")[1] not in stored


async def test_an_acknowledged_message_is_recorded_before_it_is_answered(tmp_path: Path) -> None:
    async with serve(data_dir=tmp_path) as run:
        gate = run.engine.locks  # hold the session's lock: processing cannot start
        async with chat(run) as (user, welcome):
            me = Chatter(user)
            await me.say("hi")
            await user.expect("message", lambda f: f["speaker"] == "bot")
            session = await run.engine.store.by_channel("webchat", welcome["conversation"])
            assert session is not None
            async with gate.hold(session.id):
                await me.say("what are your fees?")  # acknowledged while nobody may answer
                said = [e.text for e in await run.engine.store.transcript(session.id)]
                assert said[-1] == "what are your fees?"
                pending = await run.engine.store.inbound_pending("webchat", welcome["conversation"])
                assert [e.activity["text"] for e in pending] == ["what are your fees?"]
            await user.expect("message", lambda f: "free" in f["text"])
            assert await run.engine.store.inbound_pending("webchat", welcome["conversation"]) == []


async def test_a_page_of_another_site_cannot_open_the_chat_socket(tmp_path: Path) -> None:
    async with serve(data_dir=tmp_path) as run, aiohttp.ClientSession() as http:
        url = f"{run.ws_base}/webchat/ws"
        own = run.base  # the page midtier served
        for origin, allowed in ((own, True), ("https://evil.example", False), (None, True)):
            headers = {"Origin": origin} if origin else {}
            try:
                async with http.ws_connect(url, headers=headers) as ws:
                    await ws.send_json({"type": "hello", "resume": None, "user": None})
                    assert json.loads((await ws.receive()).data)["type"] == "welcome"
                    opened = True
            except aiohttp.WSServerHandshakeError as exc:
                assert exc.status == 403
                opened = False
            assert opened is allowed, origin

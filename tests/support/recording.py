"""A conversation held with the default deployment (web chat, the FAQ and disputes bots,
the agent desk) and exported with ``midtier sessions export``: the recording that the
``midtier replay`` tests replay."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from connector.cli import main
from support.server import AGENT_TOKEN, DEFAULT_CONFIG, Chatter, agent, chat, serve

# What the user says, and what the default routing did with each (checked on the recording).
CONVERSATION = [
    ("hi", "open", "faq"),
    ("what's my balance?", "stay", "faq"),
    ("I want to dispute a charge", "switch", "disputes"),
    ("Coffee Corp", "stay", "disputes"),  # the answer to "Which merchant is the charge from?"
    ("someone used my card without my permission", "switch", "agents"),
    ("thanks", "stay", "agents"),  # a person keeps the conversation...
    ("how do I reset my password", "stay", "faq"),  # ...until they resolve it
]


def _bot(part: str) -> Any:
    return lambda f: f["speaker"] == "bot" and part in f["text"]


async def _record(data: Path) -> list[tuple[str, str, str]]:
    """Hold the conversation with the running deployment; its decisions, as recorded."""
    async with serve(data_dir=data) as run, chat(run) as (user, welcome):
        me = Chatter(user)
        for text, reply in [
            ("hi", "Acme Pay help assistant"),
            ("what's my balance?", "Home tab"),
            ("I want to dispute a charge", "Which merchant"),
            ("Coffee Corp", "How much"),
        ]:
            await me.say(text)
            await user.expect("message", _bot(reply))
        await me.say(CONVERSATION[4][0])
        await user.expect("message", lambda f: f["text"].startswith("No agent is signed in"))
        async with agent(run) as desk:
            queued = await desk.expect("queue", lambda f: bool(f["conversations"]))
            conversation = queued["conversations"][0]["conversation"]
            await desk.send(type="accept", conversation=conversation)
            await me.say("thanks")
            await desk.expect("message", lambda f: f["text"] == "thanks")
            await desk.send(type="resolve", conversation=conversation)
            await user.expect("message", lambda f: f["text"].startswith("You're back"))
        await me.say(CONVERSATION[6][0])
        await user.expect("message", _bot("Forgot password"))
        session = await run.engine.store.by_channel("webchat", welcome["conversation"])
        assert session is not None
        decisions = await run.engine.store.decisions(session.id)
        transcript = await run.engine.store.transcript(session.id)
    said = [e.text or "" for e in transcript if e.speaker == "user"]
    return [(t, d.action, d.provider or "") for t, d in zip(said, decisions, strict=True)]


def record(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory holding the recording, and its export (``s.jsonl`` in it)."""
    data = tmp_path_factory.mktemp("recorded")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MIDTIER_AGENT_TOKEN", AGENT_TOKEN)
        assert asyncio.run(_record(data)) == CONVERSATION
    assert main(["sessions", "export", "--data", str(data), "--out", str(data / "s.jsonl")]) == 0
    return data


def routing(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    """The default ``routing.yaml`` with ``edits`` (old, new) made, as a file of its own."""
    text = (DEFAULT_CONFIG / "routing.yaml").read_text()
    for old, new in edits:
        assert old in text
        text = text.replace(old, new, 1)
    path = tmp_path / "other.yaml"
    path.write_text(text)
    return path


def replay_json(
    capsys: pytest.CaptureFixture[str], data: Path, *args: str, code: int = 0
) -> tuple[list[dict[str, Any]], str]:
    """The JSON lines ``midtier replay --json`` printed for the export in ``data``, and its
    stderr."""
    sessions = str(data / "s.jsonl")
    assert main(["replay", sessions, "--data", str(data), *args, "--json"]) == code
    captured = capsys.readouterr()
    return [json.loads(line) for line in captured.out.splitlines()], captured.err

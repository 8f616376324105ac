"""``midtier sessions export``: every session as one JSON line, oldest first, with its legs,
transcript and route decisions, read from a SQLite store the way ``sessions show`` reads it."""

from __future__ import annotations

import asyncio
import json
import signal
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.clock import FakeClock
from support.server import REPO

from connector.cli import main
from connector.routing.decision import RouteDecision
from connector.sessions import Leg, TranscriptEntry
from connector.store.sqlite import SqliteStore

MIDTIER = str(Path(sys.executable).with_name("midtier"))
RESUME_HASH = "sha256-of-the-resume-secret-3f9a"
BOT_STATE = "bot-state-kept-in-the-leg-77c1"
PROVIDER_CONVERSATION = "bb-conversation-5e21"


@dataclass
class Seeded:
    first: str  # created first, saved last: the oldest, and the most recently updated
    closed: str
    disputes: str
    started: str  # the clock when the session "disputes" was created


def _leg(provider: str, **fields: Any) -> Leg:
    return Leg(channel="webchat", channel_conversation_id="wc", provider=provider, **fields)


async def _seed(data: Path) -> Seeded:
    clock = FakeClock()
    store = SqliteStore(data / "midtier.db", clock=clock)
    await store.start()
    first, _ = await store.find_or_create("webchat", "wc-conv-91d0", "user-ffe2")
    first.channel_state["resume"] = RESUME_HASH
    first.claims = {"sub": "user-ffe2", "verified": False}
    first.legs = [
        _leg("faq", provider_conversation_id=PROVIDER_CONVERSATION, open_reason="faq serves greet"),
    ]
    first.legs[0].data["state"] = BOT_STATE
    first = await store.save(first)
    await store.append_transcript(
        first.id, TranscriptEntry(speaker="user", text="hi", activity={"id": "a1", "text": "hi"})
    )
    await store.append_transcript(
        first.id,
        TranscriptEntry(
            speaker="bot",
            text="Which merchant?",
            provider="faq",
            leg_id=first.legs[0].id,
            activity={"id": "a2", "inputHint": "expectingInput"},
        ),
    )
    opened = RouteDecision(action="open", provider="faq", intent="greet", message_id="a1")
    await store.append_decision(first.id, opened)

    clock.advance(60)
    closed, _ = await store.find_or_create("webchat", "wc_2", "u_2")
    closed.legs = [_leg("faq", closed_at=clock(), close_reason="expired")]
    closed.status = "closed"
    await store.save(closed)

    clock.advance(60)
    started = clock().isoformat()
    disputes, _ = await store.find_or_create("webchat", "wc_3", "u_3")
    disputes.legs = [_leg("disputes", open_reason="disputes serves dispute_charge")]
    await store.save(disputes)

    clock.advance(60)  # the first session goes on: it is updated last
    first.legs[0].closed_at, first.legs[0].close_reason = clock(), "reported fraud"
    first.legs.append(_leg("agents", open_reason="agents serves report_fraud"))
    await store.save(first)
    await store.close()
    return Seeded(first.id, closed.id, disputes.id, started)


@pytest.fixture
def seeded(tmp_path: Path) -> Seeded:
    return asyncio.run(_seed(tmp_path))


def _export(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    assert main(["sessions", "export", *args]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_every_session_is_one_line_oldest_first_with_legs_transcript_and_decisions(
    tmp_path: Path, seeded: Seeded, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = _export(capsys, "--data", str(tmp_path))
    assert [line["session"]["id"] for line in lines] == [
        seeded.first,
        seeded.closed,
        seeded.disputes,
    ]
    first = lines[0]
    session = first["session"]
    assert (session["channel"], session["status"]) == ("webchat", "active")
    assert session["created_at"] < session["updated_at"]
    legs = [(leg["provider"], leg["open_reason"], leg["close_reason"]) for leg in session["legs"]]
    assert legs == [
        ("faq", "faq serves greet", "reported fraud"),
        ("agents", "agents serves report_fraud", None),
    ]
    assert session["legs"][0]["closed_at"] is not None and session["legs"][1]["closed_at"] is None
    said = [
        (e["speaker"], e["text"], e["message_id"], e.get("input_hint")) for e in first["transcript"]
    ]
    assert said == [("user", "hi", "a1", None), ("bot", "Which merchant?", "a2", "expectingInput")]
    [decision] = first["decisions"]
    assert (decision["action"], decision["provider"], decision["intent"]) == (
        "open",
        "faq",
        "greet",
    )
    assert decision["message_id"] == "a1"
    assert lines[1]["session"]["status"] == "closed"
    assert lines[1]["transcript"] == [] and lines[1]["decisions"] == []


def test_what_channels_and_providers_keep_for_themselves_is_left_out(
    tmp_path: Path, seeded: Seeded, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sessions", "export", "--data", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for kept in (RESUME_HASH, BOT_STATE, PROVIDER_CONVERSATION, "user-ffe2", "wc-conv-91d0"):
        assert kept not in out


def test_filters_pick_sessions_by_status_provider_time_and_count(
    tmp_path: Path, seeded: Seeded, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ["--data", str(tmp_path)]

    def ids(*args: str) -> list[str]:
        return [line["session"]["id"] for line in _export(capsys, *data, *args)]

    assert ids("--status", "closed") == [seeded.closed]
    assert ids("--status", "active") == [seeded.first, seeded.disputes]
    assert ids("--provider", "agents") == [seeded.first]
    assert ids("--since", seeded.started) == [seeded.first, seeded.disputes]
    # --limit keeps the most recently updated, still written oldest first
    assert ids("--limit", "2") == [seeded.first, seeded.disputes]
    assert ids("--since", seeded.started, "--limit", "1") == [seeded.first]
    assert ids("--provider", "disputes", "--status", "closed") == []


def test_out_writes_the_whole_file_readable_by_its_owner_and_counts_on_stderr(
    tmp_path: Path, seeded: Seeded, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sessions", "export", "--data", str(tmp_path)]) == 0
    to_stdout = capsys.readouterr().out
    target = tmp_path / "out" / "sessions.jsonl"
    target.parent.mkdir()
    target.write_text("an older export\n")
    assert main(["sessions", "export", "--data", str(tmp_path), "--out", str(target)]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"3 session(s) exported to {target}\n"
    assert target.read_text() == to_stdout
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in target.parent.iterdir()] == ["sessions.jsonl"]  # no temp file left


@pytest.mark.parametrize(
    ("args", "code", "error"),
    [
        (["--since", "2030-01-01T12:00"], 2, "--since '2030-01-01T12:00': give its UTC offset"),
        (["--since", "yesterday"], 2, "--since 'yesterday': expected an ISO time"),
        (["--limit", "-1"], 2, "--limit -1: expected 0 or more"),
        (["--out", "/nonexistent-dir/x.jsonl"], 1, "--out /nonexistent-dir/x.jsonl: no directory"),
    ],
)
def test_bad_arguments_get_one_clear_error(
    tmp_path: Path,
    seeded: Seeded,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    code: int,
    error: str,
) -> None:
    assert main(["sessions", "export", "--data", str(tmp_path), *args]) == code
    captured = capsys.readouterr()
    assert captured.err.startswith(f"error: {error}") and captured.out == ""


def test_a_directory_without_a_store_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sessions", "export", "--data", str(tmp_path / "none")]) == 1
    assert capsys.readouterr().err.startswith("error: no session store at")
    assert not (tmp_path / "none").exists()  # reading creates nothing


def test_a_file_that_is_not_a_store_gets_one_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "midtier.db").write_text("notes, not a database\n")
    assert main(["sessions", "export", "--data", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"error: {tmp_path / 'midtier.db'}: file is not a database\n"
    assert captured.out == ""


async def _seed_long(data: Path) -> None:
    """A small first session, then one whose line is far larger than any pipe buffer."""
    clock = FakeClock()
    store = SqliteStore(data / "midtier.db", clock=clock)
    await store.start()
    await store.find_or_create("webchat", "wc_1", "u_1")
    clock.advance(1)
    long, _ = await store.find_or_create("webchat", "wc_2", "u_2")
    for n in range(100):
        entry = TranscriptEntry(speaker="bot", text=f"line {n} " + "x" * 20_000)
        await store.append_transcript(long.id, entry)
    await store.close()


def test_an_export_into_a_pipe_closed_early_ends_quietly(tmp_path: Path) -> None:
    asyncio.run(_seed_long(tmp_path))
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    args = [MIDTIER, "sessions", "export", "--data", str(tmp_path)]
    pipe = subprocess.PIPE
    with subprocess.Popen(args, stdout=pipe, stderr=pipe, env=env) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()  # what `| head -1` reads before it goes away
        proc.stdout.close()
        err = proc.stderr.read()
        code = proc.wait(timeout=60)
    assert json.loads(first)["transcript"] == []
    assert err == b""  # no BrokenPipeError, no traceback
    assert code == 128 + signal.SIGPIPE

"""``midtier replay``: a conversation recorded by the default deployment (web chat, the FAQ
and disputes bots, the agent desk), exported, and decided again through other routing files
and another classifier."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from support.server import AGENT_TOKEN, DEFAULT_CONFIG, Chatter, agent, chat, serve

from connector.cli import main

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
DISPUTES = "dispute_charge, dispute_status, duplicate_charge"


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


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The data directory of the recording, and its export (``sessions.jsonl`` in it)."""
    data = tmp_path_factory.mktemp("recorded")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MIDTIER_AGENT_TOKEN", AGENT_TOKEN)
        assert asyncio.run(_record(data)) == CONVERSATION
    assert main(["sessions", "export", "--data", str(data), "--out", str(data / "s.jsonl")]) == 0
    return data


def _routing(tmp_path: Path, *edits: tuple[str, str]) -> Path:
    text = (DEFAULT_CONFIG / "routing.yaml").read_text()
    for old, new in edits:
        assert old in text
        text = text.replace(old, new, 1)
    path = tmp_path / "other.yaml"
    path.write_text(text)
    return path


def _was(decision: dict[str, Any]) -> tuple[str, str]:
    return decision["action"], decision["provider"]


def _replay(
    capsys: pytest.CaptureFixture[str], data: Path, *args: str, code: int = 0
) -> tuple[list[dict[str, Any]], str]:
    """The JSON lines ``midtier replay --json`` printed, and its stderr."""
    sessions = str(data / "s.jsonl")
    assert main(["replay", sessions, "--data", str(data), *args, "--json"]) == code
    captured = capsys.readouterr()
    return [json.loads(line) for line in captured.out.splitlines()], captured.err


def test_the_same_routing_and_classifier_change_no_decision(
    recorded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    routing = str(DEFAULT_CONFIG / "routing.yaml")
    [totals], _ = _replay(capsys, recorded, "--routing", routing)
    assert totals == {
        "type": "totals",
        "sessions": 1,
        "sessions_changed": 0,
        "messages": len(CONVERSATION),
        "changed": 0,
        "switches_added": 0,
        "switches_removed": 0,
        "providers": {},
        "unmatched_messages": 0,
        "bad_lines": 0,
    }
    assert main(["replay", str(recorded / "s.jsonl"), "--data", str(recorded)]) == 0
    out = capsys.readouterr().out
    assert "replayed 7 message(s) of 1 session(s): 0 decision(s) changed" in out


def test_disputes_sent_to_the_agents_change_who_serves_and_the_totals_say_so(
    recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = _routing(
        tmp_path,
        (f"intents: [{DISPUTES}]", "intents: []"),
        ("intents: [report_fraud,", f"intents: [{DISPUTES}, report_fraud,"),
    )
    [session, totals], _ = _replay(capsys, recorded, "--routing", str(other))
    moved = [(c["text"], *_was(c["recorded"]), *_was(c["replayed"])) for c in session["changes"]]
    assert moved == [
        ("I want to dispute a charge", "switch", "disputes", "switch", "agents"),
        ("Coffee Corp", "stay", "disputes", "stay", "agents"),  # a person keeps it
        ("someone used my card without my permission", "switch", "agents", "stay", "agents"),
    ]
    assert session["changes"][0]["replayed"]["reason"] == (
        "agents serves dispute_charge; faq does not"
    )
    assert (session["messages"], session["changed"]) == (7, 3)
    assert (totals["messages"], totals["changed"], totals["sessions_changed"]) == (7, 3, 1)
    assert (totals["switches_added"], totals["switches_removed"]) == (0, 1)
    assert totals["providers"] == {
        "agents": {"gained": 2, "lost": 0},
        "disputes": {"gained": 0, "lost": 2},
    }
    args = ["--data", str(recorded), "--routing", str(other)]
    assert main(["replay", str(recorded / "s.jsonl"), *args]) == 0
    out = capsys.readouterr().out
    assert "      replayed: switch -> agents  [dispute_charge " in out
    assert "switches: 0 added, 1 removed" in out
    assert "  agents         gains 2, loses 0" in out


def test_a_bot_waiting_for_an_answer_keeps_what_is_not_sure_enough_to_interrupt_it(
    recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Fraud (about 0.74) no longer reaches a person while the disputes bot asks a question.
    other = _routing(tmp_path, ("interrupt_confidence: 0.5", "interrupt_confidence: 0.9"))
    [session, _totals], _ = _replay(capsys, recorded, "--routing", str(other))
    fraud = session["changes"][0]
    assert fraud["text"] == "someone used my card without my permission"
    assert (fraud["replayed"]["action"], fraud["replayed"]["provider"]) == ("stay", "disputes")
    assert "disputes is waiting for an answer" in fraud["replayed"]["reason"]


NLU = """\
version: "3.1"
nlu:
- intent: greet
  examples: |
    - hi
    - hello
    - good morning
- intent: talk_to_human
  examples: |
    - what's my balance?
    - I want a person
    - let me talk to someone
"""


def test_a_classifier_trained_on_other_nlu_data_reads_other_intents(
    recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nlu = tmp_path / "nlu"
    nlu.mkdir()
    (nlu / "small.yml").write_text(NLU)
    [session, *_], err = _replay(capsys, recorded, "--nlu", str(nlu))
    balance = session["changes"][0]
    assert balance["text"] == "what's my balance?"
    assert (balance["recorded"]["intent"], balance["recorded"]["provider"]) == (
        "check_balance",
        "faq",
    )
    assert (balance["replayed"]["intent"], balance["replayed"]["provider"]) == (
        "talk_to_human",
        "agents",
    )
    assert "... trained it" in err
    # Cached apart from the deployment's model, which stays where the server keeps it.
    assert len(list((recorded / "nlu-cache" / "replay").glob("nlu-*.npz"))) == 1
    assert len(list((recorded / "nlu-cache").glob("nlu-*.npz"))) == 1
    _, again = _replay(capsys, recorded, "--nlu", str(nlu))
    assert "... trained it" not in again


def test_lines_that_are_not_sessions_are_named_and_the_rest_is_replayed(
    recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = (recorded / "s.jsonl").read_bytes()
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_bytes(
        b'not json\n{"hello": 1}\n\n{"session": {"id": 1}}\n\xff\xfe\n' + good + b'{"session": [\n'
    )
    assert main(["replay", str(mixed), "--data", str(recorded), "--json"]) == 1
    captured = capsys.readouterr()
    [totals] = [json.loads(line) for line in captured.out.splitlines()]
    assert (totals["bad_lines"], totals["sessions"], totals["messages"]) == (5, 1, 7)
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: {mixed} line 1: not valid JSON (Expecting value at column 1)",
        f'error: {mixed} line 2: not a session (expected an object with a "session" key)',
        f"error: {mixed} line 4: not a session: session.id: Input should be a valid string"
        " (and 4 more)",
        f"error: {mixed} line 5: not UTF-8 text (byte 1)",
        f"error: {mixed} line 7: not valid JSON (Expecting value at column 14)",
    ]
    assert "Traceback" not in captured.err


BAD_ROUTING = """\
min_confidence: 1.5
fallback: agents
routes:
  faq: {intents: [greet], colour: blue}
  nowhere: {intents: [thanks]}
"""


@pytest.mark.parametrize(
    ("content", "errors"),
    [
        (
            BAD_ROUTING,
            [
                "min_confidence: Input should be less than or equal to 1",
                "routes.faq.colour: unknown key",
            ],
        ),
        (
            BAD_ROUTING.replace("min_confidence: 1.5", "min_confidence: 0.5").replace(
                ", colour: blue", ""
            ),
            ["routes.nowhere: no provider of this name in providers.yaml"],
        ),
        ("routes: [\n", ["line 2: not valid YAML"]),
        (None, ["file not found"]),
    ],
    ids=["invalid", "unknown-provider", "not-yaml", "missing"],
)
def test_a_bad_routing_file_gets_its_errors_with_file_and_key_and_replays_nothing(
    recorded: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str | None,
    errors: list[str],
) -> None:
    other = tmp_path / "other.yaml"
    if content is not None:
        other.write_text(content)
    args = ["--routing", str(other), "--data", str(recorded)]
    assert main(["replay", str(recorded / "s.jsonl"), *args]) == 2
    captured = capsys.readouterr()
    # (YAML's own message of where it failed runs over several lines)
    found = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(found) == len(errors)
    for line, error in zip(found, errors, strict=True):
        assert line.startswith(f"error: {other}: {error}")
    assert captured.out == ""


@pytest.mark.parametrize(
    ("args", "code", "error"),
    [
        (["missing.jsonl"], 1, "missing.jsonl: No such file or directory"),
        (["s.jsonl", "--nlu", "no-such-dir"], 2, "--nlu no-such-dir: no such directory"),
    ],
)
def test_a_missing_sessions_file_or_nlu_directory_is_named(
    recorded: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    code: int,
    error: str,
) -> None:
    monkeypatch.chdir(recorded)
    assert main(["replay", *args, "--config", str(DEFAULT_CONFIG), "--data", "."]) == code
    assert capsys.readouterr().err.splitlines()[-1] == f"error: {error}"


def test_route_intents_the_classifier_does_not_know_are_warned_about(
    recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = _routing(tmp_path, ("- refund_status", "- refund_stauts"))
    _, err = _replay(capsys, recorded, "--routing", str(other))
    assert (
        f"warning: {other}: routes.faq.intents[4]: intent 'refund_stauts' matches nothing "
        "in the NLU data"
    ) in err.splitlines()


def test_sessions_can_be_read_from_stdin(
    recorded: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with (recorded / "s.jsonl").open("rb") as f:
        monkeypatch.setattr("sys.stdin", type("In", (), {"buffer": f})())
        assert main(["replay", "-", "--data", str(recorded), "--json"]) == 0
    [totals] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert totals["messages"] == len(CONVERSATION)


def test_the_help_says_what_a_replay_assumes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["replay", "--help"])
    out = capsys.readouterr().out
    assert "a sticky provider keeps the conversation until the recorded session's leg" in " ".join(
        out.split()
    )

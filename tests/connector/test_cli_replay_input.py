"""``midtier replay`` on bad input: lines that are not sessions, routing files the server
would refuse, missing files; and where else its input and its assumptions come from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.recording import CONVERSATION, record, replay_json, routing
from support.server import DEFAULT_CONFIG

from connector.cli import main


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record(tmp_path_factory)


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
    other = routing(tmp_path, ("- refund_status", "- refund_stauts"))
    _, err = replay_json(capsys, recorded, "--routing", str(other))
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


def test_bad_nlu_training_data_gets_its_errors_with_file_and_key(
    recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nlu = tmp_path / "nlu"
    nlu.mkdir()
    (nlu / "small.yml").write_text('version: "3.1"\nnlu:\n- intent: greet\n')
    args = ["--nlu", str(nlu), "--data", str(recorded)]
    assert main(["replay", str(recorded / "s.jsonl"), *args]) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines()[-1].startswith("error: nlu/small.yml: nlu[0].examples: ")
    assert captured.out == ""

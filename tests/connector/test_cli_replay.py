"""``midtier replay``: a conversation recorded by the default deployment, exported, and
decided again through other routing files and a classifier trained on other NLU data
(:mod:`support.recording`)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest
from support.recording import CONVERSATION, record, replay_json, routing
from support.server import DEFAULT_CONFIG

from connector.cli import main
from connector.records import Changes, OutcomeEntry
from connector.store import SqliteStore

DISPUTES = "dispute_charge, dispute_status, duplicate_charge"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record(tmp_path_factory)


def _was(decision: dict[str, Any]) -> tuple[str, str]:
    return decision["action"], decision["provider"]


def test_the_same_routing_and_classifier_change_no_decision(
    recorded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    same = str(DEFAULT_CONFIG / "routing.yaml")
    [totals], _ = replay_json(capsys, recorded, "--routing", same)
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
    other = routing(
        tmp_path,
        (f"intents: [{DISPUTES}]", "intents: []"),
        ("intents: [report_fraud,", f"intents: [{DISPUTES}, report_fraud,"),
    )
    [session, totals], _ = replay_json(capsys, recorded, "--routing", str(other))
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
    other = routing(tmp_path, ("interrupt_confidence: 0.5", "interrupt_confidence: 0.9"))
    [session, _totals], _ = replay_json(capsys, recorded, "--routing", str(other))
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
    [session, *_], err = replay_json(capsys, recorded, "--nlu", str(nlu))
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
    _, again = replay_json(capsys, recorded, "--nlu", str(nlu))
    assert "... trained it" not in again


def test_min_success_rate_is_checked_against_the_stores_rates(
    recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    shutil.copytree(recorded, data)
    asyncio.run(_failed_disputes(data / "midtier.db", 4))
    other = routing(
        tmp_path,
        ("    min_confidence: 0.5\n", "    min_confidence: 0.5\n    min_success_rate: 0.5\n"),
    )
    other.write_text(other.read_text() + "\nsuccess_rate: {min_outcomes: 3}\n")
    [session, totals], err = replay_json(capsys, data, "--routing", str(other))
    assert f"success rates of the last 168 h from {data / 'midtier.db'}" in err
    first = session["changes"][0]
    assert first["text"] == "I want to dispute a charge"
    assert (_was(first["recorded"]), _was(first["replayed"])) == (
        ("switch", "disputes"),
        ("fallback", "agents"),
    )
    # The recording's own disputes leg ended well (the user went on to report fraud).
    assert (
        "success rate 20% for dispute_charge (1 of 5) below its minimum 50%"
        in first["replayed"]["reason"]
    )
    # The same file against a store without those outcomes changes nothing.
    [totals], _ = replay_json(capsys, recorded, "--routing", str(other))
    assert totals["changed"] == 0


async def _failed_disputes(path: Path, count: int) -> None:
    """``count`` legs of the disputes bot that handed dispute_charge off, just now."""
    store = SqliteStore(path)
    await store.start()
    try:
        session, _ = await store.find_or_create("webchat", "c-earlier", "u-earlier")
        failed = [
            OutcomeEntry(
                leg_id=f"leg_failed_{n}",
                session_id=session.id,
                provider="disputes",
                intent="dispute_charge",
                kind="handed_off",
                success=False,
            )
            for n in range(count)
        ]
        await store.commit(
            Changes(session=session, expected_version=session.version, outcomes=failed)
        )
    finally:
        await store.close()

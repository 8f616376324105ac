"""``midtier check`` and ``midtier sessions`` from the command line."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
from support.server import DEFAULT_CONFIG

from connector.cli import main
from connector.sessions import Leg, TranscriptEntry
from connector.store.sqlite import SqliteStore


def test_check_passes_on_the_default_deployment(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--config", str(DEFAULT_CONFIG)]) == 0
    assert capsys.readouterr().out.strip().endswith(": ok")


def test_check_prints_every_error_with_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG, config)
    providers = (config / "providers.yaml").read_text()
    providers = providers.replace("bot: bots.disputes:DisputesBot", "bot: bots.nope:Missing")
    providers = providers.replace("kind: agent_desk", "kind: pigeon_post")
    (config / "providers.yaml").write_text(providers)
    routing = (config / "routing.yaml").read_text().replace("- greet", "- say_hello")
    (config / "routing.yaml").write_text(routing)
    assert main(["check", "--config", str(config)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == f"3 problem(s) in {config}"
    assert any(
        line.startswith("error: providers.yaml: providers.agents.kind: unknown kind 'pigeon_post'")
        for line in err
    )
    assert any(
        line.startswith("error: providers.yaml: providers.disputes.bot: cannot import")
        for line in err
    )
    assert (
        "error: routing.yaml: routes.faq.intents[0]: intent 'say_hello' matches nothing "
        "in the NLU data" in err
    )


def test_check_reports_invalid_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG, config)
    (config / "routing.yaml").write_text("fallback: [\n")
    assert main(["check", "--config", str(config)]) == 1
    assert "error: routing.yaml: line" in capsys.readouterr().err


async def _seed(path: Path) -> str:
    store = SqliteStore(path)
    await store.start()
    session, _ = await store.find_or_create("webchat", "wc_1", "u_1")
    session.legs.append(
        Leg(
            channel="webchat",
            channel_conversation_id="wc_1",
            provider="faq",
            provider_conversation_id="bb_1",
            open_reason="faq serves greet",
        )
    )
    await store.save(session)
    await store.append_transcript(session.id, TranscriptEntry(speaker="user", text="hello"))
    await store.close()
    return session.id


def test_sessions_list_and_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    session_id = asyncio.run(_seed(tmp_path / "midtier.db"))
    assert main(["sessions", "list", "--data", str(tmp_path), "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["id"] == session_id and row["current_provider"] == "faq"
    assert main(["sessions", "show", session_id, "--data", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "provider  faq" in out and "faq serves greet" in out and "hello" in out
    assert main(["sessions", "show", "mts_nope", "--data", str(tmp_path)]) == 1
    assert "no session 'mts_nope'" in capsys.readouterr().err
    assert main(["sessions", "list", "--data", str(tmp_path / "empty")]) == 1
    assert "no session store" in capsys.readouterr().err


def test_run_refuses_an_invalid_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG, config)
    (config / "routing.yaml").write_text("fallback: nobody\nroutes: {}\n")
    assert main(["run", "--config", str(config), "--data", str(tmp_path / "data")]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: routing.yaml: fallback: 'nobody' is not a provider in providers.yaml"
    )
    assert not (tmp_path / "data").exists()  # nothing was started or written

"""``midtier route explain``: the ranking, the decision and every condition of every route
for one message, from the deployment's config, classifier and session store."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from support.server import DEFAULT_CONFIG

from connector.cli import main
from connector.sessions import Leg
from connector.store.sqlite import SqliteStore
from tests.connector.routing.test_tier_config import config_with_nlu

FRAUD = "someone used my card without my permission"
DESK_HOURS = """
    hours:
      timezone: Europe/Berlin
      open: {mon-fri: ["09:00-18:00"]}
      holidays: [2026-12-24]
"""


def _explain(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["route", "explain", *args, "--json"]) == 0
    found: dict[str, Any] = json.loads(capsys.readouterr().out)
    return found


def _route(found: dict[str, Any], provider: str) -> dict[str, Any]:
    [route] = [r for r in found["routes"] if r["provider"] == provider]
    return route


def test_a_new_conversation_shows_ranking_decision_and_each_route(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    found = _explain(capsys, FRAUD, "--data", str(tmp_path / "data"))
    assert (found["intent"], found["session"], found["current_provider"]) == (
        "report_fraud",
        None,
        None,
    )
    assert found["ranking"][0]["intent"] == "report_fraud"
    assert len(found["ranking"]) > 1
    assert (found["decision"]["action"], found["decision"]["provider"]) == ("open", "agents")
    assert [r["provider"] for r in found["routes"]] == ["faq", "disputes", "agents"]
    agents = _route(found, "agents")
    assert (agents["serves_intent"], agents["sticky"], agents["eligible"]) == (True, True, True)
    disputes = _route(found, "disputes")
    assert disputes["serves_intent"] is False
    assert disputes["conditions"][0]["name"] == "min_confidence"
    # Health is the running server's to know: shown as not checked, not as fine.
    assert {c["name"]: c["holds"] for c in agents["conditions"]} == {"health": None}


def test_a_desk_outside_its_hours_fails_that_condition_and_the_fallback_takes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG, config, ignore=shutil.ignore_patterns("__pycache__"))
    routing = config / "routing.yaml"
    routing.write_text(
        routing.read_text()
        .replace("fallback: agents ", "fallback: faq    ", 1)
        .replace("    sticky: true ", DESK_HOURS.lstrip("\n") + "    sticky: true ", 1)
    )
    args = [FRAUD, "--config", str(config), "--data", str(tmp_path / "data")]
    open_now = _explain(capsys, *args, "--at", "2026-12-01T10:00:00+01:00")
    assert open_now["decision"]["provider"] == "agents"
    holiday = _explain(capsys, *args, "--at", "2026-12-24T10:00:00+01:00")
    assert (holiday["decision"]["action"], holiday["decision"]["provider"]) == ("fallback", "faq")
    hours = {c["name"]: c for c in _route(holiday, "agents")["conditions"]}["hours"]
    assert hours == {
        "name": "hours",
        "holds": False,
        "detail": "closed on holiday 2026-12-24 (Europe/Berlin)",
    }
    assert "agents: closed on holiday 2026-12-24" in holiday["decision"]["reason"]


async def _seed(data: Path) -> str:
    store = SqliteStore(data / "midtier.db")
    await store.start()
    session, _ = await store.find_or_create("webchat", "wc_1", "u_1")
    session.legs.append(
        Leg(
            channel="webchat",
            channel_conversation_id="wc_1",
            provider="faq",
            provider_conversation_id="bb_1",
        )
    )
    await store.save(session)
    await store.close()
    return session.id


def test_a_stored_session_is_explained_as_its_next_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    session_id = asyncio.run(_seed(data))
    found = _explain(capsys, FRAUD, "--data", str(data), "--session", session_id)
    assert (found["session"], found["current_provider"]) == (session_id, "faq")
    assert (found["decision"]["action"], found["decision"]["previous"]) == ("switch", "faq")
    text = main(["route", "explain", FRAUD, "--data", str(data), "--session", session_id])
    assert text == 0
    out = capsys.readouterr().out
    assert f"session: {session_id} (current provider: faq)" in out
    assert "decision: switch -> agents  (reported fraud)" in out


@pytest.mark.parametrize(
    ("args", "code", "error"),
    [
        (["--at", "2026-12-01T10:00"], 2, "--at '2026-12-01T10:00': give its UTC offset"),
        (["--at", "tomorrow"], 2, "--at 'tomorrow': expected an ISO time"),
        (["--session", "mts_nope"], 1, "no session store at"),
    ],
)
def test_bad_arguments_get_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], code: int, error: str
) -> None:
    assert main(["route", "explain", "hi", "--data", str(tmp_path / "data"), *args]) == code
    assert capsys.readouterr().err.startswith(f"error: {error}")


def test_an_unknown_session_in_a_real_store_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    asyncio.run(_seed(data))
    assert main(["route", "explain", "hi", "--data", str(data), "--session", "mts_nope"]) == 1
    assert capsys.readouterr().err == f"error: no session 'mts_nope' in {data / 'midtier.db'}\n"


def test_confidence_judged_per_provider_is_said_to_be_the_providers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_with_nlu(tmp_path, "{threshold_on: provider}")
    args = [FRAUD, "--config", str(config), "--data", str(tmp_path / "data")]
    found = _explain(capsys, *args)
    assert (found["confidence_of"], found["intent"]) == ("provider", "report_fraud")
    assert main(["route", "explain", *args]) == 0
    assert "(its provider's, over its baseline)" in capsys.readouterr().out
    per_intent = _explain(capsys, FRAUD, "--data", str(tmp_path / "data"))
    assert per_intent["confidence_of"] == "intent"
    assert per_intent["confidence"] == per_intent["ranking"][0]["confidence"]
    assert found["confidence"] != per_intent["confidence"]

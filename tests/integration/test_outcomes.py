"""Outcomes end to end, over real WebSockets against a real server: how each leg ends is
recorded for its provider and intent (a handoff the bot asks for, an agent's disposition,
expiry, the user's rating in the web chat), and a route's ``min_success_rate`` steers
conversations away from a provider that fails an intent."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.server import AGENT_TOKEN, DEFAULT_CONFIG, Chatter, Running, agent, chat, serve

from connector.expiry import expire_idle
from connector.records import Changes, OutcomeCount, OutcomeEntry
from connector.sessions import MidTierSession

LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIDTIER_AGENT_TOKEN", AGENT_TOKEN)


def _bot(text: str) -> Any:
    return lambda f: f["speaker"] == "bot" and text in f["text"]


async def _session(run: Running, conversation: str) -> MidTierSession:
    found = await run.engine.store.by_channel("webchat", conversation)
    assert found is not None
    return found


async def _counts(run: Running) -> list[OutcomeCount]:
    return await run.engine.store.outcome_counts(LONG_AGO)


async def test_a_requested_handoff_a_disposition_and_expiry_are_recorded(tmp_path: Path) -> None:
    async with serve(data_dir=tmp_path) as run, chat(run) as (user, welcome):
        me = Chatter(user)
        await me.say("I want to dispute a charge")
        await user.expect("message", _bot("merchant"))
        await me.say("Grand Hotel")
        await user.expect("message", _bot("How much"))
        await me.say("$2500")  # the disputes bot hands high values to a person
        await user.expect("message", lambda f: f["speaker"] == "system")
        assert await _counts(run) == [OutcomeCount("disputes", "dispute_charge", 0, 1, 1)]
        async with agent(run) as desk:
            ready = desk.of("ready")[0]
            assert ready["dispositions"] == [
                {"name": "resolved", "success": True},
                {"name": "not_resolved", "success": False},
            ]
            queued = await desk.expect("queue", lambda f: bool(f["conversations"]))
            conversation = queued["conversations"][0]["conversation"]
            await desk.send(type="accept", conversation=conversation)
            await user.expect("message", lambda f: f["speaker"] == "agent")
            await desk.send(type="resolve", conversation=conversation, disposition="resolved")
            await user.expect("message", lambda f: f["speaker"] == "system" and "back" in f["text"])
        session = await _session(run, welcome["conversation"])
        assert [leg.provider for leg in session.legs] == ["disputes", "agents", "disputes"]
        assert session.legs[1].close_reason == "resolved by agent Dana (resolved)"
        # The agent was handed the bot's intent, and so was the bot it went back to.
        assert [leg.data.get("intent") for leg in session.legs] == ["dispute_charge"] * 3
        assert await _counts(run) == [
            OutcomeCount("agents", "dispute_charge", 1, 1, 1),
            OutcomeCount("disputes", "dispute_charge", 0, 1, 1),
        ]
        engine = run.engine
        assert await expire_idle(engine.store, engine.turns, engine.pool, 0.0) == 1
        assert await _counts(run) == [
            OutcomeCount("agents", "dispute_charge", 1, 1, 1),
            OutcomeCount("disputes", "dispute_charge", 1, 2, 1),  # ended with it: resolved
        ]
        await engine.rates.refresh()
        assert engine.rates("disputes", "dispute_charge") == (1, 2)


async def test_the_users_rating_and_a_bad_disposition(tmp_path: Path) -> None:
    async with serve(data_dir=tmp_path) as run:
        async with chat(run) as (early, _):
            await early.send(type="rating", value="up")  # nobody has answered yet
            assert (await early.expect("error"))["code"] == "nothing_to_rate"
        async with chat(run) as (user, welcome):
            me = Chatter(user)
            await me.say("hi")
            await user.expect("message", lambda f: f["speaker"] == "bot")
            await user.send(type="rating", value="sideways")
            error = await user.expect("error")
            assert (error["code"], error["reason"]) == (
                "malformed_frame",
                "rating needs value: up or down",
            )
            await user.send(type="rating", value="down")
            assert (await user.expect("rated"))["value"] == "down"
            assert await _counts(run) == [OutcomeCount("faq", "greet", 0, 1, 0)]
            await me.say("I need to talk to a person")
            await user.expect("message", lambda f: f["speaker"] == "system")
            # How the leg ended (the user went on to another intent) does not replace the
            # user's word on it; that it ended with a switch is kept.
            assert await _counts(run) == [OutcomeCount("faq", "greet", 0, 1, 1)]
            async with agent(run) as desk:
                queued = await desk.expect("queue", lambda f: bool(f["conversations"]))
                conversation = queued["conversations"][0]["conversation"]
                await desk.send(type="accept", conversation=conversation)
                await user.expect("message", lambda f: f["speaker"] == "agent")
                await desk.send(type="resolve", conversation=conversation, disposition="maybe")
                error = await desk.expect("error")
                assert error["reason"] == "disposition must be one of: resolved, not_resolved"
                assert (await _session(run, welcome["conversation"])).current_provider == "agents"
                await desk.send(
                    type="resolve", conversation=conversation, disposition="not_resolved"
                )
                await user.expect(
                    "message", lambda f: f["speaker"] == "system" and "back" in f["text"]
                )
            await user.send(type="rating", value="up")  # the bot it went back to
            await user.expect("rated")
        assert await _counts(run) == [
            OutcomeCount("agents", "talk_to_human", 0, 1, 1),
            OutcomeCount("faq", "greet", 0, 1, 1),
            OutcomeCount("faq", "talk_to_human", 1, 1, 0),
        ]


def _config(tmp_path: Path) -> Path:
    """The shipped deployment, with a minimum success rate on the disputes bot."""
    config = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG, config)
    routing = yaml.safe_load((config / "routing.yaml").read_text())
    routing["routes"]["disputes"]["min_success_rate"] = 0.5
    routing["success_rate"] = {"window_h": 24, "min_outcomes": 4}
    (config / "routing.yaml").write_text(yaml.safe_dump(routing))
    return config


async def test_a_provider_failing_an_intent_stops_getting_it(tmp_path: Path) -> None:
    async with serve(_config(tmp_path), data_dir=tmp_path / "data") as run:
        store, engine = run.engine.store, run.engine
        earlier, _ = await store.find_or_create("webchat", "c-earlier", "u-earlier")
        failed = [
            OutcomeEntry(
                leg_id=f"leg_{n}",
                session_id=earlier.id,
                provider="disputes",
                intent="dispute_charge",
                kind="handed_off",
                success=n == 0,
            )
            for n in range(4)
        ]
        await store.commit(
            Changes(session=earlier, expected_version=earlier.version, outcomes=failed)
        )
        await engine.rates.refresh()
        async with chat(run) as (user, welcome):
            me = Chatter(user)
            await me.say("I want to dispute a charge")
            await user.expect("message", lambda f: f["speaker"] == "system")
            session = await _session(run, welcome["conversation"])
            assert session.current_provider == "agents"  # the fallback: no other route serves it
            [decision] = await store.decisions(session.id)
            assert decision.action == "fallback"
            assert "success rate 25% for dispute_charge (1 of 4) below its minimum 50%" in (
                decision.reason
            )
        async with chat(run) as (other, welcome):
            await other.send(type="message", id="m1", text="how do I reset my password")
            await other.expect("message", _bot("Forgot password"))  # other intents unaffected

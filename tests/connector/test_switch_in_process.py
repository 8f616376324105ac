"""A switch between providers in the process is saved with its turn, in one write; one that
someone outside hears of is saved before they do."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support.doubles import (
    KEYWORDS,
    KeywordClassifier,
    RecordingChannel,
    RecordingProvider,
    make_config,
    user_message,
)

from connector.activity import Activity, ActivityTypes, HandoffEventNames
from connector.config import Route
from connector.engine import Engine
from connector.sessions import Leg
from connector.store import MemoryStore, SqliteStore
from connector.store_protocol import SessionStore


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SessionStore]:
    backend: SessionStore = (
        MemoryStore() if request.param == "memory" else SqliteStore(tmp_path / "m.db")
    )
    await backend.start()
    try:
        yield backend
    finally:
        await backend.close()


class Watching(RecordingProvider):
    """Notes, when it is given the handoff event, whether the store has its leg yet; with
    ``remind``, starts a proactive message from a task of its own right then."""

    def __init__(self, name: str, store: SessionStore) -> None:
        super().__init__(name)
        self.store = store
        self.leg_saved_at_handoff: bool | None = None
        self.engine: Engine | None = None
        self.remind = False
        self.reminded: asyncio.Task[None] | None = None

    async def deliver(self, leg: Leg, activity: Activity) -> list[Activity]:
        if activity.is_event(HandoffEventNames.CONTEXT):
            found = await self.store.by_provider(self.name, leg.provider_conversation_id)
            self.leg_saved_at_handoff = found is not None
            if self.remind and self.engine is not None:
                self.reminded = asyncio.create_task(
                    self.engine.host.proactive(self.name, leg.provider_conversation_id, _remind)
                )
        return await super().deliver(leg, activity)


async def _remind(leg: Leg) -> list[Activity]:
    return [Activity(type=ActivityTypes.MESSAGE, text="a reminder")]


async def _settled(engine: Engine) -> None:
    await engine.inbound.idle()
    await engine.outbox.idle()


def _engine(
    store: SessionStore, tmp_path: Path
) -> tuple[Engine, Watching, Watching, RecordingChannel]:
    routes = {
        "faq": Route(intents=["greet", "check_balance"]),
        "disputes": Route(intents=["dispute_charge"]),
        "agents": Route(intents=["report_fraud"], sticky=True),
    }
    faq, disputes = Watching("faq", store), Watching("disputes", store)
    channel = RecordingChannel()
    engine = Engine(
        make_config(tmp_path, list(routes), routes),
        store,
        KeywordClassifier(KEYWORDS),
        {"test": channel},
        {"faq": faq, "disputes": disputes, "agents": RecordingProvider("agents")},
        token_url="http://127.0.0.1:1/auth/token",
    )
    faq.engine = disputes.engine = engine
    return engine, faq, disputes, channel


async def test_a_first_leg_in_the_process_is_saved_with_its_turn(
    store: SessionStore, tmp_path: Path
) -> None:
    engine, faq, _, _ = _engine(store, tmp_path)
    entry = await engine.submit("test", user_message("hello"), ref="m1")
    await _settled(engine)
    assert entry is not None and entry.session_id is not None
    assert faq.leg_saved_at_handoff is False  # not before the turn's own commit
    session = await store.get(entry.session_id)
    assert session is not None and session.current_provider == "faq"
    assert [leg.provider for leg in session.legs] == ["faq"]
    assert faq.messages() == ["hello"]


@pytest.mark.parametrize("outside", ["disputes", "faq"])
async def test_a_switch_someone_outside_hears_of_is_saved_before_the_new_bot_hears_of_it(
    store: SessionStore, tmp_path: Path, outside: str
) -> None:
    engine, faq, disputes, _ = _engine(store, tmp_path)
    # The new bot outside the process (it may call back at once), or the old one (closing
    # its leg tells someone outside).
    {"faq": faq, "disputes": disputes}[outside].runs_in_process = False
    await engine.submit("test", user_message("hello"), ref="m1")
    await engine.submit("test", user_message("I want to dispute a charge"), ref="m2")
    await _settled(engine)
    assert faq.leg_saved_at_handoff is (outside == "faq")  # its own first leg: so too
    assert disputes.leg_saved_at_handoff is True
    assert disputes.messages() == ["I want to dispute a charge"]
    assert len(faq.closed) == 1


async def test_a_proactive_message_started_at_the_handoff_reaches_the_user(
    store: SessionStore, tmp_path: Path
) -> None:
    engine, faq, _, channel = _engine(store, tmp_path)
    faq.remind = True
    await engine.submit("test", user_message("hello"), ref="m1")
    await _settled(engine)
    assert faq.reminded is not None
    await asyncio.wait_for(faq.reminded, 5)  # it waited for the leg, then ran
    await _settled(engine)
    assert sorted(channel.texts()) == ["a reminder", "faq: hello"]

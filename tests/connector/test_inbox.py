"""Provider callbacks: kept in the store, applied in order, never lost to a deadlock or crash."""

from __future__ import annotations

from pathlib import Path

from support.doubles import RecordingProvider, make_engine, user_message

from connector.activity import Activity
from connector.engine import Engine
from connector.sessions import Leg
from connector.store.sqlite import SqliteStore


class CallsBack(RecordingProvider):
    """Answers nothing inline; posts two replies back while its delivery is still running."""

    engine: Engine

    async def deliver(self, leg: Leg, activity: Activity) -> list[Activity]:
        await super().deliver(leg, activity)
        if activity.type == "message":
            replies = [Activity(type="message", text=f"later {n}: {activity.text}") for n in (1, 2)]
            await self.engine.host.accept(self.name, leg.provider_conversation_id, replies)
        return []


async def test_callbacks_during_a_delivery_are_applied_after_it_in_order(tmp_path: Path) -> None:
    engine, _, channel = make_engine(tmp_path)
    faq = CallsBack("faq")
    faq.engine = engine
    engine.providers["faq"] = faq
    await engine.receive("test", user_message("hello"))
    await engine.receive("test", user_message("my balance"))
    await engine.inbox.idle()
    await engine.outbox.idle()  # replies go out in a task of their own
    assert channel.texts() == [
        "later 1: hello",
        "later 2: hello",
        "later 1: my balance",
        "later 2: my balance",
    ]
    assert await engine.store.inbox_keys() == []


async def test_accepted_callbacks_survive_a_crash(tmp_path: Path) -> None:
    first, _, _ = make_engine(tmp_path, SqliteStore(tmp_path / "midtier.db"))
    await first.store.start()
    session = await first.receive("test", user_message("hello"))
    assert session is not None
    conversation = session.legs[0].provider_conversation_id
    await first.host.accept("faq", conversation, [Activity(type="message", text="kept")])
    await first.inbox.stop()  # the process dies before the worker ran
    await first.store.close()

    second, _, channel = make_engine(tmp_path, SqliteStore(tmp_path / "midtier.db"))
    await second.store.start()
    await second.inbox.resume()
    await second.inbox.idle()
    await second.outbox.idle()
    assert channel.texts() == ["kept"]
    assert await second.store.inbox_keys() == []
    await second.store.close()


async def test_a_failed_action_is_reported_to_the_provider(tmp_path: Path) -> None:
    engine, providers, _ = make_engine(tmp_path)
    session = await engine.receive("test", user_message("hello"))
    assert session is not None
    conversation = session.legs[0].provider_conversation_id
    action = {"action": "transfer", "target": "nobody", "reason": "try"}
    await engine.host.accept("faq", conversation, [], action)
    await engine.inbox.idle()
    assert providers["faq"].statuses() == ["failed"]
    after = await engine.store.get(session.id)
    assert after is not None and after.current_provider == "faq"

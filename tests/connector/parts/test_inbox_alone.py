"""The provider inbox built from only what it needs: the inbox and session parts of a store,
units of work, and a target to hand callbacks to (here one that records them)."""

from __future__ import annotations

from typing import Any

from connector.activity import Activity
from connector.errors import NotFound
from connector.inbox import ProviderInbox
from connector.locks import LocalLocks
from connector.records import OutboxEntry
from connector.sessions import Leg
from connector.store.memory import MemoryStore
from connector.work import Turn, Turns


class Target:
    """Records what the inbox hands over; an action named ``impossible`` fails."""

    def __init__(self, turns: Turns) -> None:
        self.provider_turn = turns.provider_turn
        self.emitted: list[str] = []
        self.done: list[str] = []
        self.failures: list[str] = []

    async def emit(self, turn: Turn, leg: Leg, activities: list[Activity]) -> None:
        self.emitted += [a.text or "" for a in activities]
        leg.data["seen"] = len(self.emitted)  # committed with the inbox entry's removal

    async def do(self, turn: Turn, leg: Leg, action: dict[str, Any]) -> None:
        if action["action"] == "impossible":
            raise NotFound("cannot do that")
        self.done.append(action["action"])

    async def tell_provider_failed(self, provider: str, conversation: str, message: str) -> None:
        self.failures.append(message)


async def _with_leg(store: MemoryStore) -> str:
    session, _ = await store.find_or_create("test", "c1", "user-1")
    session.legs.append(
        Leg(
            channel="test",
            channel_conversation_id="c1",
            provider="bot",
            provider_conversation_id="b1",
        )
    )
    await store.save(session)
    return session.id


def _inbox(store: MemoryStore) -> tuple[ProviderInbox, Target]:
    async def dispatch(entries: list[OutboxEntry]) -> None:
        pass

    target = Target(Turns(store, LocalLocks(), dispatch))
    return ProviderInbox(store, store, target, lambda _provider: 0.2), target


async def test_callbacks_are_applied_in_order_and_leave_with_their_unit_of_work() -> None:
    store = MemoryStore()
    session_id = await _with_leg(store)
    inbox, target = _inbox(store)
    for text in ("one", "two", "three"):
        await inbox.accept("bot", "b1", [Activity(type="message", text=text)])
    await inbox.idle()
    assert target.emitted == ["one", "two", "three"]
    assert await store.inbox_keys() == []
    session = await store.get(session_id)
    assert session is not None and session.legs[0].data["seen"] == 3


async def test_a_failed_action_is_told_to_the_provider_and_its_activities_stand() -> None:
    store = MemoryStore()
    await _with_leg(store)
    inbox, target = _inbox(store)
    kept = [Activity(type="message", text="before")]
    await inbox.accept("bot", "b1", kept, {"action": "impossible"})
    await inbox.accept("bot", "b1", [], {"action": "hand_back"})
    await inbox.idle()
    assert target.emitted == ["before"]
    assert target.failures == ["cannot do that"]
    assert target.done == ["hand_back"]


async def test_a_callback_for_a_conversation_that_never_opens_is_dropped_in_time() -> None:
    store = MemoryStore()
    inbox, target = _inbox(store)
    await inbox.accept("bot", "nowhere", [Activity(type="message", text="lost")])
    await inbox.idle()  # waits out the 0.2 s an opening leg is given, then gives up
    assert target.emitted == []
    assert await store.inbox_keys() == []


async def test_what_was_accepted_before_a_stop_is_applied_after_a_resume() -> None:
    store = MemoryStore()
    await _with_leg(store)
    first, _ = _inbox(store)
    await first.stop()  # stopped before its worker ran
    await first.accept("bot", "b1", [Activity(type="message", text="kept")])
    assert await store.inbox_keys() == [("bot", "b1")]
    second, target = _inbox(store)
    await second.resume()
    await second.idle()
    assert target.emitted == ["kept"]

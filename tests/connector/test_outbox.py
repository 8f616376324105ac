"""The outbox on its own: the memory store, a fake clock, channels that fail as told."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from support.clock import FakeClock
from support.doubles import make_engine, user_message

from connector.activity import Activity, ActivityTypes, ConversationAccount
from connector.config import OutboxSettings
from connector.errors import ChannelError, ChannelUnavailable, DeliveryRejected
from connector.outbox import Outbox
from connector.outbox_setbacks import PARK
from connector.records import OutboxEntry
from connector.sessions import KEPT_FAILURES, DeliveryFailure
from connector.store.memory import MemoryStore

SETTINGS = OutboxSettings(give_up_after_s=600, first_backoff_s=1, max_backoff_s=60)
ALL = 1.0 - 1e-12  # rand() at the top of its range: the jitter keeps all of the backoff
Refuse = Callable[[Activity], BaseException | None]


class Channel:
    """Keeps what it took, in order; ``refuse`` decides per activity what to raise; a
    conversation in ``hang`` waits for its event first."""

    def __init__(self, name: str = "chat") -> None:
        self.name = name
        self.taken: list[str] = []  # texts, "<typing>" for a typing signal
        self.tried: list[str] = []
        self.refuse: Refuse = lambda _activity: None
        self.hang: dict[str, asyncio.Event] = {}
        self.trying = asyncio.Event()  # set at each try

    async def send(self, activity: Activity) -> str:
        text = activity.text or f"<{activity.type}>"
        self.tried.append(text)
        self.trying.set()
        gate = self.hang.get(activity.conversation.id if activity.conversation else "")
        if gate is not None:
            await gate.wait()
        error = self.refuse(activity)
        if error is not None:
            raise error
        self.taken.append(text)
        return activity.id or ""


class World:
    def __init__(self, settings: OutboxSettings = SETTINGS, channels: int = 1) -> None:
        self.clock = FakeClock()
        self.store = MemoryStore(clock=self.clock)
        names = ["chat", "other"][:channels]
        self.channels = {name: Channel(name) for name in names}
        self.failures: list[tuple[str, DeliveryFailure]] = []
        self.recording_fails = False
        self.outbox = Outbox(
            self.store,
            self.channels,
            settings,
            on_failure=self._failed,
            clock=self.clock,
            rand=lambda: ALL,  # the jitter keeps all of the backoff
        )
        self._ids = itertools.count(1)

    @property
    def chat(self) -> Channel:
        return self.channels["chat"]

    async def _failed(self, session_id: str, failure: DeliveryFailure) -> None:
        if self.recording_fails:
            raise RuntimeError("store is down")
        self.failures.append((session_id, failure))

    async def commit(
        self, text: str, conversation: str = "c1", channel: str = "chat"
    ) -> OutboxEntry:
        """Write a reply to the outbox, as a unit of work's commit does."""
        session, _ = await self.store.find_or_create(channel, conversation, "u1")
        entry = OutboxEntry(
            id=f"a{next(self._ids)}",
            session_id=session.id,
            channel=channel,
            conversation_id=conversation,
            activity={"type": "message", "text": text, "conversation": {"id": conversation}},
            created_at=self.clock(),
            next_attempt_at=self.clock(),
        )
        await self.store.outbox_put(entry)
        return entry

    async def reply(self, text: str, conversation: str = "c1", channel: str = "chat") -> None:
        """Commit a reply and hand it over."""
        await self.outbox.dispatch([await self.commit(text, conversation, channel)])

    async def retry(self, after_s: float = 0.0) -> int:
        """Let ``after_s`` seconds pass, run a retry pass and wait for what it started."""
        self.clock.advance(after_s)
        started = await self.outbox.retry_due()
        await self.outbox.idle()
        return started

    async def pending(self, conversation: str = "c1", channel: str = "chat") -> list[str]:
        entries = await self.store.outbox_pending(channel, conversation)
        return [e.activity["text"] for e in entries]


def refusing(texts: dict[str, list[BaseException]]) -> Refuse:
    """Raise the listed errors, one per try, for activities with these texts."""
    return lambda a: texts[a.text or ""].pop(0) if texts.get(a.text or "") else None


# --------------------------------------------------------------------------- the outbox


async def test_a_failed_reply_waits_for_its_backoff_then_goes_out() -> None:
    w = World()
    w.chat.refuse = refusing({"hello": [ChannelError("HTTP 503")]})
    await w.reply("hello")
    await w.outbox.idle()
    [entry] = await w.store.outbox_pending("chat", "c1")
    assert (entry.attempts, entry.last_error) == (1, "HTTP 503")
    assert entry.next_attempt_at == w.clock() + timedelta(seconds=1.0)
    assert await w.retry(0.9) == 0 and w.chat.taken == []
    assert await w.retry(0.1) == 1 and w.chat.taken == ["hello"]
    assert await w.pending() == [] and w.failures == []


async def test_a_new_reply_neither_overtakes_nor_hurries_one_the_platform_throttled() -> None:
    w = World()
    w.chat.refuse = refusing({"first": [ChannelError("HTTP 429", retry_after=30)]})
    await w.reply("first")
    await w.outbox.idle()
    await w.reply("second")
    await w.outbox.idle()
    assert w.chat.tried == ["first"]  # the second waits; the first is not tried early
    assert await w.retry(32.9) == 0
    await w.retry(0.1)  # 30 s asked, plus up to a tenth
    assert w.chat.taken == ["first", "second"]


async def test_a_refused_reply_is_recorded_at_once_and_the_ones_behind_it_go_on() -> None:
    w = World()
    w.chat.refuse = refusing({"two": [DeliveryRejected("HTTP 403 blocked by the user")]})
    for text in ("one", "two", "three"):
        await w.reply(text)
    await w.outbox.idle()
    assert w.chat.taken == ["one", "three"] and await w.pending() == []
    [(session_id, failure)] = w.failures
    assert session_id == (await w.store.list_sessions())[0].id
    assert (failure.outcome, failure.attempts, failure.excerpt) == ("rejected", 1, "two")
    assert (failure.channel, failure.activity_id) == ("chat", "a2")
    assert failure.reason == "HTTP 403 blocked by the user" and failure.at == w.clock()


async def test_a_reply_not_taken_by_the_give_up_time_is_recorded_and_the_next_goes_on() -> None:
    w = World(OutboxSettings(give_up_after_s=60, first_backoff_s=1, max_backoff_s=8))
    w.chat.refuse = refusing({"stuck": [ChannelError("HTTP 502")] * 100})
    t0 = w.clock()
    await w.reply("stuck")
    w.clock.advance(30)
    await w.reply("later")
    for _ in range(50):  # retry passes exactly when the head is due
        head = (await w.store.outbox_pending("chat", "c1"))[0]
        w.clock.current = max(w.clock(), head.next_attempt_at)
        await w.retry()
        if w.failures:
            break
    [(_, failure)] = w.failures
    assert set(w.chat.tried[:-1]) == {"stuck"}  # the later one waited behind it
    assert failure.outcome == "given_up" and failure.at == t0 + timedelta(seconds=60)
    assert "not taken within 60 s" in failure.reason and "HTTP 502" in failure.reason
    assert w.chat.taken == ["later"] and await w.pending() == []


async def test_a_parked_reply_outlives_the_give_up_time_while_its_session_is_open() -> None:
    w = World(OutboxSettings(give_up_after_s=60))
    w.chat.refuse = lambda _a: ChannelUnavailable("nobody connected")
    await w.reply("while you were away")
    for _ in range(72):  # three days
        await w.retry(PARK.total_seconds())
    assert await w.pending() == ["while you were away"] and w.failures == []
    await w.reply("and this")  # a new reply tries again: someone may be back
    await w.outbox.idle()
    assert w.chat.tried[-2:] == ["while you were away"] * 2
    w.chat.refuse = lambda _a: None
    assert await w.outbox.flush("chat", "c1") == 2  # the conversation reconnected
    assert w.chat.taken == ["while you were away", "and this"]


async def test_a_parked_reply_is_given_up_once_its_session_has_closed() -> None:
    w = World()
    w.chat.refuse = lambda _a: ChannelUnavailable("no open web chat")
    await w.reply("unread")
    await w.outbox.idle()
    assert await w.store.expire(w.clock() + timedelta(seconds=1)) == 1  # idle expiry
    await w.retry(PARK.total_seconds())
    [(_, failure)] = w.failures
    assert failure.outcome == "given_up" and failure.attempts == 2
    assert failure.reason == "nobody connected before the session closed: no open web chat"
    assert await w.pending() == []


async def test_a_failure_that_cannot_be_recorded_keeps_its_reply_until_it_can() -> None:
    w = World()
    w.chat.refuse = lambda _a: DeliveryRejected("HTTP 403")
    w.recording_fails = True
    await w.reply("refused")
    await w.outbox.idle()
    assert await w.pending() == ["refused"] and w.failures == []
    w.recording_fails = False
    await w.retry(SETTINGS.max_backoff_s)
    assert [f.outcome for _, f in w.failures] == ["rejected"] and await w.pending() == []


async def test_an_adapter_that_raises_something_unexpected_does_not_lose_the_reply() -> None:
    w = World()
    w.chat.refuse = refusing({"hi": [KeyError("bug")]})
    await w.reply("hi")
    await w.outbox.idle()
    [entry] = await w.store.outbox_pending("chat", "c1")
    assert entry.last_error == "channel chat failed: KeyError"
    await w.retry(1)
    assert w.chat.taken == ["hi"]


async def test_retries_of_a_hanging_channel_are_bounded_and_others_go_on_beside_them() -> None:
    w = World(OutboxSettings(retry_concurrency=2), channels=2)
    other = w.channels["other"]
    for n in range(4):
        w.chat.hang[f"c{n}"] = asyncio.Event()
        await w.commit(f"s{n}", conversation=f"c{n}")
    await w.commit("o1", conversation="o1", channel="other")
    await w.outbox.load_backlog()  # left in the store, as found at start-up
    assert await w.outbox.retry_due() == 3  # two of the hanging channel, and the other one
    await w.outbox.settled("other", "o1")
    assert other.taken == ["o1"] and len(w.chat.tried) == 2
    assert await w.outbox.retry_due() == 0  # the hanging channel has no slot free
    for gate in w.chat.hang.values():
        gate.set()
    await w.outbox.idle()
    assert await w.retry() == 2
    assert sorted(w.chat.taken) == ["s0", "s1", "s2", "s3"]


async def test_a_hanging_conversation_does_not_delay_another_ones_replies() -> None:
    w = World()
    w.chat.hang["slow"] = asyncio.Event()
    await w.reply("to the slow one", conversation="slow")
    await w.reply("to the fast one", conversation="fast")
    await w.outbox.settled("chat", "fast")
    assert w.chat.taken == ["to the fast one"]
    w.chat.hang["slow"].set()
    await w.outbox.idle()
    assert w.chat.taken == ["to the fast one", "to the slow one"]


async def test_typing_shows_before_later_replies_and_not_while_replies_are_stuck() -> None:
    w = World()
    typing = Activity(type=ActivityTypes.TYPING, conversation=ConversationAccount(id="c1"))
    await w.outbox.send_now("chat", typing)
    await w.reply("answer")
    await w.outbox.idle()
    assert w.chat.taken == ["<typing>", "answer"]
    w.chat.refuse = refusing({"stuck": [ChannelError("HTTP 500")]})
    await w.reply("stuck")
    await w.outbox.idle()
    await w.outbox.send_now("chat", typing)
    await w.outbox.idle()
    assert w.chat.tried[-1] == "stuck"


async def test_a_reply_committed_while_a_client_reads_its_history_arrives_once() -> None:
    w = World()
    async with w.outbox.paused("chat", "c1"):
        await w.reply("meanwhile")
        await asyncio.sleep(0)  # the conversation's task gets its turn: it must wait
        assert w.chat.taken == []
    await w.outbox.idle()
    assert w.chat.taken == ["meanwhile"]


async def test_after_a_restart_new_replies_wait_behind_what_was_left() -> None:
    w = World()
    w.chat.refuse = lambda _a: ChannelUnavailable("process went down")
    await w.reply("left over")
    await w.outbox.idle()
    await w.outbox.stop()  # the process goes down
    restarted = Outbox(w.store, w.channels, SETTINGS, clock=w.clock)
    await restarted.load_backlog()
    w.chat.refuse = lambda _a: None
    await restarted.dispatch([await w.commit("new")])
    await restarted.idle()
    assert w.chat.taken == [] and await w.pending() == ["left over", "new"]  # parked head
    w.clock.advance(PARK.total_seconds())
    await restarted.retry_due()
    await restarted.idle()
    assert w.chat.taken == ["left over", "new"]


class WireChannel(Channel):
    """A channel that takes the outbox's wire activities (``SendsWire``)."""

    def __init__(self) -> None:
        super().__init__()
        self.wires: list[dict[str, Any]] = []

    async def send_wire(self, activity: dict[str, Any]) -> str:
        self.wires.append(activity)
        if activity.get("text") == "refused":
            raise DeliveryRejected("blocked")
        return str(activity.get("id", ""))


async def test_a_channel_that_takes_wire_activities_gets_each_entry_as_it_was_stored() -> None:
    w = World()
    chat = w.channels["chat"] = WireChannel()
    first = await w.commit("hello")
    await w.outbox.dispatch([first, await w.commit("refused"), await w.commit("after")])
    await w.outbox.idle()
    assert chat.wires == [first.activity, *chat.wires[1:]]
    assert [a["text"] for a in chat.wires] == ["hello", "refused", "after"]
    assert chat.tried == []  # ``send`` was not asked
    assert [f.reason for _, f in w.failures] == ["blocked"]
    assert await w.pending() == []


# --------------------------------------------------------------------------- the engine


async def test_the_engine_keeps_each_failure_once_on_the_session_and_only_the_newest(
    tmp_path: Path,
) -> None:
    engine, _, channel = make_engine(tmp_path)

    async def refuse(activity: Activity) -> str:
        raise DeliveryRejected(f"HTTP 403 for {activity.text}")

    channel.send = refuse  # type: ignore[method-assign]
    for n in range(KEPT_FAILURES + 2):
        await engine.receive("test", user_message(f"hello {n}"))
    session = (await engine.store.list_sessions())[0]
    failures = session.delivery_failures
    assert len(failures) == KEPT_FAILURES
    assert [f.excerpt for f in failures[-2:]] == [f"faq: hello {n}" for n in (20, 21)]
    assert await engine.store.outbox_pending("test", "c1") == []
    assert not session.record_failure(failures[-1])  # the same reply again: kept once

"""A user's message taken for processing before it is recorded (``session.ack_within_s``).

When nothing of its conversation is under way, a message is processed at once and its
record goes into the same commit as its answer; a message whose processing takes longer is
recorded on its own first. Either way it is acknowledged (``submit`` returns) only once it
is recorded, and it is processed once. Each test runs on both store backends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support.doubles import RecordingChannel, RecordingProvider, make_engine, user_message

from connector.engine import Engine
from connector.records import InboundEntry
from connector.settings import SessionSettings
from connector.store import MemoryStore, SqliteStore
from connector.store_protocol import SessionStore

QUICK = SessionSettings(ack_within_s=5.0)  # longer than any step here takes
SLOW = SessionSettings(ack_within_s=0.05)


class Counting:
    """Put before a store class: counts the messages recorded on their own; with
    ``expire_next`` the session found for the next message is closed right after (as expiry
    may do between finding a message's session and processing it)."""

    puts = 0
    expire_next = False

    async def inbound_put(self, entry: InboundEntry, ttl_seconds: float) -> InboundEntry | None:
        self.puts += 1
        return await super().inbound_put(entry, ttl_seconds)  # type: ignore[misc]

    async def inbound_target(self, entry: InboundEntry) -> str | None:
        found: str | None = await super().inbound_target(entry)  # type: ignore[misc]
        if self.expire_next and found is not None:
            self.expire_next = False
            store: SessionStore = self  # type: ignore[assignment]
            session = await store.get(found)
            assert session is not None
            session.status = "closed"
            await store.save(session)
        return found


class CountingMemory(Counting, MemoryStore):
    """The memory store, counting."""


class CountingSqlite(Counting, SqliteStore):
    """The SQLite store, counting."""


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SessionStore]:
    backend: SessionStore = (
        CountingMemory() if request.param == "memory" else CountingSqlite(tmp_path / "m.db")
    )
    await backend.start()
    try:
        yield backend
    finally:
        await backend.close()


async def settled(engine: Engine) -> None:
    """Wait until every message was processed and its replies tried."""
    await engine.inbound.idle()
    await engine.outbox.idle()


def puts(store: SessionStore) -> int:
    assert isinstance(store, Counting)
    return store.puts


async def first_message(
    store: SessionStore, tmp_path: Path, session: SessionSettings
) -> tuple[Engine, dict[str, RecordingProvider], RecordingChannel]:
    """An engine whose conversation c1 has its session (its first message, processed)."""
    engine, providers, channel = make_engine(tmp_path, store, session)
    assert await engine.submit("test", user_message("hello"), ref="m1") is not None
    await settled(engine)
    assert puts(store) == 1  # a conversation's first message makes its session: recorded first
    return engine, providers, channel


async def test_a_message_answered_in_time_is_recorded_with_its_answer_in_one_commit(
    store: SessionStore, tmp_path: Path
) -> None:
    engine, providers, channel = await first_message(store, tmp_path, QUICK)
    entry = await engine.submit("test", user_message("my balance"), ref="m2")
    # Acknowledged once its record and its answer were committed together.
    assert entry is not None and puts(store) == 1
    assert providers["faq"].messages() == ["hello", "my balance"]
    assert await store.inbound_pending("test", "c1") == []
    lines = await store.transcript(entry.session_id)
    assert [(e.speaker, e.text) for e in lines][-2:] == [
        ("user", "my balance"),
        ("bot", "faq: my balance"),
    ]
    assert lines[-2].ref == "m2" and lines[-2].provider == "faq"  # the leg it went to
    # Its dedupe key went in with it: the platform's retry is a repeat.
    assert await engine.submit("test", user_message("my balance"), ref="m2") is None
    await settled(engine)
    assert providers["faq"].messages() == ["hello", "my balance"]
    assert channel.texts() == ["faq: hello", "faq: my balance"]


async def test_a_slow_bots_message_is_recorded_and_acknowledged_before_it_answers(
    store: SessionStore, tmp_path: Path
) -> None:
    engine, providers, channel = await first_message(store, tmp_path, SLOW)
    providers["faq"].hang = asyncio.Event()
    entry = await engine.submit("test", user_message("my balance"), ref="m2")
    assert entry is not None and puts(store) == 2  # recorded on its own after 50 ms
    assert providers["faq"].messages() == ["hello", "my balance"]  # the bot has it, still busy
    assert [e.id for e in await store.inbound_pending("test", "c1")] == [entry.id]
    assert [e.text for e in await store.transcript(entry.session_id)][-1] == "my balance"
    providers["faq"].hang.set()
    await settled(engine)
    assert await store.inbound_pending("test", "c1") == []
    texts = [e.text for e in await store.transcript(entry.session_id)]
    assert texts[-2:] == ["my balance", "faq: my balance"]  # its line once
    assert channel.texts() == ["faq: hello", "faq: my balance"]


async def test_a_repeat_sent_while_its_original_is_under_way_is_processed_once(
    store: SessionStore, tmp_path: Path
) -> None:
    engine, providers, channel = await first_message(store, tmp_path, SLOW)
    providers["faq"].hang = asyncio.Event()
    providers["faq"].delivering.clear()
    original = asyncio.create_task(engine.submit("test", user_message("balance"), ref="m2"))
    await providers["faq"].delivering.wait()
    assert providers["faq"].messages() == ["hello", "balance"]
    # The retry comes before the original is recorded: it waits for that, and is a repeat.
    assert not original.done()
    assert await engine.submit("test", user_message("balance"), ref="m2") is None
    assert await original is not None
    providers["faq"].hang.set()
    await settled(engine)
    assert providers["faq"].messages() == ["hello", "balance"]
    assert channel.texts() == ["faq: hello", "faq: balance"]


async def test_a_switch_records_the_message_before_the_new_provider_hears_of_it(
    store: SessionStore, tmp_path: Path
) -> None:
    engine, providers, channel = await first_message(store, tmp_path, QUICK)
    providers["disputes"].gate = asyncio.Event()
    submitted = asyncio.create_task(
        engine.submit("test", user_message("I want to dispute a charge"), ref="m2")
    )
    await providers["disputes"].opening.wait()
    # The switch read the transcript for the new provider: the message was recorded first,
    # with its line in that transcript, and acknowledged while the target is still opening.
    entry = await submitted
    assert entry is not None and puts(store) == 2
    assert [e.id for e in await store.inbound_pending("test", "c1")] == [entry.id]
    providers["disputes"].gate.set()
    await settled(engine)
    context = providers["disputes"].opened[0]
    said = [e.text for e in context.transcript if e.speaker == "user"]
    assert said == ["hello", "I want to dispute a charge"]
    assert await store.inbound_pending("test", "c1") == []
    texts = [e.text for e in await store.transcript(entry.session_id) if e.speaker == "user"]
    assert texts == ["hello", "I want to dispute a charge"]
    assert channel.texts()[-1] == "disputes: I want to dispute a charge"


async def test_messages_sent_one_after_another_are_answered_in_order(
    store: SessionStore, tmp_path: Path
) -> None:
    engine, providers, channel = await first_message(store, tmp_path, QUICK)
    sent = [f"balance {n}" for n in range(10)]
    results = await asyncio.gather(
        *(engine.submit("test", user_message(t), ref=f"k{n}") for n, t in enumerate(sent))
    )
    assert all(r is not None for r in results)
    await settled(engine)
    assert providers["faq"].messages() == ["hello", *sent]
    assert channel.texts() == ["faq: hello", *(f"faq: {t}" for t in sent)]
    # The first went in with its answer; those behind it were recorded first, in order.
    assert puts(store) == 1 + len(sent) - 1


async def test_with_ack_within_zero_every_message_is_recorded_first(
    store: SessionStore, tmp_path: Path
) -> None:
    engine, providers, _ = await first_message(store, tmp_path, SessionSettings(ack_within_s=0))
    assert await engine.submit("test", user_message("my balance"), ref="m2") is not None
    assert puts(store) == 2
    await engine.inbound.idle()
    assert providers["faq"].messages() == ["hello", "my balance"]


async def test_a_provider_outside_the_process_is_given_only_recorded_messages(
    store: SessionStore, tmp_path: Path
) -> None:
    engine, providers, channel = await first_message(store, tmp_path, QUICK)
    providers["faq"].runs_in_process = False  # as a remote bot: a crash must not change ids
    providers["faq"].hang = asyncio.Event()
    providers["faq"].delivering.clear()
    submitted = asyncio.create_task(engine.submit("test", user_message("balance"), ref="m2"))
    await providers["faq"].delivering.wait()
    [pending] = await store.inbound_pending("test", "c1")  # recorded before it was given
    _, given = providers["faq"].delivered[-1]
    assert given.id == pending.id
    assert await submitted is not None  # acknowledged while the bot is still at it
    providers["faq"].hang.set()
    await settled(engine)
    assert await store.inbound_pending("test", "c1") == []
    assert channel.texts() == ["faq: hello", "faq: balance"]


async def test_a_message_whose_session_closed_meanwhile_opens_a_new_one_with_its_line_once(
    store: SessionStore, tmp_path: Path
) -> None:
    engine, _, channel = await first_message(store, tmp_path, QUICK)
    assert isinstance(store, Counting)
    old = await store.by_channel("test", "c1")
    assert old is not None
    store.expire_next = True  # closed between finding its session and processing it
    entry = await engine.submit("test", user_message("my balance"), ref="m2")
    assert entry is not None
    await settled(engine)
    session = await store.by_channel("test", "c1")
    assert session is not None and session.status == "active"
    assert session.id != old.id and entry.session_id == session.id  # a new one, recorded there
    said = [e.text for e in await store.transcript(session.id) if e.speaker == "user"]
    assert said == ["my balance"]
    assert channel.texts()[-1] == "faq: my balance"
    assert await store.inbound_pending("test", "c1") == []

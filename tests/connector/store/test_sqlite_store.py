"""SQLite-only behaviour: durability across reopening, schema versioning, start-up."""

from __future__ import annotations

import sqlite3
import stat
from datetime import timedelta
from pathlib import Path

import pytest

from connector.activity import now
from connector.errors import ConfigError
from connector.records import AuthCodeRecord, InboxEntry, OutboxEntry
from connector.routing.decision import RouteDecision
from connector.sessions import Leg, TranscriptEntry
from connector.store import SqliteStore
from connector.store import sqlite_statements as sql
from connector.store.sqlite_rows import to_us
from connector.store.sqlite_schema import SCHEMA_VERSION
from tests.connector.store.contract import arrival, outbox_entry


async def test_everything_survives_closing_and_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "midtier.db"
    store = SqliteStore(path)
    await store.start()
    session, _ = await store.find_or_create("webchat", "c-1", "u-1")
    session.legs.append(
        Leg(
            channel="webchat",
            channel_conversation_id="c-1",
            provider="bot",
            provider_conversation_id="b-1",
        )
    )
    session.slots["order"] = "A-1"
    session = await store.save(session)
    await store.append_transcript(session.id, TranscriptEntry(speaker="user", text="hi"))
    decision = RouteDecision(action="open", provider="bot", intent="greet", confidence=0.8)
    await store.append_decision(session.id, decision)
    entry = OutboxEntry(
        id="o-1",
        session_id=session.id,
        channel="webchat",
        conversation_id="c-1",
        activity={"type": "message", "text": "hello"},
    )
    await store.outbox_put(entry)
    record = AuthCodeRecord(
        session_id=session.id, provider="desk", expires_at=now() + timedelta(minutes=5)
    )
    await store.put_code("hash-1", record)
    assert await store.seen("in:webchat:m1", 3600) is False
    await store.close()

    reopened = SqliteStore(path)
    await reopened.start()
    try:
        assert await reopened.get(session.id) == session
        found, created = await reopened.find_or_create("webchat", "c-1", "u-1")
        assert not created and found.id == session.id
        by_leg = await reopened.by_provider("bot", "b-1")
        assert by_leg is not None and by_leg.id == session.id
        assert [e.text for e in await reopened.transcript(session.id)] == ["hi"]
        assert await reopened.decisions(session.id) == [decision]
        assert await reopened.outbox_pending("webchat", "c-1") == [entry]
        assert await reopened.take_code("hash-1") == record
        assert await reopened.seen("in:webchat:m1", 3600) is True
        saved = await reopened.save(found)
        assert saved.version == session.version + 1
    finally:
        await reopened.close()


async def test_start_creates_parent_dirs_and_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "midtier.db"
    store = SqliteStore(path)
    await store.start()
    await store.start()
    try:
        assert path.is_file()
        session, _ = await store.find_or_create("webchat", "c-1", "u-1")
        assert await store.get(session.id) == session
    finally:
        await store.close()
    await store.close()  # closing twice is harmless


async def test_file_records_schema_version_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "midtier.db"
    store = SqliteStore(path)
    await store.start()
    await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchall() == [(SCHEMA_VERSION,)]
        assert db.execute("PRAGMA journal_mode").fetchall() == [("wal",)]
    db.close()


async def test_the_file_and_its_journal_are_readable_by_the_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "data" / "midtier.db"
    store = SqliteStore(path)
    await store.start()
    try:
        await store.find_or_create("webchat", "c1", "u1")  # writes: the WAL file exists now
        files = [p for p in path.parent.iterdir() if p.name.startswith("midtier.db")]
        assert {p.name for p in files} >= {"midtier.db", "midtier.db-wal"}
        for file in files:
            assert stat.S_IMODE(file.stat().st_mode) == 0o600, file.name
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    finally:
        await store.close()


async def test_a_file_with_wider_permissions_is_narrowed(tmp_path: Path) -> None:
    path = tmp_path / "midtier.db"
    path.touch(mode=0o644)
    path.chmod(0o644)
    store = SqliteStore(path)
    await store.start()
    await store.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_file_from_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "midtier.db"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    store = SqliteStore(path)
    with pytest.raises(ConfigError, match="newer midtier"):
        await store.start()


async def test_calls_before_start_raise(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "midtier.db")
    with pytest.raises(RuntimeError, match="not started"):
        await store.get("mts_x")
    assert not (tmp_path / "midtier.db").exists()


async def test_a_file_of_schema_4_gets_the_idle_index_at_start(tmp_path: Path) -> None:
    path = tmp_path / "midtier.db"
    store = SqliteStore(path)
    await store.start()
    session, _ = await store.find_or_create("webchat", "c-1", "u-1")
    await store.close()
    with sqlite3.connect(path) as db:
        db.execute("DROP INDEX sessions_idle")
        db.execute("PRAGMA user_version = 4")
    db.close()
    reopened = SqliteStore(path)
    await reopened.start()
    try:
        assert await reopened.idle_sessions(now() + timedelta(seconds=1)) == [session.id]
    finally:
        await reopened.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchall() == [(SCHEMA_VERSION,)]
        indexes = db.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()
        assert ("sessions_idle",) in indexes
    db.close()


async def test_expire_closes_idle_sessions_a_page_at_a_time_until_none_is_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sql, "EXPIRE_PAGE", 2)
    store = SqliteStore(tmp_path / "midtier.db")
    await store.start()
    try:
        for n in range(5):
            await store.find_or_create("webchat", f"c-{n}", f"u-{n}")
        assert await store.expire(now() + timedelta(seconds=1)) == 5
        assert await store.list_sessions(status="active") == []
    finally:
        await store.close()


async def test_every_read_of_the_session_map_starts_from_the_index_of_its_key(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "midtier.db")
    await store.start()
    await store.close()
    with sqlite3.connect(tmp_path / "midtier.db") as db:
        for name, (read, index) in sql.INDEXED_READS.items():
            plan = db.execute(f"EXPLAIN QUERY PLAN {read}", (None,) * read.count("?"))
            outer = next(iter(plan.fetchall()))[3]
            assert outer.startswith("SEARCH") and f"INDEX {index} (" in outer, (name, outer)
    db.close()


# The queues and dedupe keys as schema 6 and older laid them out (rowid tables, a UNIQUE id,
# AUTOINCREMENT seq): what a file written by an older midtier holds.
_SCHEMA_6_QUEUES = """
DROP TABLE outbox; DROP TABLE inbox; DROP TABLE inbound; DROP TABLE dedupe;
CREATE TABLE dedupe (key TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, session_id TEXT NOT NULL,
    channel TEXT NOT NULL, conversation_id TEXT NOT NULL, next_attempt_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL, last_error TEXT, data TEXT NOT NULL);
CREATE INDEX outbox_conversation ON outbox(channel, conversation_id);
CREATE INDEX outbox_next ON outbox(next_attempt_at);
CREATE TABLE inbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, provider TEXT NOT NULL,
    conversation TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX inbox_conversation ON inbox(provider, conversation);
CREATE TABLE inbound (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, channel TEXT NOT NULL,
    conversation TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX inbound_conversation ON inbound(channel, conversation, seq);
PRAGMA user_version = 6;
"""


async def test_a_file_of_schema_6_keeps_its_queues_in_order_and_its_dedupe_keys(
    tmp_path: Path,
) -> None:
    path = tmp_path / "midtier.db"
    store = SqliteStore(path)
    await store.start()
    await store.close()
    first, second = arrival("one", "m1"), arrival("two", "m2")
    replies = [outbox_entry(f"out-{n}", "c-1", now()) for n in (1, 2)]
    callback = InboxEntry(id="cb-1", provider="faq", conversation="p-1")
    with sqlite3.connect(path) as db:
        db.executescript(_SCHEMA_6_QUEUES)
        for entry in (first, second):
            db.execute(
                "INSERT INTO inbound(id, channel, conversation, data) VALUES (?, ?, ?, ?)",
                (entry.id, entry.channel, entry.conversation, entry.model_dump_json()),
            )
        for reply in replies:
            db.execute(
                "INSERT INTO outbox(id, session_id, channel, conversation_id, next_attempt_at,"
                " attempts, last_error, data) VALUES (?, ?, ?, ?, ?, 0, NULL, ?)",
                (reply.id, reply.session_id, reply.channel, reply.conversation_id,
                 to_us(reply.next_attempt_at), reply.model_dump_json()),
            )  # fmt: skip
        db.execute(
            "INSERT INTO inbox(id, provider, conversation, data) VALUES (?, ?, ?, ?)",
            (callback.id, callback.provider, callback.conversation, callback.model_dump_json()),
        )
        far = to_us(now() + timedelta(hours=1))
        db.execute("INSERT INTO dedupe(key, expires_at) VALUES ('in:webchat:c-1:m0', ?)", (far,))
    db.close()
    reopened = SqliteStore(path)
    await reopened.start()
    try:
        third = await reopened.inbound_put(arrival("three", "m3"), ttl_seconds=60)
        assert third is not None
        pending = await reopened.inbound_pending("webchat", "c-1")
        assert [e.id for e in pending] == [first.id, second.id, third.id]
        await reopened.outbox_put(outbox_entry("out-3", "c-1", now()))
        waiting = await reopened.outbox_pending("webchat", "c-1")
        assert [e.id for e in waiting] == ["out-1", "out-2", "out-3"]
        assert [e.id for e in await reopened.inbox_pending("faq", "p-1")] == ["cb-1"]
        assert await reopened.inbound_put(arrival("zero", "m0"), ttl_seconds=60) is None
    finally:
        await reopened.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchall() == [(SCHEMA_VERSION,)]
        tables = db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
        assert not [name for name, text in tables if "AUTOINCREMENT" in (text or "")]
    db.close()

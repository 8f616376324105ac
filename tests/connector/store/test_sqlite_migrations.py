"""SQLite files written by an older midtier: what start() changes in them, and what it keeps."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

from connector.activity import now
from connector.records import Changes, OutcomeCount, OutcomeEntry
from connector.routing.decision import RouteDecision
from connector.sessions import TranscriptEntry
from connector.store import SqliteStore
from connector.store.sqlite_schema import SCHEMA_VERSION
from tests.connector.store.contract import FakeClock, arrival, leg, outbox_entry

# What schema 9 changed, as schema 8 had it: a table of transcript lines and one of route
# decisions, each keyed by session and place, their sessions checked by foreign keys; the
# sessions' updated_at was the time of the last save, in sessions_idle.
_SCHEMA_8 = """
ALTER TABLE sessions DROP COLUMN updated_at;
ALTER TABLE sessions RENAME COLUMN idle_at TO updated_at;
DROP TABLE history;
CREATE TABLE transcript (
    session_id TEXT NOT NULL REFERENCES sessions(id),
    seq INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
);
CREATE TABLE decisions (
    session_id TEXT NOT NULL REFERENCES sessions(id),
    n INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (session_id, n)
);
PRAGMA user_version = 8;
"""

# What schema 8 changed, as schema 7 had it: the user's and the status index ended in
# updated_at, the outbox had an index of next_attempt_at, sessions had no leg_count,
# open_leg or claims column (the update triggers that read them are made anew at start).
_SCHEMA_7 = (
    _SCHEMA_8
    + """
DROP TRIGGER sessions_legs_update;
DROP TRIGGER sessions_identities_update;
ALTER TABLE sessions DROP COLUMN leg_count;
ALTER TABLE sessions DROP COLUMN open_leg;
ALTER TABLE sessions DROP COLUMN claims;
DROP INDEX sessions_user;
DROP INDEX sessions_status;
CREATE INDEX sessions_user ON sessions(user_id, updated_at);
CREATE INDEX sessions_status ON sessions(status, current_provider, updated_at);
CREATE INDEX outbox_next ON outbox(next_attempt_at);
PRAGMA user_version = 7;
"""
)


def _indexes(path: Path) -> dict[str, str]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'").fetchall()
    db.close()
    return {str(name): str(text) for name, text in rows if text is not None}


async def test_a_file_of_schema_7_gets_the_indexes_of_schema_8_and_keeps_its_sessions(
    tmp_path: Path,
) -> None:
    path = tmp_path / "midtier.db"
    clock = FakeClock()
    store = SqliteStore(path, clock=clock)
    await store.start()
    saved = []
    for n, provider in enumerate(["faq", "agents", "faq"]):
        session, _ = await store.find_or_create("webchat", f"c-{n}", "u-1")
        session.legs.append(leg(provider, f"{provider}-{n}", f"c-{n}"))
        saved.append(await store.save(session))
        clock.advance(1)
    phone = "phone:+16505551234"
    proved, _ = await store.find_or_create("sms", "+16505551234", "u-2")
    proved.claims = {"sub": "u-2", "verified": True, "identities": [phone]}
    proved = await store.save(proved)
    await store.outbox_put(outbox_entry("out-1", "c-0", clock()))
    await store.close()
    with sqlite3.connect(path) as db:
        db.executescript(_SCHEMA_7)
    db.close()
    assert "updated_at" in _indexes(path)["sessions_user"]

    reopened = SqliteStore(path, clock=clock)
    await reopened.start()
    try:
        assert [s.id for s in await reopened.by_user("u-1")] == [s.id for s in saved[::-1]]
        faq = await reopened.list_sessions(status="active", provider="faq")
        assert [s.id for s in faq] == [saved[2].id, saved[0].id]
        assert await reopened.open_leg_counts() == {"faq": 2, "agents": 1}
        assert [e.id for e in await reopened.outbox_due(clock())] == ["out-1"]
        assert await reopened.get(saved[1].id) == saved[1]
        assert [s.id for s in await reopened.by_identity(phone)] == [proved.id]
        said = await reopened.inbound_put(arrival("hi", conversation="c-1"), ttl_seconds=60)
        assert said is not None and said.session_id == saved[1].id
        [line] = await reopened.transcript(saved[1].id)
        assert (line.provider, line.leg_id) == ("agents", saved[1].legs[-1].id)

        # Saves of sessions written before: the legs and identities indexes still follow.
        again = await reopened.save(saved[0])
        again.legs[-1].closed_at = clock()
        again.legs.append(leg("faq", "faq-again", "c-0"))
        again = await reopened.save(again)
        found = await reopened.by_provider("faq", "faq-again")
        assert found is not None and found.id == again.id
        proved.claims = {"sub": "u-2", "verified": True}
        await reopened.save(proved)
        assert await reopened.by_identity(phone) == []
    finally:
        await reopened.close()
    indexes = _indexes(path)
    assert "outbox_next" not in indexes
    assert "updated_at" not in indexes["sessions_user"]
    assert "updated_at" not in indexes["sessions_status"]
    assert "idle_at" in indexes["sessions_idle"]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchall() == [(SCHEMA_VERSION,)]
    db.close()


def _lines(text: str) -> list[TranscriptEntry]:
    return [TranscriptEntry(speaker="user", text=f"{text}{n}") for n in range(1, 4)]


async def test_a_file_of_schema_8_keeps_its_transcripts_and_decisions_in_their_order(
    tmp_path: Path,
) -> None:
    path = tmp_path / "midtier.db"
    store = SqliteStore(path)
    await store.start()
    a, _ = await store.find_or_create("webchat", "c-a", "u-1")
    b, _ = await store.find_or_create("webchat", "c-b", "u-2")
    quiet, _ = await store.find_or_create("webchat", "c-q", "u-3")  # decisions, no lines
    await store.close()
    chosen = [RouteDecision(action="stay", provider="faq", intent=f"i{n}") for n in range(3)]
    with sqlite3.connect(path) as db:
        db.executescript(_SCHEMA_8)
        for session_id, text in ((a.id, "a"), (b.id, "b")):
            for seq, line in enumerate(_lines(text), 1):
                row = (session_id, seq, line.model_dump_json())
                db.execute("INSERT INTO transcript(session_id, seq, data) VALUES (?, ?, ?)", row)
        for session_id in (a.id, quiet.id):
            for n, decision in enumerate(chosen, 1):
                row = (session_id, n, decision.model_dump_json())
                db.execute("INSERT INTO decisions(session_id, n, data) VALUES (?, ?, ?)", row)
    db.close()

    reopened = SqliteStore(path)
    await reopened.start()
    try:
        for session_id, text in ((a.id, "a"), (b.id, "b")):
            lines = await reopened.transcript(session_id)
            assert [(e.seq, e.text) for e in lines] == [(n, f"{text}{n}") for n in (1, 2, 3)]
        assert [e.text for e in await reopened.transcript(a.id, last=2, before=3)] == ["a1", "a2"]
        assert await reopened.decisions(a.id) == chosen
        assert await reopened.decisions(quiet.id) == chosen
        assert await reopened.decisions(b.id) == []
        # What is written after the migration goes on from where each session was.
        fourth = await reopened.append_transcript(a.id, TranscriptEntry(speaker="bot", text="4"))
        first = await reopened.append_transcript(quiet.id, TranscriptEntry(speaker="bot", text="1"))
        assert (fourth.seq, first.seq) == (4, 1)
        later = RouteDecision(action="switch", provider="desk", previous="faq")
        await reopened.append_decision(a.id, later)
        assert await reopened.decisions(a.id) == [*chosen, later]
        assert [e.seq for e in await reopened.transcript(a.id)] == [1, 2, 3, 4]
        # Sessions not saved since: their last save is the old updated_at (now idle_at).
        ids = [a.id, b.id, quiet.id]
        assert [s.id for s in await reopened.list_sessions(status="active")] == ids[::-1]
        assert await reopened.idle_sessions(now() + timedelta(seconds=1)) == ids
        await reopened.save(a)
        assert [s.id for s in await reopened.list_sessions(status="active")] == [
            a.id,
            quiet.id,
            b.id,
        ]
        assert await reopened.idle_sessions(now() + timedelta(seconds=1)) == [b.id, quiet.id, a.id]
    finally:
        await reopened.close()
    with sqlite3.connect(path) as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
        assert db.execute("PRAGMA user_version").fetchall() == [(SCHEMA_VERSION,)]
    db.close()
    assert "history" in tables and not tables & {"transcript", "decisions"}


async def test_a_file_of_schema_9_gets_the_outcomes_table_and_keeps_its_sessions(
    tmp_path: Path,
) -> None:
    path = tmp_path / "midtier.db"
    store = SqliteStore(path)
    await store.start()
    session, _ = await store.find_or_create("webchat", "c-a", "u-1")
    await store.close()
    with sqlite3.connect(path) as db:
        db.executescript("DROP TABLE outcomes; PRAGMA user_version = 9;")
    db.close()

    reopened = SqliteStore(path)
    await reopened.start()
    try:
        found = await reopened.get(session.id)
        assert found == session
        outcome = OutcomeEntry(
            leg_id="leg_1", session_id=session.id, provider="faq", kind="resolved", success=True
        )
        await reopened.commit(
            Changes(session=found, expected_version=found.version, outcomes=[outcome])
        )
        assert await reopened.outcome_counts(now() - timedelta(days=1)) == [
            OutcomeCount("faq", "", 1, 1, 0)
        ]
    finally:
        await reopened.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchall() == [(SCHEMA_VERSION,)]
    db.close()

"""The SQLite store's schema and statements, as constants, and how models map onto rows.

Times are stored as integer microseconds since the Unix epoch (UTC), so comparisons and
ordering in SQL are exact. Each model is stored whole as JSON in ``data``; the other columns
are copies for lookups. Statements that must be atomic are single statements (the
connection is in autocommit mode): the legs index is kept by triggers on ``sessions``, and
sequence numbers are computed inside the ``INSERT``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from connector.records import OutboxEntry
from connector.sessions import MidTierSession
from connector.store.common import ONE_US, as_utc

# 2: provider inbox; 3: durable inbound; 4: identities, moved sessions; 5: sessions_idle;
# 6: the leg and identity triggers run only on saves that change legs, claims or status;
# 7: the queues and dedupe keys in WITHOUT ROWID tables keyed by id (MIGRATE_7).
# Every statement of SCHEMA is idempotent: an older file gets what it lacks at start().
SCHEMA_VERSION = 7

# The store adds ``PRAGMA synchronous`` (normal or full) after these.
PRAGMAS = """
PRAGMA journal_mode = WAL;
PRAGMA foreign_keys = ON;
PRAGMA busy_timeout = 5000;
"""

# Every leg with a provider conversation id maps that key to its session; a key reused by a
# newer session moves to it.
_SYNC_LEGS = """
    INSERT INTO legs(provider, provider_conversation_id, session_id)
    SELECT json_extract(value, '$.provider'), json_extract(value, '$.provider_conversation_id'),
           NEW.id
    FROM json_each(NEW.data, '$.legs')
    WHERE json_extract(value, '$.provider_conversation_id') <> ''
    ON CONFLICT DO UPDATE SET session_id = excluded.session_id
    WHERE session_id <> excluded.session_id;
"""

# Every active session whose verified claims carry identities is found by each of them
# (connector.claims); sessions saved before schema 4 are indexed at their next save.
_SYNC_IDENTITIES = """
    DELETE FROM identities WHERE session_id = NEW.id;
    INSERT OR IGNORE INTO identities(identity, session_id)
    SELECT value, NEW.id FROM json_each(NEW.data, '$.claims.identities')
    WHERE NEW.status = 'active' AND json_extract(NEW.data, '$.claims.verified') IS 1
      AND type = 'text';
"""

QUEUES = """
CREATE TABLE IF NOT EXISTS outbox (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    session_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    last_error TEXT,
    data TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS outbox_line ON outbox(channel, conversation_id, seq);
CREATE INDEX IF NOT EXISTS outbox_next ON outbox(next_attempt_at);
CREATE TABLE IF NOT EXISTS inbox (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    provider TEXT NOT NULL,
    conversation TEXT NOT NULL,
    data TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS inbox_line ON inbox(provider, conversation, seq);
CREATE TABLE IF NOT EXISTS inbound (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    channel TEXT NOT NULL,
    conversation TEXT NOT NULL,
    data TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS inbound_line ON inbound(channel, conversation, seq);
"""

SCHEMA = f"""
BEGIN;
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    channel_conversation_id TEXT NOT NULL,
    status TEXT NOT NULL,
    current_provider TEXT,
    version INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    data TEXT NOT NULL
);
-- At most one active session per channel conversation: find_or_create relies on it.
CREATE UNIQUE INDEX IF NOT EXISTS sessions_active_channel
    ON sessions(channel, channel_conversation_id) WHERE status = 'active';
CREATE INDEX IF NOT EXISTS sessions_channel
    ON sessions(channel, channel_conversation_id, created_at);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions(user_id, updated_at);
CREATE INDEX IF NOT EXISTS sessions_status
    ON sessions(status, current_provider, updated_at);
-- Expiry reads a page of the longest idle active sessions at a time.
CREATE INDEX IF NOT EXISTS sessions_idle ON sessions(status, updated_at);
CREATE TABLE IF NOT EXISTS legs (
    provider TEXT NOT NULL,
    provider_conversation_id TEXT NOT NULL,
    session_id TEXT NOT NULL REFERENCES sessions(id),
    PRIMARY KEY (provider, provider_conversation_id)
);
CREATE TRIGGER IF NOT EXISTS sessions_legs_insert AFTER INSERT ON sessions BEGIN
    {_SYNC_LEGS}
END;
-- On a save that added a leg (legs are only ever appended, their keys set before): most
-- saves (a message answered) add none. Schema 6 added the WHEN.
DROP TRIGGER IF EXISTS sessions_legs_update;
CREATE TRIGGER sessions_legs_update AFTER UPDATE OF data ON sessions
WHEN json_array_length(NEW.data, '$.legs') IS NOT json_array_length(OLD.data, '$.legs')
BEGIN
    {_SYNC_LEGS}
END;
CREATE TABLE IF NOT EXISTS identities (
    identity TEXT NOT NULL,
    session_id TEXT NOT NULL REFERENCES sessions(id),
    PRIMARY KEY (identity, session_id)
);
CREATE INDEX IF NOT EXISTS identities_session ON identities(session_id);
CREATE TRIGGER IF NOT EXISTS sessions_identities_insert AFTER INSERT ON sessions BEGIN
    {_SYNC_IDENTITIES}
END;
-- On a save that changed the claims or the status (schema 6 added the WHEN).
DROP TRIGGER IF EXISTS sessions_identities_update;
CREATE TRIGGER sessions_identities_update AFTER UPDATE OF data ON sessions
WHEN NEW.status IS NOT OLD.status
  OR json_extract(NEW.data, '$.claims') IS NOT json_extract(OLD.data, '$.claims')
BEGIN
    {_SYNC_IDENTITIES}
END;
CREATE TABLE IF NOT EXISTS transcript (
    session_id TEXT NOT NULL REFERENCES sessions(id),
    seq INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
);
CREATE TABLE IF NOT EXISTS decisions (
    session_id TEXT NOT NULL REFERENCES sessions(id),
    n INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (session_id, n)
);
CREATE TABLE IF NOT EXISTS dedupe (
    key TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS codes (
    hash TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
-- The queues (outbox, provider inbox, durable inbound) are keyed by their entries' ids,
-- in the order of ``seq`` (given by the store, rising): an entry written and deleted
-- touches two b-trees, where a rowid table with a UNIQUE id and AUTOINCREMENT touched
-- four (schema 7).
{QUEUES}
PRAGMA user_version = {SCHEMA_VERSION};
COMMIT;
"""

# ---------------------------------------------------------------------------- sessions

SELECT_ACTIVE = """
SELECT data FROM sessions
WHERE channel = ? AND channel_conversation_id = ? AND status = 'active'
"""
# What recording a user's message needs of its active session: the id and the open leg
# (the last one, unless closed), read by SQLite without parsing the whole session.
SELECT_ACTIVE_LEG = """
SELECT id,
       json_extract(data, '$.legs[#-1].provider'),
       json_extract(data, '$.legs[#-1].id'),
       json_extract(data, '$.legs[#-1].closed_at')
FROM sessions
WHERE channel = ? AND channel_conversation_id = ? AND status = 'active'
"""
# Loses quietly to a concurrent creator through the unique index on active sessions.
INSERT_NEW = """
INSERT INTO sessions(id, user_id, channel, channel_conversation_id, status, current_provider,
                     version, created_at, updated_at, data)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT DO NOTHING
RETURNING id
"""
# A never-stored session; a clash with another active session raises IntegrityError.
INSERT_SAVED = """
INSERT INTO sessions(id, user_id, channel, channel_conversation_id, status, current_provider,
                     version, created_at, updated_at, data)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(id) DO NOTHING
"""
# A session may move to another channel conversation (connector.continuation): the unique
# index on active sessions then refuses a move onto a conversation that has one.
UPDATE_SAVED = """
UPDATE sessions
SET user_id = ?, channel = ?, channel_conversation_id = ?, status = ?, current_provider = ?,
    version = ?, updated_at = ?, data = ?
WHERE id = ? AND version = ?
"""
# Most saves (a message answered) change none of the indexed keys but updated_at: writing
# only what changed spares SQLite the indexes of the others (UPDATE_SAVED when it matches
# no row: the keys changed, or the version is stale).
UPDATE_TOUCHED = """
UPDATE sessions SET version = ?, updated_at = ?, data = ?
WHERE id = ? AND version = ? AND user_id = ? AND channel = ? AND channel_conversation_id = ?
  AND status = ? AND current_provider IS ?
"""
SELECT_BY_ID = "SELECT data FROM sessions WHERE id = ?"
SELECT_BY_CHANNEL = """
SELECT data FROM sessions WHERE channel = ? AND channel_conversation_id = ?
ORDER BY status = 'active' DESC, created_at DESC, rowid DESC LIMIT 1
"""
SELECT_BY_PROVIDER = """
SELECT s.data FROM legs AS l JOIN sessions AS s ON s.id = l.session_id
WHERE l.provider = ? AND l.provider_conversation_id = ?
"""
# CROSS JOIN keeps identities the outer loop: left to itself, the planner would rather walk
# every active session through sessions_idle and probe identities for each.
SELECT_BY_IDENTITY = """
SELECT s.data FROM identities AS i CROSS JOIN sessions AS s ON s.id = i.session_id
WHERE i.identity = ? AND s.status = 'active' ORDER BY s.updated_at DESC
"""
SELECT_BY_USER = "SELECT data FROM sessions WHERE user_id = ? ORDER BY updated_at DESC"
# Longest idle first, a page at a time, so that no read holds every session in memory.
_IDLE = "FROM sessions WHERE status = 'active' AND updated_at < ? ORDER BY updated_at LIMIT ?"
SELECT_IDLE = f"SELECT data {_IDLE}"
SELECT_IDLE_IDS = f"SELECT id {_IDLE}"
EXPIRE_PAGE = 500  # sessions ``expire`` closes per statement
# A provider's queue at start-up: the open (last) leg's conversation id of its sessions.
OPEN_CONVERSATIONS = """
SELECT json_extract(data, '$.legs[#-1].provider_conversation_id'), id FROM sessions
WHERE status = 'active' AND current_provider = ?
"""
# Start-up counts: a GROUP BY over the index on (status, current_provider), rows unread.
OPEN_LEG_COUNTS = """
SELECT current_provider, COUNT(*) FROM sessions
WHERE status = 'active' AND current_provider IS NOT NULL GROUP BY current_provider
"""

# list_sessions: one constant per combination of filters, so each can use an index.
_LIST = "SELECT data FROM sessions {} ORDER BY updated_at DESC LIMIT ?"
LIST_ALL = _LIST.format("")
LIST_BY_STATUS = _LIST.format("WHERE status = ?")
LIST_BY_PROVIDER = _LIST.format("WHERE current_provider = ?")
LIST_BY_STATUS_PROVIDER = _LIST.format("WHERE status = ? AND current_provider = ?")

# The session map's reads, each with the index its outer loop must search, however many
# sessions the file holds (tests and benchmarks/session_map.py check the query plans). The
# store runs no ANALYZE, so these are the planner's choices without statistics.
INDEXED_READS = {
    "find_or_create": (SELECT_ACTIVE, "sessions_active_channel"),
    "get": (SELECT_BY_ID, "sqlite_autoindex_sessions_1"),
    "by_channel": (SELECT_BY_CHANNEL, "sessions_channel"),
    "by_provider": (SELECT_BY_PROVIDER, "sqlite_autoindex_legs_1"),
    "by_identity": (SELECT_BY_IDENTITY, "sqlite_autoindex_identities_1"),
    "by_user": (SELECT_BY_USER, "sessions_user"),
    "expire": (SELECT_IDLE, "sessions_idle"),
    "idle_sessions": (SELECT_IDLE_IDS, "sessions_idle"),
    "open_leg_counts": (OPEN_LEG_COUNTS, "sessions_status"),
    "open_conversations": (OPEN_CONVERSATIONS, "sessions_status"),
    "list_sessions(status, provider)": (LIST_BY_STATUS_PROVIDER, "sessions_status"),
}

# ---------------------------------------------------------------------------- transcript

INSERT_TRANSCRIPT = """
INSERT INTO transcript(session_id, seq, data)
SELECT ?1, COALESCE(MAX(seq), 0) + 1, ?2 FROM transcript WHERE session_id = ?1
RETURNING seq
"""
NO_SEQ_LIMIT = 1 << 62  # ``before`` when the whole transcript is wanted
SELECT_TRANSCRIPT = """
SELECT seq, data FROM transcript WHERE session_id = ? AND seq < ? ORDER BY seq
"""
SELECT_TRANSCRIPT_LAST = """
SELECT seq, data FROM transcript WHERE session_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?
"""
INSERT_DECISION = """
INSERT INTO decisions(session_id, n, data)
SELECT ?1, COALESCE(MAX(n), 0) + 1, ?2 FROM decisions WHERE session_id = ?1
"""
SELECT_DECISIONS = "SELECT data FROM decisions WHERE session_id = ? ORDER BY n"

# ---------------------------------------------------------------------------- dedupe, codes

# Changes a row (rowcount 1) only when the key is new or its record has expired.
SEEN = """
INSERT INTO dedupe(key, expires_at) VALUES (?1, ?2)
ON CONFLICT(key) DO UPDATE SET expires_at = excluded.expires_at
WHERE dedupe.expires_at <= ?3
"""
PURGE_DEDUPE = "DELETE FROM dedupe WHERE expires_at <= ?"
PUT_CODE = "INSERT OR REPLACE INTO codes(hash, data, expires_at) VALUES (?, ?, ?)"
TAKE_CODE = "DELETE FROM codes WHERE hash = ? RETURNING data"
PEEK_CODE = "SELECT data FROM codes WHERE hash = ?"
PURGE_CODES = "DELETE FROM codes WHERE expires_at <= ?"

# ---------------------------------------------------------------------------- outbox

OUTBOX_PUT = """
INSERT INTO outbox(id, seq, session_id, channel, conversation_id, next_attempt_at, attempts,
                   last_error, data)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(id) DO NOTHING
"""
_OUTBOX_COLUMNS = "data, attempts, next_attempt_at, last_error"
OUTBOX_PENDING = f"""
SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE channel = ? AND conversation_id = ? ORDER BY seq
"""
OUTBOX_DUE = f"""
SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE next_attempt_at <= ?
ORDER BY next_attempt_at, seq LIMIT ?
"""
# The entry that holds each conversation's line (the oldest one), when it is due.
OUTBOX_HEADS = """
SELECT o.data, o.attempts, o.next_attempt_at, o.last_error
FROM (SELECT channel, conversation_id, MIN(seq) AS seq FROM outbox
      GROUP BY channel, conversation_id) AS head
JOIN outbox AS o ON o.channel = head.channel AND o.conversation_id = head.conversation_id
                AND o.seq = head.seq
WHERE o.next_attempt_at <= ?
ORDER BY o.next_attempt_at, o.seq LIMIT ?
"""
OUTBOX_DONE = "DELETE FROM outbox WHERE id = ?"
OUTBOX_RETRY = """
UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE id = ?
"""

# ---------------------------------------------------------------------------- inbox

INBOX_PUT = """
INSERT INTO inbox(id, seq, provider, conversation, data) VALUES (?, ?, ?, ?, ?)
ON CONFLICT(id) DO NOTHING
"""
INBOX_PENDING = "SELECT data FROM inbox WHERE provider = ? AND conversation = ? ORDER BY seq"
INBOX_KEYS = (
    "SELECT provider, conversation FROM inbox GROUP BY provider, conversation ORDER BY MIN(seq)"
)
INBOX_DONE = "DELETE FROM inbox WHERE id = ?"

# ---------------------------------------------------------------------------- inbound

INBOUND_PUT = "INSERT INTO inbound(id, seq, channel, conversation, data) VALUES (?, ?, ?, ?, ?)"
# The highest seq in the queues: the store's next is above it (and above the clock).
MAX_QUEUE_SEQ = """
SELECT MAX(m) FROM (SELECT MAX(seq) AS m FROM outbox UNION ALL SELECT MAX(seq) FROM inbox
                    UNION ALL SELECT MAX(seq) FROM inbound)
"""
INBOUND_PENDING = """
SELECT data FROM inbound WHERE channel = ? AND conversation = ? ORDER BY seq
"""
INBOUND_KEYS = """
SELECT channel, conversation FROM inbound GROUP BY channel, conversation ORDER BY MIN(seq)
"""
INBOUND_DONE = "DELETE FROM inbound WHERE id = ?"

# A file of schema 6 or older: its queues and dedupe keys move into the tables of schema 7,
# in one transaction, their order (seq) kept. Run before SCHEMA when ``needs_migrate_7``.
MIGRATE_7 = (
    """
BEGIN;
DROP INDEX IF EXISTS outbox_conversation;
DROP INDEX IF EXISTS outbox_next;
DROP INDEX IF EXISTS inbox_conversation;
DROP INDEX IF EXISTS inbound_conversation;
ALTER TABLE outbox RENAME TO outbox_6;
ALTER TABLE inbox RENAME TO inbox_6;
ALTER TABLE inbound RENAME TO inbound_6;
ALTER TABLE dedupe RENAME TO dedupe_6;
CREATE TABLE dedupe (
    key TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
"""
    + QUEUES.replace("IF NOT EXISTS ", "")
    + """
INSERT INTO outbox SELECT id, seq, session_id, channel, conversation_id, next_attempt_at,
                          attempts, last_error, data FROM outbox_6;
INSERT INTO inbox SELECT id, seq, provider, conversation, data FROM inbox_6;
INSERT INTO inbound SELECT id, seq, channel, conversation, data FROM inbound_6;
INSERT INTO dedupe SELECT key, expires_at FROM dedupe_6;
DROP TABLE outbox_6;
DROP TABLE inbox_6;
DROP TABLE inbound_6;
DROP TABLE dedupe_6;
DELETE FROM sqlite_sequence WHERE name IN ('outbox', 'inbox', 'inbound');
COMMIT;
"""
)
NEEDS_MIGRATE_7 = """
SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'inbound' AND sql LIKE '%AUTOINCREMENT%'
"""

# ---------------------------------------------------------------------------- rows

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_us(value: datetime) -> int:
    """Microseconds since the epoch, exactly (naive datetimes are taken as UTC)."""
    return (as_utc(value) - EPOCH) // ONE_US


def from_us(value: int) -> datetime:
    """The UTC datetime ``value`` microseconds after the epoch."""
    return EPOCH + timedelta(microseconds=value)


def session_from(row: Iterable[Any]) -> MidTierSession:
    """The session in a ``SELECT data`` row."""
    (data,) = row
    return MidTierSession.model_validate_json(data)


def outbox_from(row: Iterable[Any]) -> OutboxEntry:
    """The entry in an outbox row; the columns that change on retry override ``data``."""
    data, attempts, next_attempt_at, last_error = row
    entry = OutboxEntry.model_validate_json(data)
    entry.attempts = attempts
    entry.next_attempt_at = from_us(next_attempt_at)
    entry.last_error = last_error
    return entry


def insert_params(session: MidTierSession) -> tuple[Any, ...]:
    """Column values of ``sessions`` for an INSERT, in schema order."""
    return (
        session.id,
        session.user_id,
        session.channel,
        session.channel_conversation_id,
        session.status,
        session.current_provider,
        session.version,
        to_us(session.created_at),
        to_us(session.updated_at),
        session.model_dump_json(),
    )


def touched_params(saved: MidTierSession, expected_version: int, data: str) -> tuple[Any, ...]:
    """Values for ``UPDATE_TOUCHED``."""
    return (
        saved.version,
        to_us(saved.updated_at),
        data,
        saved.id,
        expected_version,
        saved.user_id,
        saved.channel,
        saved.channel_conversation_id,
        saved.status,
        saved.current_provider,
    )


def update_params(saved: MidTierSession, expected_version: int) -> tuple[Any, ...]:
    """Values for ``UPDATE_SAVED``: write ``saved`` over the row still at ``expected_version``."""
    return (
        saved.user_id,
        saved.channel,
        saved.channel_conversation_id,
        saved.status,
        saved.current_provider,
        saved.version,
        to_us(saved.updated_at),
        saved.model_dump_json(),
        saved.id,
        expected_version,
    )


def outbox_params(entry: OutboxEntry, seq: int) -> tuple[Any, ...]:
    """Values for ``OUTBOX_PUT``."""
    return (
        entry.id,
        seq,
        entry.session_id,
        entry.channel,
        entry.conversation_id,
        to_us(entry.next_attempt_at),
        entry.attempts,
        entry.last_error,
        entry.model_dump_json(),
    )

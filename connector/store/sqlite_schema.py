"""The SQLite store's schema: its tables, indexes and triggers (older files are brought to it
by :mod:`.sqlite_migrate`).

Each model is stored whole as JSON in ``data``; the other columns are copies for lookups,
kept by the statements of :mod:`.sqlite_statements` (the legs and identities indexes by
triggers on ``sessions``). Times are integer microseconds since the Unix epoch (UTC, see
:mod:`.sqlite_rows`), so comparisons and ordering in SQL are exact.
"""

from __future__ import annotations

from connector.store.sqlite_outcomes import OUTCOMES

# 2: provider inbox; 3: durable inbound; 4: identities, moved sessions; 5: sessions_idle;
# 6: the leg and identity triggers run only on saves that change legs, claims or status;
# 7: the queues and dedupe keys in WITHOUT ROWID tables keyed by id (MIGRATE_7);
# 8: no index but sessions_idle holds updated_at, no outbox_next; the number of legs, the
#    open leg and the claims in columns, so that a save that changes none of them fires no
#    trigger and recording a message parses no JSON (MIGRATE_8);
# 9: the transcripts and route decisions in one table, a row per unit of work, without
#    foreign keys (HISTORY); sessions_idle moved by a save once a minute at most (idle_at,
#    the old updated_at column renamed; MIGRATE_9);
# 10: the legs' outcomes (connector.store.sqlite_outcomes.OUTCOMES).
# Every statement of SCHEMA is idempotent: an older file gets what it lacks at start()
# (:mod:`.sqlite_migrate`).
SCHEMA_VERSION = 10

# The store adds ``PRAGMA synchronous`` (normal or full) after these. temp_store: a unit of
# work in a group commit runs in a savepoint, whose pages SQLite keeps in a sub-journal that
# goes to a temporary file past 64 KiB (a group of a few units); in memory it is never
# written (nor is a listing's sort, which the reads bound with LIMIT).
PRAGMAS = """
PRAGMA journal_mode = WAL;
PRAGMA foreign_keys = ON;
PRAGMA busy_timeout = 5000;
PRAGMA temp_store = MEMORY;
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

# The outbox is read by conversation (outbox_line); the retry pass groups that index, and
# no read of the server's asks for next_attempt_at in order (no index of it since schema 8).
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

# Each session's transcript and route decisions, a row per unit of work that wrote some (a
# commit, a recorded message, an append): in one b-tree and one index, where one table for
# each kind wrote two of each per message. Rows are appended (rowid: the table's last page,
# which the units of a commit share), and a session's rows follow one another in
# history_at, so a message's lines and decision touch one page of the index. A row's lines
# have the seqs seq .. seq + lines - 1; a row without lines takes the seq of the next line
# to come, and ``n`` orders the rows that share a seq. ``transcript`` and ``decisions``
# are JSON arrays (NULL: none). No foreign key: every statement that appends names a session
# it has just read, written or checked in the same transaction (schema 9).
HISTORY = """
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    n INTEGER NOT NULL,
    lines INTEGER NOT NULL,
    transcript TEXT,
    decisions TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS history_at ON history(session_id, seq, n);
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
    idle_at INTEGER NOT NULL,
    data TEXT NOT NULL,
    leg_count INTEGER NOT NULL DEFAULT -1,
    open_leg TEXT,
    claims TEXT NOT NULL DEFAULT '',
    updated_at INTEGER NOT NULL DEFAULT 0
);
-- At most one active session per channel conversation: find_or_create relies on it.
CREATE UNIQUE INDEX IF NOT EXISTS sessions_active_channel
    ON sessions(channel, channel_conversation_id) WHERE status = 'active';
CREATE INDEX IF NOT EXISTS sessions_channel
    ON sessions(channel, channel_conversation_id, created_at);
-- A save that changes no key but updated_at (most do: a message answered) moves no entry
-- of these two; their reads sort the few rows they find (schema 8).
CREATE INDEX IF NOT EXISTS sessions_user ON sessions(user_id);
CREATE INDEX IF NOT EXISTS sessions_status ON sessions(status, current_provider);
-- Expiry reads a page of the longest idle active sessions at a time, and listings by status
-- the newest. updated_at is the time of the last save (0 in rows not saved since schema 9,
-- whose idle_at holds it); idle_at the time of the save that last moved the session in this
-- index: a save moves it only when idle_at is a minute (IDLE_STEP_US) or more older than the
-- save, so that the saves of a conversation under way (each message's) move no entry of it.
-- The reads that order by the last save find their rows here within that minute
-- (:mod:`.sqlite_statements`, schema 9).
CREATE INDEX IF NOT EXISTS sessions_idle ON sessions(status, idle_at);
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
-- saves (a message answered) add none, and set no ``leg_count`` (UPDATE_TOUCHED), so that
-- this fires only on the saves that may have (schema 8).
DROP TRIGGER IF EXISTS sessions_legs_update;
CREATE TRIGGER sessions_legs_update AFTER UPDATE OF leg_count ON sessions
WHEN NEW.leg_count IS NOT OLD.leg_count
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
-- On a save that changed the claims or the status (schema 8: ``claims`` is their JSON).
DROP TRIGGER IF EXISTS sessions_identities_update;
CREATE TRIGGER sessions_identities_update AFTER UPDATE OF status, claims ON sessions
WHEN NEW.status IS NOT OLD.status OR NEW.claims IS NOT OLD.claims
BEGIN
    {_SYNC_IDENTITIES}
END;
{HISTORY}
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
{OUTCOMES}
PRAGMA user_version = {SCHEMA_VERSION};
COMMIT;
"""

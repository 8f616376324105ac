"""The SQLite store's schema: its tables, indexes and triggers, and the migration of older files.

Each model is stored whole as JSON in ``data``; the other columns are copies for lookups,
kept by the statements of :mod:`.sqlite_statements` (the legs and identities indexes by
triggers on ``sessions``). Times are integer microseconds since the Unix epoch (UTC, see
:mod:`.sqlite_rows`), so comparisons and ordering in SQL are exact.
"""

from __future__ import annotations

from connector.errors import ConfigError
from connector.store.sqlite_db import Database

# 2: provider inbox; 3: durable inbound; 4: identities, moved sessions; 5: sessions_idle;
# 6: the leg and identity triggers run only on saves that change legs, claims or status;
# 7: the queues and dedupe keys in WITHOUT ROWID tables keyed by id (MIGRATE_7);
# 8: no index but sessions_idle holds updated_at, no outbox_next; the number of legs, the
#    open leg and the claims in columns, so that a save that changes none of them fires no
#    trigger and recording a message parses no JSON (MIGRATE_8).
# Every statement of SCHEMA is idempotent: an older file gets what it lacks at start().
SCHEMA_VERSION = 8

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
    data TEXT NOT NULL,
    leg_count INTEGER NOT NULL DEFAULT -1,
    open_leg TEXT,
    claims TEXT NOT NULL DEFAULT ''
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

# A file of schema 7 or older: the indexes whose keys changed are dropped, and SCHEMA makes
# them anew (sessions_user and sessions_status without updated_at). The sessions' new
# columns start at values no session has (leg_count -1: not known yet), so that each one's
# next save writes them (through UPDATE_SAVED, which fires the triggers once: they rewrite
# what they index, no more).
MIGRATE_8 = """
DROP INDEX IF EXISTS sessions_user;
DROP INDEX IF EXISTS sessions_status;
DROP INDEX IF EXISTS outbox_next;
"""
# Added to a file that lacks them (ALTER TABLE is not idempotent), in MIGRATE_8's transaction.
COLUMNS_8 = {
    "leg_count": "ALTER TABLE sessions ADD COLUMN leg_count INTEGER NOT NULL DEFAULT -1;",
    "open_leg": "ALTER TABLE sessions ADD COLUMN open_leg TEXT;",
    "claims": "ALTER TABLE sessions ADD COLUMN claims TEXT NOT NULL DEFAULT '';",
}


async def migrate(db: Database, path: str) -> None:
    """Bring the file at ``path``, open on ``db``, to ``SCHEMA_VERSION`` (idempotent).

    Raises ``ConfigError`` when the file was written by a newer schema version.
    """
    [(version,)] = await db.fetchall("PRAGMA user_version")
    if version > SCHEMA_VERSION:
        raise ConfigError(
            path,
            "schema version",
            f"{version} was written by a newer midtier (this one knows"
            f" {SCHEMA_VERSION}); upgrade midtier or use another store file",
        )
    if version and await db.fetchall(NEEDS_MIGRATE_7):
        await db.run(lambda conn: conn.executescript(MIGRATE_7))
    if 0 < version < 8:
        columns = {row[1] for row in await db.fetchall("PRAGMA table_info(sessions)")}
        added = "".join(add for name, add in COLUMNS_8.items() if name not in columns)
        script = f"BEGIN;\n{added}{MIGRATE_8}COMMIT;\n"
        await db.run(lambda conn: conn.executescript(script))
    await db.run(lambda conn: conn.executescript(SCHEMA))

"""Older SQLite store files brought to the current schema at start, their data kept.

Each step runs in one transaction, and each is chosen by what the file holds (a table's
definition, a column) as well as by its version, so that a file whose migration was cut
short is taken up again at the next start. :data:`~.sqlite_schema.SCHEMA` runs last: every
statement of it is idempotent and it sets the version.
"""

from __future__ import annotations

from connector.errors import ConfigError
from connector.store.sqlite_db import Database
from connector.store.sqlite_schema import HISTORY, QUEUES, SCHEMA, SCHEMA_VERSION

# A file of schema 6 or older: its queues and dedupe keys move into the tables of schema 7,
# in one transaction, their order (seq) kept. Run before SCHEMA when NEEDS_MIGRATE_7 finds one.
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


# A file of schema 8 or older: its transcripts and route decisions move into ``history``, a
# row for each line and each decision (their seqs kept), and the two tables are dropped. A
# session's decisions come after its lines, at the seq its next line will take; their order
# among themselves is kept (what ``decisions`` reads), and so is the lines' (run in one
# transaction with HISTORY, when the file has a ``transcript`` table).
MIGRATE_9 = """
INSERT INTO history(session_id, seq, n, lines, transcript, decisions)
SELECT session_id, seq, 0, 1, '[' || data || ']', NULL FROM transcript ORDER BY session_id, seq;
INSERT INTO history(session_id, seq, n, lines, transcript, decisions)
SELECT d.session_id,
       IFNULL((SELECT MAX(t.seq) FROM transcript AS t WHERE t.session_id = d.session_id), 0) + 1,
       d.n, 0, NULL, '[' || d.data || ']'
FROM decisions AS d ORDER BY d.session_id, d.n;
DROP TABLE transcript;
DROP TABLE decisions;
"""
NEEDS_MIGRATE_9 = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'transcript'"
# A file of schema 8 or older: the sessions' updated_at becomes idle_at (sessions_idle is
# renamed with it, nothing rebuilt), and updated_at is added, 0 until a session's next save
# (the time of its last save is idle_at until then: LAST_SAVE). No row is rewritten.
IDLE_9 = """
ALTER TABLE sessions RENAME COLUMN updated_at TO idle_at;
ALTER TABLE sessions ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0;
"""


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
    if 0 < version < 9:
        columns = {row[1] for row in await db.fetchall("PRAGMA table_info(sessions)")}
        idle = IDLE_9 if "idle_at" not in columns else ""
        history = HISTORY + MIGRATE_9 if await db.fetchall(NEEDS_MIGRATE_9) else ""
        script = f"BEGIN;\n{idle}{history}COMMIT;\n"
        await db.run(lambda conn: conn.executescript(script))
    await db.run(lambda conn: conn.executescript(SCHEMA))

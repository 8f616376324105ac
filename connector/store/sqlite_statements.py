"""The SQLite store's statements, as constants: sessions, history, dedupe keys, codes, queues.

Statements that must be atomic are single statements (the connection is in autocommit
mode): the legs index is kept by triggers on ``sessions`` (:mod:`.sqlite_schema`), and
sequence numbers are computed inside the ``INSERT``. Parameters are the values
:mod:`.sqlite_rows` encodes.
"""

from __future__ import annotations

# ---------------------------------------------------------------------------- sessions

# The time of a session's last save (updated_at is 0 in rows not saved since schema 9), and
# how far before it idle_at may lag (see sessions_idle in the schema).
LAST_SAVE = "MAX(updated_at, idle_at)"
IDLE_STEP_US = 60_000_000

SELECT_ACTIVE = """
SELECT data FROM sessions
WHERE channel = ? AND channel_conversation_id = ? AND status = 'active'
"""
# What recording a user's message needs of its active session: the id and the open leg as
# (provider, id, closed_at), from columns (current_provider is NULL once the last leg is
# closed); a session not saved since schema 8 (leg_count -1) has the id read from its JSON.
SELECT_ACTIVE_LEG = """
SELECT id, current_provider,
       CASE WHEN leg_count >= 0 THEN open_leg ELSE json_extract(data, '$.legs[#-1].id') END,
       NULL
FROM sessions
WHERE channel = ? AND channel_conversation_id = ? AND status = 'active'
"""
ACTIVE_ID = """
SELECT id FROM sessions WHERE channel = ? AND channel_conversation_id = ? AND status = 'active'
"""
ACTIVE_ID_UNSEEN = f"""
{ACTIVE_ID.strip()}
  AND NOT EXISTS (SELECT 1 FROM dedupe WHERE key = ? AND expires_at > ?)
"""
# Loses quietly to a concurrent creator through the unique index on active sessions.
INSERT_NEW = """
INSERT INTO sessions(id, user_id, channel, channel_conversation_id, status, current_provider,
                     version, created_at, idle_at, data, leg_count, open_leg, claims, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT DO NOTHING
RETURNING id
"""
# A never-stored session; a clash with another active session raises IntegrityError.
INSERT_SAVED = """
INSERT INTO sessions(id, user_id, channel, channel_conversation_id, status, current_provider,
                     version, created_at, idle_at, data, leg_count, open_leg, claims, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(id) DO NOTHING
"""
# A session may move to another channel conversation (connector.continuation): the unique
# index on active sessions then refuses a move onto a conversation that has one.
UPDATE_SAVED = """
UPDATE sessions
SET user_id = ?, channel = ?, channel_conversation_id = ?, status = ?, current_provider = ?,
    version = ?, idle_at = ?, data = ?, leg_count = ?, open_leg = ?, claims = ?, updated_at = ?
WHERE id = ? AND version = ?
"""
# Most saves (a message answered) change none of the indexed keys, nor the legs or the
# claims: writing only what changed spares SQLite the indexes and the triggers on legs and
# claims (SQLite rewrites the entries of every index whose column a SET names, changed or
# not). UPDATE_TOUCHED, for a save within a minute of the one that set idle_at, writes no
# index at all; UPDATE_MOVED moves the session in sessions_idle; UPDATE_SAVED, when neither
# matches a row, writes everything (a key changed, or the version is stale: then it matches
# none either). The open leg changes only with the number of legs or with current_provider
# (legs are appended, and closed once), so open_leg is not compared.
_UNCHANGED = """
WHERE id = ? AND version = ? AND user_id = ? AND channel = ? AND channel_conversation_id = ?
  AND status = ? AND current_provider IS ? AND leg_count = ? AND claims = ?
"""
UPDATE_TOUCHED = f"""
UPDATE sessions SET version = ?, updated_at = ?, data = ? {_UNCHANGED}
  AND idle_at > ? AND idle_at <= ?
"""
UPDATE_MOVED = (
    f"UPDATE sessions SET version = ?, updated_at = ?, data = ?, idle_at = ? {_UNCHANGED}"
)
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
WHERE i.identity = ? AND s.status = 'active' ORDER BY MAX(s.updated_at, s.idle_at) DESC
"""
SELECT_BY_USER = f"SELECT data FROM sessions WHERE user_id = ? ORDER BY {LAST_SAVE} DESC"
# The active sessions last saved before a time, longest idle first, a page at a time (so that
# no read holds every session in memory; params from ``sqlite_rows.idle_params``). idle_at is
# at most IDLE_STEP_US before the last save: of the first ``page`` such sessions in idle_at
# order, none was saved later than the latest idle_at among them plus that step, so the
# longest idle ``page`` are among the rows below that bound.
_IDLE = f"""
FROM sessions
WHERE status = 'active'
  AND idle_at < MIN(?, {IDLE_STEP_US} + (
      SELECT MAX(idle_at) FROM (
          SELECT idle_at FROM sessions
          WHERE status = 'active' AND idle_at < ? AND {LAST_SAVE} < ?
          ORDER BY idle_at LIMIT ?)))
  AND {LAST_SAVE} < ?
ORDER BY {LAST_SAVE} LIMIT ?
"""
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
_LIST = f"SELECT data FROM sessions {{}} ORDER BY {LAST_SAVE} DESC LIMIT ?"
LIST_ALL = _LIST.format("")
LIST_BY_PROVIDER = _LIST.format("WHERE current_provider = ?")
# The newest sessions of a status, params from ``sqlite_rows.list_params``: among the rows
# whose idle_at is at most IDLE_STEP_US older than the limit-th newest idle_at of the status
# (each of those was saved at that time or later).
LIST_BY_STATUS = f"""
SELECT data FROM sessions
WHERE status = ? AND idle_at >= IFNULL((
    SELECT idle_at FROM sessions WHERE status = ? ORDER BY idle_at DESC LIMIT 1 OFFSET ?
  ), 0) - {IDLE_STEP_US}
ORDER BY {LAST_SAVE} DESC LIMIT ?
"""
# Searched in sessions_status and sorted.
LIST_BY_STATUS_PROVIDER = (
    "SELECT data FROM sessions WHERE status = ? AND current_provider = ?"
    f" ORDER BY {LAST_SAVE} DESC LIMIT ?"
)

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
    "list_sessions(status)": (LIST_BY_STATUS, "sessions_idle"),
    "open_leg_counts": (OPEN_LEG_COUNTS, "sessions_status"),
    "open_conversations": (OPEN_CONVERSATIONS, "sessions_status"),
    "list_sessions(status, provider)": (LIST_BY_STATUS_PROVIDER, "sessions_status"),
}

# ---------------------------------------------------------------------------- history

# A row of a session's history at the place after its last row (schema 9: HISTORY), from
# (session id, lines, transcript, decisions): its first line takes the seq after the last
# row's lines; a row after one without lines shares its seq, one ``n`` further.
_AFTER_LAST = """
SELECT ?1, IFNULL(last.seq + last.lines, 1), IIF(last.lines = 0, last.n + 1, 0), ?2, ?3, ?4
FROM (SELECT 1) LEFT JOIN (
    SELECT seq, n, lines FROM history WHERE session_id = ?1 ORDER BY seq DESC, n DESC LIMIT 1
) AS last
"""
_INSERT_HISTORY = "INSERT INTO history(session_id, seq, n, lines, transcript, decisions)"
# For a session written or read in the same transaction (a unit of work, a recorded message).
# The same row as _AFTER_LAST, from VALUES: an INSERT ... SELECT that reads its own table
# makes SQLite copy the SELECT's rows into a temporary table first (and the LEFT JOIN's
# subquery into another), about 1.5% of a web chat message's instructions for two B-trees
# opened and closed; scalar subqueries in VALUES need neither (two probes of history_at).
_LAST = "FROM history WHERE session_id = ?1 ORDER BY seq DESC, n DESC LIMIT 1"
APPEND_HISTORY = f"""
{_INSERT_HISTORY}
VALUES (?1, IFNULL((SELECT seq + lines {_LAST}), 1),
        IFNULL((SELECT IIF(lines = 0, n + 1, 0) {_LAST}), 0), ?2, ?3, ?4)
"""
# For any session id: nothing is written (and no row returned) if there is no such session.
APPEND_KNOWN = f"""
{_INSERT_HISTORY} {_AFTER_LAST}
WHERE EXISTS (SELECT 1 FROM sessions WHERE id = ?1)
RETURNING seq
"""
NO_SEQ_LIMIT = 1 << 62  # ``before`` when the whole transcript is wanted
_LINES = "FROM history WHERE session_id = ? AND seq < ? AND lines > 0"
SELECT_TRANSCRIPT = f"SELECT seq, transcript {_LINES} ORDER BY seq, n"
# Each row holds a line at least: the newest ``last`` rows hold the newest ``last`` lines.
SELECT_TRANSCRIPT_LAST = f"SELECT seq, lines, transcript {_LINES} ORDER BY seq DESC, n DESC LIMIT ?"
SELECT_DECISIONS = """
SELECT decisions FROM history WHERE session_id = ? AND decisions IS NOT NULL ORDER BY seq, n
"""

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

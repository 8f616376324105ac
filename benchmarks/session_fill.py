"""A SQLite store file filled with many sessions, as the store itself would have written them.

Used by ``session_map.py``. Each session is built as a :class:`MidTierSession` and written
with the store's own schema, statement and row encoding (``sqlite_schema.SCHEMA``,
``sqlite_statements.INSERT_SAVED``, ``sqlite_rows.insert_params``), so the legs and
identities tables are filled by the store's own triggers; only the transactions are bigger
than the store's (one per batch).

The mix, per channel conversation: web chat, Direct Line, Telegram or SMS; one session, or
two or three when the user came back after the earlier ones closed; one to three legs (the
FAQ bot, then the disputes bot or the agent desk, and sometimes back); most sessions closed,
the newest one of a conversation often active, a few of those idle past the expiry time;
claims verified by the platform for Telegram and SMS, with a phone identity for SMS.
"""

from __future__ import annotations

import random
import secrets
import sqlite3
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from connector.sessions import Leg, MidTierSession
from connector.store.sqlite_db import prepare_file
from connector.store.sqlite_rows import insert_params
from connector.store.sqlite_schema import SCHEMA
from connector.store.sqlite_statements import INSERT_SAVED

BATCH = 20_000  # sessions per transaction
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
CHANNELS = [("webchat", 0.60), ("directline", 0.15), ("telegram", 0.15), ("sms", 0.10)]
SESSIONS_PER_CONVERSATION = [(1, 0.80), (2, 0.15), (3, 0.05)]
ACTIVE = 0.19  # of the newest session of each conversation
IDLE = 0.02  # of active sessions: not written to for longer than the expiry time
# Fill a throwaway file as fast as SQLite goes: a crash mid-fill means filling again.
FILL_PRAGMAS = """
PRAGMA journal_mode = OFF;
PRAGMA synchronous = OFF;
PRAGMA cache_size = -1000000;
"""


@dataclass
class Mix:
    """How many sessions of each kind were written."""

    sessions: int = 0
    active: int = 0
    idle: int = 0
    legs: int = 0


def _pick(rng: random.Random, weighted: list[tuple[Any, float]]) -> Any:
    return rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


def _conversation(rng: random.Random) -> tuple[str, str, str, dict[str, Any]]:
    """(channel, channel conversation id, user id, claims) of a new conversation."""
    channel = _pick(rng, CHANNELS)
    if channel == "webchat":
        user = f"u_{secrets.token_urlsafe(20)}"
        return channel, f"wc_{secrets.token_urlsafe(20)}", user, {"sub": user, "verified": False}
    if channel == "directline":
        user = f"dl_{secrets.token_urlsafe(12)}"
        return channel, f"dlc_{secrets.token_urlsafe(20)}", user, {"sub": user, "verified": False}
    if channel == "telegram":
        chat = str(rng.randrange(10**8, 10**10))
        return channel, chat, chat, {"sub": chat, "channel": channel, "verified": True}
    phone = f"+1{rng.randrange(2 * 10**9, 10**10)}"
    claims = {"sub": phone, "channel": channel, "verified": True, "identities": [f"phone:{phone}"]}
    return channel, phone, phone, claims


def _legs(
    rng: random.Random, channel: str, conversation: str, user: str, opened: datetime
) -> list[Leg]:
    """One to three legs, each after the one before; all but the last closed by a switch."""
    shape = rng.random()
    providers = ["faq"]
    if shape > 0.70:
        providers.append("agents" if rng.random() < 0.1 else "disputes")
    if shape > 0.90:
        providers.append("faq")
    legs: list[Leg] = []
    for n, provider in enumerate(providers):
        leg = Leg(
            channel=channel,
            channel_conversation_id=conversation,
            provider=provider,
            opened_at=opened + n * timedelta(minutes=2),
            open_reason="intent" if n else "first message",
        )
        if provider == "agents":
            leg.provider_conversation_id = f"desk_{secrets.token_urlsafe(20)}"
            leg.data = {"desk": {"status": "assigned", "agent": "agent_1", "reason": "asked"}}
        else:
            leg.provider_conversation_id = f"bb_{secrets.token_urlsafe(16)}"
            leg.data = {"user_id": user}
        if legs:
            legs[-1].closed_at, legs[-1].close_reason = leg.opened_at, "switch"
        legs.append(leg)
    return legs


def sessions(count: int, seed: int, at: datetime, mix: Mix) -> Iterator[MidTierSession]:
    """``count`` sessions of the mix, newest updates at about ``at``."""
    rng = random.Random(seed)
    while mix.sessions < count:
        channel, conversation, user, claims = _conversation(rng)
        n = min(_pick(rng, SESSIONS_PER_CONVERSATION), count - mix.sessions)
        started = at - timedelta(days=rng.uniform(3, 90))
        for i in range(n):
            last = i == n - 1
            active = last and rng.random() < ACTIVE
            idle = active and rng.random() < IDLE
            if active:  # written to within the day, or (idle) one to three days ago
                updated = at - (rng.uniform(25, 72) * HOUR if idle else rng.uniform(0, 20) * HOUR)
                created = updated - rng.uniform(0, 3) * HOUR
            else:
                created = started + (at - DAY - started) * (i / n) + rng.uniform(0, 9) * HOUR
                updated = created + rng.uniform(0.1, 2) * HOUR
            legs = _legs(rng, channel, conversation, user, created)
            if not active:
                legs[-1].closed_at, legs[-1].close_reason = updated, "expired"
            mix.sessions += 1
            mix.active += active
            mix.idle += idle
            mix.legs += len(legs)
            yield MidTierSession(
                user_id=user,
                channel=channel,
                channel_conversation_id=conversation,
                status="active" if active else "closed",
                created_at=created,
                updated_at=updated,
                legs=legs,
                claims=claims,
                slots={"intent": "payments.balance"} if rng.random() < 0.3 else {},
                channel_state=(
                    {"resume_sha256": secrets.token_hex(32)} if channel == "webchat" else {}
                ),
                version=rng.randrange(2, 40),
            )


def fill(path: Path, count: int, seed: int = 8) -> Mix:
    """Write ``count`` sessions into a new store file at ``path`` (progress on stderr)."""
    if path.exists():
        raise SystemExit(f"{path} exists: remove it, or reuse it with --keep")
    prepare_file(str(path))
    conn = sqlite3.connect(path, isolation_level=None)
    mix = Mix()
    started = time.perf_counter()
    try:
        conn.executescript(FILL_PRAGMAS)
        conn.executescript(SCHEMA)
        batch: list[tuple[Any, ...]] = []
        for session in sessions(count, seed, datetime.now(UTC), mix):
            batch.append(insert_params(session))
            if len(batch) == BATCH or mix.sessions == count:
                conn.execute("BEGIN")
                conn.executemany(INSERT_SAVED, batch)
                conn.execute("COMMIT")
                batch.clear()
                rate = mix.sessions / (time.perf_counter() - started)
                eta = (count - mix.sessions) / rate
                print(
                    f"... filled {mix.sessions:,} / {count:,} sessions"
                    f" ({rate:,.0f}/s, {eta:,.0f} s to go)",
                    file=sys.stderr,
                    flush=True,
                )
        conn.execute("PRAGMA journal_mode = WAL")  # as the store keeps it
    finally:
        conn.close()
    return mix

"""Session expiry: close sessions nobody wrote to for ``session.idle_timeout_s``. The
conversation ended with its open leg's provider: that leg's outcome is ``resolved``
(:mod:`connector.outcomes`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from connector.activity import now
from connector.outcomes import record
from connector.pool import ProviderPool
from connector.records import RESOLVED
from connector.store_protocol import SessionMap
from connector.work import Turns

IDLE_PAGE = 100  # idle sessions read from the store at a time


async def _idle_ids(sessions: SessionMap, cutoff: datetime) -> AsyncIterator[str]:
    """Ids of the sessions idle since before ``cutoff``, read a page at a time.

    The caller closes each one, or finds it written to (no longer idle), so every page holds
    others; the same page twice means none of it could be closed, and ends the pass.
    """
    done: list[str] = []
    while (page := await sessions.idle_sessions(cutoff, IDLE_PAGE)) and page != done:
        for session_id in page:
            yield session_id
        done = page


async def expire_idle(
    sessions: SessionMap, turns: Turns, pool: ProviderPool, idle_timeout_s: float
) -> int:
    """Close sessions idle longer than ``idle_timeout_s`` (each in a unit of work, its open
    leg's provider told); return how many. Also purges old dedupe keys and used codes."""
    cutoff = now() - timedelta(seconds=idle_timeout_s)
    closed = 0
    async for stale_id in _idle_ids(sessions, cutoff):
        async with turns.turn(stale_id) as turn:
            session = turn.session
            if session.status != "active" or session.updated_at >= cutoff:
                turn.abandon()  # written to meanwhile: it is not idle
                continue
            leg = session.current_leg
            if leg is not None:
                leg.closed_at, leg.close_reason = now(), "expired"
                record(turn, leg, RESOLVED)
            session.status = "closed"
            await turn.commit()
            if leg is not None:
                pool.leg_closed(leg.provider)
                await pool.close(leg, "expired")
            closed += 1
    await sessions.expire(cutoff)
    return closed

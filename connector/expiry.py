"""Session expiry: close sessions nobody wrote to for ``session.idle_timeout_s``."""

from __future__ import annotations

from datetime import timedelta

from connector.activity import now
from connector.pool import ProviderPool
from connector.store_protocol import SessionMap
from connector.work import Turns


async def expire_idle(
    sessions: SessionMap, turns: Turns, pool: ProviderPool, idle_timeout_s: float
) -> int:
    """Close sessions idle longer than ``idle_timeout_s`` (each in a unit of work, its open
    leg's provider told); return how many. Also purges old dedupe keys and used codes."""
    cutoff = now() - timedelta(seconds=idle_timeout_s)
    closed = 0
    for stale in await sessions.list_sessions(status="active", limit=100_000):
        if stale.updated_at >= cutoff:
            continue
        async with turns.turn(stale.id) as turn:
            session = turn.session
            if session.status != "active" or session.updated_at >= cutoff:
                turn.abandon()  # written to meanwhile: it is not idle
                continue
            leg = session.current_leg
            if leg is not None:
                leg.closed_at, leg.close_reason = now(), "expired"
            session.status = "closed"
            await turn.commit()
            if leg is not None:
                pool.leg_closed(leg.provider)
                await pool.close(leg, "expired")
            closed += 1
    await sessions.expire(cutoff)
    return closed

"""Outcomes: how each leg ended for its provider and the intent it was opened for, and the
success rates measured from them (a route's ``min_success_rate``, ``midtier stats``).

A leg is opened for an intent: the one that routed the conversation there, kept in its data
(``Leg.opened_for``; a leg opened without one, such as a handoff a bot asked for without
naming an intent, carries on the intent of the leg before it). The unit of work that ends a
leg records its outcome with everything else it writes:

| how the leg ended | kind | success |
|---|---|---|
| the session expired with it: the conversation ended there | ``resolved`` | yes |
| an agent resolved the conversation (handed it back) | ``resolved`` | yes |
| the user went on to an intent the provider does not serve | ``moved_on`` | yes |
| the provider asked for a handoff | ``handed_off`` | no |
| the provider failed to answer | ``failed`` | no |
| the next best action escalated to a person | ``escalated`` | no |
| an agent transferred the conversation | ``transferred`` | no |

A switch the provider is not to blame for (it serves the intent, but is closed, full or
unhealthy), a conversation continued on another channel (the same provider, the leg's
intent carried over) and a session the store's own expiry pass closes (one left over by the
units of work of ``connector.expiry``) record nothing. An agent's ``disposition`` at resolve
and the user's ``rating`` in the web chat are explicit: the store keeps one outcome per leg,
and an explicit one replaces how the leg ended (:class:`~connector.records.OutcomeEntry`). The
kinds and :class:`~connector.records.Verdict` are in :mod:`connector.records`, which
providers may import.

:class:`SuccessRates` holds the store's counts over ``routing.yaml``'s ``success_rate``
window, read again every :data:`REFRESH_S` seconds, so that what other instances sharing
the store record counts as well.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from connector.activity import now
from connector.config import RoutingConfig
from connector.records import OutcomeEntry, Verdict
from connector.sessions import Leg
from connector.store_protocol import OutcomeStore
from connector.work import Turn

log = logging.getLogger("midtier.outcomes")

REFRESH_S = 30.0  # how often the counts are read again from the store
PURGE_EVERY = 120  # refreshes between purges of outcomes older than ``keep_days``


def record(turn: Turn, leg: Leg, verdict: Verdict, *, switched: bool = False) -> None:
    """Record ``verdict`` as the outcome of ``leg`` in ``turn`` (written at its commit)."""
    turn.outcome(
        OutcomeEntry(
            leg_id=leg.id,
            session_id=turn.session.id,
            provider=leg.provider,
            intent=leg.opened_for,
            kind=verdict.kind,
            success=verdict.success,
            detail=verdict.detail,
            explicit=verdict.explicit,
            switched=switched,
        )
    )


class SuccessRates:
    """Successes and outcomes per (provider, intent) over the configured window, as the
    store counted them at the last :meth:`refresh`; the router asks it for
    ``min_success_rate``."""

    def __init__(
        self,
        store: OutcomeStore,
        routing: Callable[[], RoutingConfig],
        *,
        clock: Callable[[], datetime] = now,
    ) -> None:
        self._store = store
        self._routing = routing  # read at each refresh: ``midtier reload`` may change it
        self._clock = clock
        self._counts: dict[tuple[str, str], tuple[int, int]] = {}

    def __call__(self, provider: str, intent: str) -> tuple[int, int]:
        """(successes, outcomes) of ``provider`` for ``intent`` in the window."""
        return self._counts.get((provider, intent), (0, 0))

    async def refresh(self) -> None:
        """Read the window's counts from the store."""
        window = timedelta(hours=self._routing().success_rate.window_h)
        counts = await self._store.outcome_counts(self._clock() - window)
        self._counts = {(c.provider, c.intent): (c.successes, c.total) for c in counts}

    async def purge(self) -> int:
        """Forget outcomes older than ``success_rate.keep_days``; return how many."""
        keep = timedelta(days=self._routing().success_rate.keep_days)
        return await self._store.outcomes_purge(self._clock() - keep)

    async def keep_fresh(self) -> None:
        """Refresh every :data:`REFRESH_S` seconds, purging now and then (a server task,
        started after the start-up's own ``refresh``)."""
        passes = 0
        while True:
            await asyncio.sleep(REFRESH_S)
            try:
                if passes % PURGE_EVERY == 0:
                    dropped = await self.purge()
                    if dropped:
                        log.info("forgot %d outcome(s) past success_rate.keep_days", dropped)
                await self.refresh()
            except Exception:  # the store is busy or gone: the last counts stay
                log.exception("reading outcomes failed")
            passes += 1

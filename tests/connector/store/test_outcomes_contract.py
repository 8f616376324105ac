"""The :class:`~connector.store_protocol.OutcomeStore` contract: how legs ended for their
providers, kept by the unit of work that decided it (one per leg: an explicit outcome wins,
``switched`` stays), counted per provider and intent, in time buckets, and purged. Every
backend must pass it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connector.errors import ConflictError
from connector.records import Changes, OutcomeCount, OutcomeEntry
from connector.store_protocol import OutcomeStore, SessionStore
from tests.connector.store.contract import FakeClock, with_leg

PART = OutcomeStore
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


def outcome(
    leg_id: str,
    provider: str = "faq",
    intent: str = "hours",
    *,
    kind: str = "resolved",
    success: bool = True,
    **more: object,
) -> OutcomeEntry:
    """An outcome of leg ``leg_id`` (``more``: detail, explicit, switched, at)."""
    return OutcomeEntry.model_validate(
        {
            "leg_id": leg_id,
            "session_id": "mts_1",
            "provider": provider,
            "intent": intent,
            "kind": kind,
            "success": success,
            **more,
        }
    )


async def keep(store: SessionStore, *outcomes: OutcomeEntry) -> None:
    """Commit ``outcomes`` with a unit of work on a session of their own."""
    session = await with_leg(store, "faq", f"faq-{outcomes[0].leg_id}")
    await store.commit(
        Changes(session=session, expected_version=session.version, outcomes=list(outcomes))
    )
    closed = await store.get(session.id)
    assert closed is not None
    closed.status = "closed"  # the next call's with_leg gets a new session
    await store.save(closed)


async def test_counts_are_per_provider_and_intent(store: SessionStore, clock: FakeClock) -> None:
    await keep(
        store,
        outcome("l1"),
        outcome("l2", success=False, kind="handed_off", switched=True),
        outcome("l3", intent="refund"),
        outcome("l4", provider="agents", intent="", kind="transferred", success=False),
    )
    assert await store.outcome_counts(LONG_AGO) == [
        OutcomeCount("agents", "", 0, 1, 0),
        OutcomeCount("faq", "hours", 1, 2, 1),
        OutcomeCount("faq", "refund", 1, 1, 0),
    ]
    assert await store.outcome_counts(clock() + timedelta(seconds=1)) == []


async def test_a_leg_has_one_outcome_and_an_explicit_one_wins(store: SessionStore) -> None:
    await keep(store, outcome("l1", kind="moved_on", switched=True))
    await keep(store, outcome("l1", kind="rating", success=False, detail="down", explicit=True))
    # How the leg ended later does not replace the user's word, nor unset switched.
    await keep(store, outcome("l1", kind="resolved"))
    assert await store.outcome_counts(LONG_AGO) == [OutcomeCount("faq", "hours", 0, 1, 1)]
    # A newer explicit outcome replaces the older one.
    await keep(store, outcome("l1", kind="disposition", detail="resolved", explicit=True))
    assert await store.outcome_counts(LONG_AGO) == [OutcomeCount("faq", "hours", 1, 1, 1)]
    await keep(store, outcome("l2", kind="resolved"))
    await keep(store, outcome("l2", kind="failed", success=False, switched=True))
    assert await store.outcome_counts(LONG_AGO) == [OutcomeCount("faq", "hours", 1, 2, 2)]


async def test_a_failed_commit_keeps_no_outcome(store: SessionStore) -> None:
    session = await with_leg(store, "faq", "faq-1")
    with pytest.raises(ConflictError):
        await store.commit(
            Changes(session=session, expected_version=session.version + 5, outcomes=[outcome("l1")])
        )
    assert await store.outcome_counts(LONG_AGO) == []


async def test_counts_since_a_time_and_in_buckets(store: SessionStore, clock: FakeClock) -> None:
    day = timedelta(days=1)
    start = datetime(2026, 3, 2, tzinfo=UTC)
    await keep(store, outcome("l1", at=start + timedelta(hours=1)))
    await keep(store, outcome("l2", at=start + timedelta(hours=5), success=False))
    await keep(store, outcome("l3", at=start + day + timedelta(hours=2), switched=True))
    await keep(store, outcome("l4", at=start + 2 * day, provider="agents"))
    assert await store.outcome_counts(start, bucket_s=86_400) == [
        OutcomeCount("agents", "hours", 1, 1, 0, start + 2 * day),
        OutcomeCount("faq", "hours", 1, 2, 0, start),
        OutcomeCount("faq", "hours", 1, 1, 1, start + day),
    ]
    assert await store.outcome_counts(start + timedelta(hours=2)) == [
        OutcomeCount("agents", "hours", 1, 1, 0),
        OutcomeCount("faq", "hours", 1, 2, 1),
    ]


async def test_purge_forgets_older_outcomes(store: SessionStore) -> None:
    start = datetime(2026, 3, 2, tzinfo=UTC)
    await keep(store, outcome("l1", at=start), outcome("l2", at=start + timedelta(days=3)))
    assert await store.outcomes_purge(start + timedelta(days=1)) == 1
    assert await store.outcome_counts(LONG_AGO) == [OutcomeCount("faq", "hours", 1, 1, 0)]
    assert await store.outcomes_purge(start + timedelta(days=1)) == 0

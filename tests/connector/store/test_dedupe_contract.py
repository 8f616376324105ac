"""The :class:`~connector.store_protocol.Dedupe` contract: keys remembered for their time to
live, to drop repeats. Every backend must pass it."""

from __future__ import annotations

import asyncio

from connector.store_protocol import Dedupe
from tests.connector.store.contract import FakeClock

PART = Dedupe


async def test_seen_reports_a_key_until_its_ttl_passes(store: Dedupe, clock: FakeClock) -> None:
    assert await store.seen("in:webchat:m1", 60) is False
    assert await store.seen("in:webchat:m1", 60) is True
    assert await store.seen("in:webchat:m2", 60) is False
    clock.advance(59)
    assert await store.seen("in:webchat:m1", 60) is True
    clock.advance(1)
    assert await store.seen("in:webchat:m1", 60) is False  # expired: recorded afresh
    assert await store.seen("in:webchat:m1", 60) is True


async def test_seen_concurrent_calls_report_new_once(store: Dedupe) -> None:
    results = await asyncio.gather(*(store.seen("k", 60) for _ in range(10)))
    assert results.count(False) == 1

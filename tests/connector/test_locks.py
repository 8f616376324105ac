"""Per-session ordering: one at a time in arrival order; other sessions run meanwhile."""

from __future__ import annotations

import asyncio

import pytest

from connector.locks import LocalLocks


async def test_same_session_is_served_in_arrival_order() -> None:
    locks = LocalLocks()
    order: list[int] = []
    release = asyncio.Event()

    async def first() -> None:
        async with locks.hold("s1"):
            await release.wait()
            order.append(0)

    async def later(n: int) -> None:
        async with locks.hold("s1"):
            order.append(n)

    tasks = [asyncio.create_task(first())]
    await asyncio.sleep(0)  # let the first task take the lock
    tasks += [asyncio.create_task(later(n)) for n in range(1, 6)]
    await asyncio.sleep(0)
    assert order == []  # everyone waits behind the holder
    release.set()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4, 5]
    assert len(locks) == 0  # idle sessions leave nothing behind


async def test_other_sessions_are_not_blocked() -> None:
    locks = LocalLocks()
    release = asyncio.Event()
    other_ran = asyncio.Event()

    async def blocker() -> None:
        async with locks.hold("s1"):
            await release.wait()

    async def other() -> None:
        async with locks.hold("s2"):
            other_ran.set()

    held = asyncio.create_task(blocker())
    await asyncio.sleep(0)
    await asyncio.wait_for(other(), timeout=1)
    assert other_ran.is_set() and locks.held("s1") and not locks.held("s2")
    release.set()
    await held


async def test_lock_is_released_when_the_holder_fails() -> None:
    locks = LocalLocks()

    async def failing() -> None:
        async with locks.hold("s1"):
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await failing()
    async with asyncio.timeout(1), locks.hold("s1"):
        assert locks.held("s1")
    assert not locks.held("s1")


async def test_a_waiter_cancelled_before_its_turn_leaves_nothing_behind() -> None:
    locks = LocalLocks()
    release = asyncio.Event()

    async def holder() -> None:
        async with locks.hold("s1"):
            await release.wait()

    async def waiter() -> None:
        async with locks.hold("s1"):
            raise AssertionError("a cancelled waiter never holds the lock")

    held = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiting = asyncio.create_task(waiter())
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    release.set()
    await held
    assert len(locks) == 0


async def test_a_waiter_cancelled_after_its_turn_came_passes_the_lock_on() -> None:
    locks = LocalLocks()
    held = locks.hold("s1")
    await held.__aenter__()
    got: list[int] = []

    async def waiter(n: int) -> None:
        async with locks.hold("s1"):
            got.append(n)

    first, second = asyncio.create_task(waiter(1)), asyncio.create_task(waiter(2))
    await asyncio.sleep(0)  # both wait behind the holder
    await held.__aexit__(None, None, None)  # the first one's turn comes...
    first.cancel()  # ...but it is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.wait_for(second, timeout=1)
    assert got == [2] and len(locks) == 0


async def test_a_key_freed_while_a_cancelled_waiter_still_counts_is_taken_at_once() -> None:
    locks = LocalLocks()
    held = locks.hold("s1")
    await held.__aenter__()
    waiting = asyncio.create_task(locks.hold("s1").__aenter__())
    await asyncio.sleep(0)
    waiting.cancel()  # it counts until it runs its handler
    await held.__aexit__(None, None, None)
    async with asyncio.timeout(1), locks.hold("s1"):
        assert locks.held("s1")
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert len(locks) == 0

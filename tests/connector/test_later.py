"""Calls a fixed delay after they were asked for, on one timer: in order, each after its
own delay, never once withdrawn."""

from __future__ import annotations

import asyncio

import pytest

from connector.later import Deadline, Later

EARLY_S = 0.001  # the loop may run a timer this much before its time


async def test_calls_run_in_order_and_withdrawing_the_first_holds_back_none_after_it() -> None:
    later = Later(0.02)
    ran: list[str] = []
    done = asyncio.Event()
    first = later.start(lambda: ran.append("first"))
    later.start(lambda: ran.append("second"))
    later.stop(first)  # the timer was set for it: the second must still come
    later.start(lambda: (ran.append("third"), done.set()))
    await asyncio.wait_for(done.wait(), 5)
    assert ran == ["second", "third"]


async def test_a_call_asked_for_later_waits_its_own_full_delay() -> None:
    loop = asyncio.get_running_loop()
    later = Later(0.05)
    times: dict[str, float] = {}
    done = asyncio.Event()

    def second() -> None:
        times["second"] = loop.time()
        done.set()

    def first() -> None:
        times["first"] = loop.time()
        later.start(second)  # asked for while the first runs

    started = loop.time()
    later.start(first)
    await asyncio.wait_for(done.wait(), 5)
    assert times["first"] - started >= 0.05 - EARLY_S
    assert times["second"] - times["first"] >= 0.05 - EARLY_S


async def test_a_call_withdrawn_before_its_time_does_not_run() -> None:
    later = Later(0.01)
    ran: list[str] = []
    done = asyncio.Event()
    later.stop(later.start(lambda: ran.append("withdrawn")))
    later.start(done.set)  # asked for after it: runs after its time
    await asyncio.wait_for(done.wait(), 5)
    later.stop(12345)  # unknown: ignored
    assert ran == []


async def test_a_block_past_its_deadline_is_stopped_with_a_timeout_error() -> None:
    later = Later(0.02)
    reached = False
    with pytest.raises(TimeoutError):
        async with Deadline(later):
            await asyncio.sleep(5)
            reached = True
    assert not reached
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0  # our own cancel was taken back


async def test_a_block_within_its_deadline_runs_to_its_end_and_is_not_cancelled_later() -> None:
    later = Later(0.02)
    async with Deadline(later):
        await asyncio.sleep(0)
    await asyncio.sleep(0.05)  # past the deadline: nothing cancels the task now
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


async def test_a_cancel_from_outside_stays_a_cancel_inside_a_deadline() -> None:
    later = Later(5.0)
    started = asyncio.Event()

    async def block() -> None:
        async with Deadline(later):
            started.set()
            await asyncio.sleep(5)

    task = asyncio.create_task(block())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_an_error_inside_a_deadline_passes_through_unchanged() -> None:
    later = Later(5.0)
    with pytest.raises(KeyError):
        async with Deadline(later):
            raise KeyError("x")

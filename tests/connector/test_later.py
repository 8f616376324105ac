"""Calls a fixed delay after they were asked for, on one timer: in order, each after its
own delay, never once withdrawn."""

from __future__ import annotations

import asyncio

from connector.later import Later

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

"""A reply goes out once, also when a pass over the store meets it on its way.

A unit of work commits its replies and hands them to the outbox a moment later; a pass
that reads the store in between (a retry pass, a reconnecting client's flush) finds them
there. Each reply must still reach the channel once.
"""

from __future__ import annotations

import asyncio

from tests.connector.test_outbox import World


async def test_a_flush_that_sends_a_reply_before_it_is_handed_over_sends_it_once() -> None:
    w = World()
    gate = w.chat.hang["c1"] = asyncio.Event()
    entry = await w.commit("hello")  # committed; its unit of work has not handed it over yet
    flushing = asyncio.create_task(w.outbox.flush("chat", "c1"))
    await w.chat.trying.wait()  # the flush read it from the store and is sending it
    await w.outbox.dispatch([entry])  # the unit of work resumes and hands it over
    gate.set()
    assert await flushing == 1
    await w.outbox.idle()
    assert w.chat.taken == ["hello"]
    assert await w.pending() == []


async def test_a_retry_pass_leaves_a_reply_that_is_being_sent_to_its_worker() -> None:
    w = World()
    gate = w.chat.hang["c1"] = asyncio.Event()
    await w.reply("hello")  # committed and handed over: its worker is sending it
    await w.chat.trying.wait()
    assert await w.outbox.retry_due() == 0  # due, but nothing holds it back
    gate.set()
    await w.outbox.idle()
    assert w.chat.taken == ["hello"]
    assert await w.pending() == []


async def test_a_retry_pass_that_meets_a_reply_not_yet_handed_over_leaves_it_too() -> None:
    w = World()
    entry = await w.commit("hello")  # committed, about to be handed over
    assert await w.outbox.retry_due() == 0
    await w.outbox.dispatch([entry])
    await w.outbox.idle()
    assert w.chat.taken == ["hello"]

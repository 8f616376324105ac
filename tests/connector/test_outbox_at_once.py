"""A channel that only writes to open sockets (``sends_at_once``, the web chat) gets a reply
in the task that committed it, when nothing of its conversation waits or is under way; its
entry leaves the store with the store's next commit. Anything else keeps the worker's
order."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from connector.errors import ChannelError, ChannelUnavailable
from connector.outbox import Outbox
from connector.store.sqlite import SqliteStore
from tests.connector.store.contract import outbox_entry
from tests.connector.test_outbox import Channel, World, refusing


class Sockets(Channel):
    sends_at_once = True


def world() -> World:
    w = World()
    w.channels["chat"] = Sockets("chat")
    return w


async def test_the_reply_is_sent_before_dispatch_returns_and_leaves_the_store() -> None:
    w = world()
    await w.reply("hello")
    assert w.chat.taken == ["hello"]  # no worker was needed: nothing is left to wait for
    assert not w.outbox._workers.busy(("chat", "c1"))
    assert await w.pending() == []


async def test_a_channel_that_calls_a_platform_keeps_its_worker() -> None:
    w = World()  # Channel: no sends_at_once
    await w.reply("hello")
    assert w.chat.taken == [] and w.outbox._workers.busy(("chat", "c1"))
    await w.outbox.idle()
    assert w.chat.taken == ["hello"]


async def test_behind_a_reply_waiting_for_a_retry_a_new_one_waits_its_turn() -> None:
    w = world()
    w.chat.refuse = refusing({"first": [ChannelError("HTTP 503")]})
    await w.reply("first")  # sent at once, refused: it waits for its backoff
    assert await w.pending() == ["first"]
    await w.reply("second")
    assert w.chat.tried == ["first"]  # not at once: the conversation has a backlog
    await w.retry(2.0)
    assert w.chat.taken == ["first", "second"] and await w.pending() == []


async def test_nobody_connected_parks_it_as_a_worker_would() -> None:
    w = world()
    w.chat.refuse = lambda _a: ChannelUnavailable("no open web chat")
    await w.reply("hello")
    assert await w.pending() == ["hello"]
    w.chat.refuse = lambda _a: None
    assert await w.outbox.flush("chat", "c1") == 1  # the client came back
    assert w.chat.taken == ["hello"] and await w.pending() == []


async def test_while_a_flush_sends_the_conversation_a_new_reply_queues_behind_it() -> None:
    w = world()
    gate = w.chat.hang["c1"] = asyncio.Event()
    await w.commit("first")  # committed while the client reconnects
    flushing = asyncio.create_task(w.outbox.flush("chat", "c1"))
    await w.chat.trying.wait()  # the flush holds the conversation, sending "first"
    await w.reply("second")  # not at once: it goes behind
    assert w.chat.tried == ["first"]
    gate.set()
    await flushing
    await w.outbox.idle()
    assert w.chat.taken == ["first", "second"] and await w.pending() == []


@pytest.mark.parametrize("synchronous", ["normal", "full"])
async def test_on_sqlite_a_read_right_after_does_not_see_it_again(
    tmp_path: Path, synchronous: str
) -> None:
    store = SqliteStore(tmp_path / "midtier.db", synchronous=synchronous)  # type: ignore[arg-type]
    await store.start()
    try:
        chat = Sockets("webchat")
        outbox = Outbox(store, {"webchat": chat})
        first = outbox_entry("o-1", "c-1", outbox._clock())
        await store.outbox_put(first)
        await outbox.dispatch([first])
        # Its removal is not committed yet; a flush (a client reconnecting) reads after it.
        assert await outbox.flush("webchat", "c-1") == 0
        assert chat.taken == ["o-1"] and await store.outbox_pending("webchat", "c-1") == []
    finally:
        await store.close()
    reopened = SqliteStore(tmp_path / "midtier.db")
    await reopened.start()
    try:  # and the removal was committed before the store closed
        assert await reopened.outbox_pending("webchat", "c-1") == []
    finally:
        await reopened.close()

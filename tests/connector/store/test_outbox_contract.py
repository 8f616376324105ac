"""The :class:`~connector.store_protocol.OutboxStore` contract: activities for users, kept in
put order per conversation until their channel accepted them. Every backend must pass it."""

from __future__ import annotations

from datetime import timedelta

from connector.store_protocol import OutboxStore
from tests.connector.store.contract import FakeClock, outbox_entry

PART = OutboxStore


async def test_outbox_pending_in_put_order_and_put_is_idempotent(
    store: OutboxStore, clock: FakeClock
) -> None:
    put = [
        outbox_entry(entry_id, "c-1", clock() - timedelta(seconds=i))
        for i, entry_id in enumerate(["o-3", "o-1", "o-2"])
    ]
    for entry in put:
        await store.outbox_put(entry)
    await store.outbox_put(outbox_entry("o-9", "c-2", clock()))
    await store.outbox_put(outbox_entry("o-1", "c-1", clock()))  # again: ignored
    pending = await store.outbox_pending("webchat", "c-1")
    assert pending == put
    assert await store.outbox_pending("slack", "c-1") == []


async def test_outbox_due_orders_by_next_attempt_then_put_order(
    store: OutboxStore, clock: FakeClock
) -> None:
    t = clock()
    await store.outbox_put(outbox_entry("late", "c-1", t + timedelta(seconds=30)))
    await store.outbox_put(outbox_entry("b", "c-1", t))
    await store.outbox_put(outbox_entry("a", "c-2", t - timedelta(seconds=5)))
    await store.outbox_put(outbox_entry("c", "c-1", t))
    assert [e.id for e in await store.outbox_due(t)] == ["a", "b", "c"]
    assert [e.id for e in await store.outbox_due(t, limit=2)] == ["a", "b"]
    assert [e.id for e in await store.outbox_due(t + timedelta(minutes=1))] == [
        "a",
        "b",
        "c",
        "late",
    ]


async def test_outbox_retry_counts_attempt_and_reschedules(
    store: OutboxStore, clock: FakeClock
) -> None:
    t = clock()
    await store.outbox_put(outbox_entry("o-1", "c-1", t))
    await store.outbox_put(outbox_entry("o-2", "c-1", t))
    later = t + timedelta(seconds=10)
    await store.outbox_retry("o-1", later, "503 from platform")
    await store.outbox_retry("o-unknown", later, "ignored")
    assert [e.id for e in await store.outbox_due(t)] == ["o-2"]
    assert [e.id for e in await store.outbox_due(later)] == ["o-2", "o-1"]
    retried = (await store.outbox_pending("webchat", "c-1"))[0]
    assert (retried.id, retried.attempts, retried.last_error) == ("o-1", 1, "503 from platform")
    assert retried.next_attempt_at == later
    await store.outbox_retry("o-1", later, "again")
    again = (await store.outbox_pending("webchat", "c-1"))[0]
    assert (again.attempts, again.last_error) == (2, "again")


async def test_outbox_heads_are_each_conversations_oldest_entry_when_it_is_due(
    store: OutboxStore, clock: FakeClock
) -> None:
    t = clock()
    await store.outbox_put(outbox_entry("c1-head", "c-1", t))
    await store.outbox_put(outbox_entry("c1-next", "c-1", t - timedelta(seconds=9)))
    await store.outbox_put(outbox_entry("c2-head", "c-2", t - timedelta(seconds=5)))
    await store.outbox_put(outbox_entry("c3-head", "c-3", t + timedelta(seconds=30)))
    await store.outbox_put(outbox_entry("c3-next", "c-3", t))
    # An entry behind another is never a head, however early it is due.
    assert [e.id for e in await store.outbox_heads(t)] == ["c2-head", "c1-head"]
    assert [e.id for e in await store.outbox_heads(t, limit=1)] == ["c2-head"]
    later = t + timedelta(minutes=1)
    assert [e.id for e in await store.outbox_heads(later)] == ["c2-head", "c1-head", "c3-head"]
    await store.outbox_done("c1-head")
    await store.outbox_retry("c2-head", t + timedelta(seconds=10), "503")
    assert [e.id for e in await store.outbox_heads(t)] == ["c1-next"]
    heads = await store.outbox_heads(later)
    assert [e.id for e in heads] == ["c1-next", "c2-head", "c3-head"]
    assert (heads[1].attempts, heads[1].last_error) == (1, "503")


async def test_the_same_conversation_id_on_two_channels_is_two_queues(
    store: OutboxStore, clock: FakeClock
) -> None:
    t = clock()
    await store.outbox_put(outbox_entry("web-1", "c-1", t))
    await store.outbox_put(
        outbox_entry("slack-1", "c-1", t).model_copy(update={"channel": "slack"})
    )
    await store.outbox_put(outbox_entry("web-2", "c-1", t))
    assert [e.id for e in await store.outbox_heads(t)] == ["web-1", "slack-1"]
    assert [e.id for e in await store.outbox_pending("slack", "c-1")] == ["slack-1"]
    assert [e.id for e in await store.outbox_pending("webchat", "c-1")] == ["web-1", "web-2"]


async def test_outbox_done_removes_the_entry(store: OutboxStore, clock: FakeClock) -> None:
    await store.outbox_put(outbox_entry("o-1", "c-1", clock()))
    await store.outbox_put(outbox_entry("o-2", "c-1", clock()))
    await store.outbox_done("o-1")
    await store.outbox_done("o-unknown")
    assert [e.id for e in await store.outbox_pending("webchat", "c-1")] == ["o-2"]
    assert [e.id for e in await store.outbox_due(clock())] == ["o-2"]

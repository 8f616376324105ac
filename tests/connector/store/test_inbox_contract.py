"""The :class:`~connector.store_protocol.InboxStore` contract: provider callbacks, kept in
put order per provider conversation until the core has applied them. Every backend must
pass it."""

from __future__ import annotations

from connector.records import InboxEntry
from connector.store_protocol import InboxStore

PART = InboxStore


def entry(entry_id: str, conversation: str, provider: str = "remote") -> InboxEntry:
    """A callback of ``provider``'s ``conversation``; i-3 also hands the conversation back."""
    return InboxEntry(
        id=entry_id,
        provider=provider,
        conversation=conversation,
        activities=[{"type": "message", "text": entry_id}],
        action={"action": "hand_back", "reason": "done"} if entry_id == "i-3" else None,
    )


async def test_inbox_keeps_callbacks_in_put_order_until_done(store: InboxStore) -> None:
    for entry_id, conversation in [("i-2", "c-1"), ("i-1", "c-2"), ("i-3", "c-1")]:
        await store.inbox_put(entry(entry_id, conversation))
    await store.inbox_put(entry("i-2", "c-1"))  # again: ignored
    pending = await store.inbox_pending("remote", "c-1")
    assert [e.id for e in pending] == ["i-2", "i-3"]
    assert pending[1].action == {"action": "hand_back", "reason": "done"}
    assert pending[0].activities == [{"type": "message", "text": "i-2"}]
    assert await store.inbox_pending("other", "c-1") == []
    assert await store.inbox_keys() == [("remote", "c-1"), ("remote", "c-2")]
    await store.inbox_done("i-2")
    await store.inbox_done("nope")  # unknown ids are ignored
    assert [e.id for e in await store.inbox_pending("remote", "c-1")] == ["i-3"]
    await store.inbox_done("i-3")
    assert await store.inbox_keys() == [("remote", "c-2")]


async def test_inbox_returns_each_callback_as_it_was_put(store: InboxStore) -> None:
    kept = entry("i-3", "c-1")
    await store.inbox_put(kept)
    assert await store.inbox_pending("remote", "c-1") == [kept]


async def test_inbox_keys_are_per_provider_in_order_of_their_oldest_callback(
    store: InboxStore,
) -> None:
    await store.inbox_put(entry("i-1", "c-1", provider="desk"))
    await store.inbox_put(entry("i-2", "c-1"))
    await store.inbox_put(entry("i-3", "c-1", provider="desk"))
    assert await store.inbox_keys() == [("desk", "c-1"), ("remote", "c-1")]
    assert [e.id for e in await store.inbox_pending("desk", "c-1")] == ["i-1", "i-3"]
    await store.inbox_done("i-1")  # desk's oldest callback now comes after remote's
    assert await store.inbox_keys() == [("remote", "c-1"), ("desk", "c-1")]

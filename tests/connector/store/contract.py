"""What the contract suites share: the backends they run against, a clock that stands still
until a test moves it, and builders for the records the tests store.

Each contract module (``test_*_contract.py``) checks one part of the store and names it in
``PART``; ``test_contract_coverage.py`` keeps the parts, the backends and the suites in step.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from support.clock import FakeClock

from connector.records import InboundEntry, OutboxEntry
from connector.sessions import Leg, MidTierSession, new_id
from connector.store import MemoryStore, SqliteStore
from connector.store_protocol import SessionMap, SessionStore

Backend = Callable[[Path, FakeClock], SessionStore]
"""Builds an unstarted store keeping its data under a test's temporary directory."""

BACKENDS: dict[str, Backend] = {
    "memory": lambda _tmp, clock: MemoryStore(clock=clock),
    "sqlite": lambda tmp, clock: SqliteStore(tmp / "data" / "midtier.db", clock=clock),
}
"""Every backend, by the id its tests carry: every contract test runs once per entry."""


def leg(provider: str, conversation: str, channel_conversation: str = "c-1") -> Leg:
    """An open leg of webchat ``channel_conversation`` with ``provider``'s ``conversation``."""
    return Leg(
        channel="webchat",
        channel_conversation_id=channel_conversation,
        provider=provider,
        provider_conversation_id=conversation,
    )


async def with_leg(store: SessionMap, provider: str, conversation: str) -> MidTierSession:
    """A new session on webchat conversation c-1 with one open leg, saved."""
    session, _ = await store.find_or_create("webchat", "c-1", "u-1")
    session.legs.append(leg(provider, conversation))
    return await store.save(session)


def outbox_entry(entry_id: str, conversation: str, at: datetime) -> OutboxEntry:
    """An outbox entry for webchat ``conversation``, first due at ``at``."""
    return OutboxEntry(
        id=entry_id,
        session_id="mts_x",
        channel="webchat",
        conversation_id=conversation,
        activity={"type": "message", "text": entry_id},
        next_attempt_at=at,
    )


def arrival(
    text: str, ref: str | None = None, conversation: str = "c-1", **fields: object
) -> InboundEntry:
    """A user's webchat message; with a ``ref`` it carries a dedupe key made of it."""
    return InboundEntry(
        id=new_id("in"),
        channel="webchat",
        conversation=conversation,
        user_id="u-1",
        activity={"type": "message", "text": text},
        ref=ref,
        dedupe_key=f"in:webchat:{conversation}:{ref}" if ref else None,
        **fields,
    )

"""The :class:`~connector.store_protocol.Commits` contract: what handling one event wrote,
applied in one transaction, or (on a stale ``expected_version``) not at all. Every backend
must pass it.

A unit of work writes into every other part (the session, its history, the outbox, and the
inbound and inbox entries it processed), so these tests read it back through them."""

from __future__ import annotations

import pytest

from connector.errors import ConflictError
from connector.records import Changes, OutboxEntry
from connector.routing.decision import RouteDecision
from connector.sessions import TranscriptEntry
from connector.store_protocol import Commits, SessionStore
from tests.connector.store.contract import arrival, leg

PART = Commits


async def test_commit_applies_a_whole_unit_of_work(store: SessionStore) -> None:
    recorded = await store.inbound_put(arrival("hi", "m1"), ttl_seconds=60)
    assert recorded is not None
    session = await store.get(recorded.session_id)
    assert session is not None
    session.legs.append(leg("faq", "faq-1"))
    out = OutboxEntry(
        id="o1", session_id=session.id, channel="webchat", conversation_id="c-1", activity={}
    )
    saved = await store.commit(
        Changes(
            session=session,
            expected_version=session.version,
            transcript=[TranscriptEntry(speaker="bot", text="hello")],
            decisions=[RouteDecision(action="open", provider="faq", message_id=recorded.id)],
            outbox=[out],
            inbound_done=[recorded.id],
        )
    )
    assert saved.version == session.version + 1 and saved.current_provider == "faq"
    assert await store.get(session.id) == saved
    assert [e.text for e in await store.transcript(session.id)] == ["hi", "hello"]
    assert [d.message_id for d in await store.decisions(session.id)] == [recorded.id]
    assert [e.id for e in await store.outbox_pending("webchat", "c-1")] == ["o1"]
    assert await store.inbound_pending("webchat", "c-1") == []
    assert (await store.by_provider("faq", "faq-1")) == saved


async def test_commit_on_a_stale_version_writes_nothing(store: SessionStore) -> None:
    recorded = await store.inbound_put(arrival("hi", "m1"), ttl_seconds=60)
    assert recorded is not None
    session = await store.get(recorded.session_id)
    assert session is not None
    await store.save(session)  # someone else moved it on
    with pytest.raises(ConflictError):
        await store.commit(
            Changes(
                session=session,
                expected_version=session.version,
                transcript=[TranscriptEntry(speaker="bot", text="hello")],
                inbound_done=[recorded.id],
            )
        )
    assert [e.text for e in await store.transcript(session.id)] == ["hi"]
    assert len(await store.inbound_pending("webchat", "c-1")) == 1

"""The :class:`~connector.store_protocol.History` contract: each session's transcript and
route decisions, in order. Every backend must pass it.

A session to write history for is made through the session map (``find_or_create``)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Protocol

import pytest

from connector.errors import NotFound
from connector.routing.decision import RouteDecision
from connector.sessions import TranscriptEntry
from connector.store_protocol import History, SessionMap

PART = History


class SessionHistory(SessionMap, History, Protocol):
    """History, and the session map that makes the sessions it is kept for."""


async def test_transcript_assigns_increasing_seq_and_keeps_order(store: SessionHistory) -> None:
    session, _ = await store.find_or_create("webchat", "c-1", "u-1")
    appended = [
        await store.append_transcript(session.id, TranscriptEntry(speaker="user", text=str(i)))
        for i in range(5)
    ]
    assert [e.seq for e in appended] == [1, 2, 3, 4, 5]
    entries = await store.transcript(session.id)
    assert [(e.seq, e.text) for e in entries] == [(i + 1, str(i)) for i in range(5)]
    assert [e.text for e in await store.transcript(session.id, last=2)] == ["3", "4"]
    assert len(await store.transcript(session.id, last=50)) == 5
    assert await store.transcript(session.id, last=0) == []
    assert await store.transcript("mts_unknown") == []


async def test_transcript_concurrent_appends_get_distinct_seq(store: SessionHistory) -> None:
    session, _ = await store.find_or_create("webchat", "c-1", "u-1")
    appended = await asyncio.gather(
        *(
            store.append_transcript(session.id, TranscriptEntry(speaker="bot", text=str(i)))
            for i in range(20)
        )
    )
    assert sorted(e.seq for e in appended) == list(range(1, 21))
    assert [e.seq for e in await store.transcript(session.id)] == list(range(1, 21))


async def test_transcript_is_kept_per_session(store: SessionHistory) -> None:
    a, _ = await store.find_or_create("webchat", "c-1", "u-1")
    b, _ = await store.find_or_create("webchat", "c-2", "u-2")
    await store.append_transcript(a.id, TranscriptEntry(speaker="user", text="a"))
    entry = await store.append_transcript(b.id, TranscriptEntry(speaker="user", text="b"))
    assert entry.seq == 1
    assert [e.text for e in await store.transcript(a.id)] == ["a"]


async def test_transcript_pages_go_back_from_a_seq(store: SessionHistory) -> None:
    session, _ = await store.find_or_create("webchat", "c-1", "u-1")
    for n in range(1, 8):
        await store.append_transcript(session.id, TranscriptEntry(speaker="user", text=f"t{n}"))
    newest = await store.transcript(session.id, last=3)
    assert [e.seq for e in newest] == [5, 6, 7]
    older = await store.transcript(session.id, last=3, before=newest[0].seq)
    assert [e.text for e in older] == ["t2", "t3", "t4"]
    assert [e.seq for e in await store.transcript(session.id, before=3)] == [1, 2]


async def test_a_transcript_entry_reads_back_with_every_field_it_was_given(
    store: SessionHistory,
) -> None:
    session, _ = await store.find_or_create("webchat", "c-1", "u-1")
    said = TranscriptEntry(
        at=datetime(2030, 1, 1, 12, 0, 0, 123456, tzinfo=UTC),
        speaker="bot",
        text="Your order ships today.",
        provider="faq",
        leg_id="leg_1",
        activity={"type": "message", "text": "Your order ships today.", "attachments": []},
        ref="r-1",
    )
    appended = await store.append_transcript(session.id, said)
    assert appended == said.model_copy(update={"seq": 1})
    assert await store.transcript(session.id) == [appended]


async def test_append_to_unknown_session_raises_not_found(store: History) -> None:
    with pytest.raises(NotFound):
        await store.append_transcript("mts_unknown", TranscriptEntry(speaker="user", text="x"))
    with pytest.raises(NotFound):
        await store.append_decision("mts_unknown", RouteDecision(action="stay", provider="bot"))


async def test_decisions_are_returned_in_order(store: SessionHistory) -> None:
    session, _ = await store.find_or_create("webchat", "c-1", "u-1")
    first = RouteDecision(action="open", provider="bot", intent="greet", confidence=0.9)
    second = RouteDecision(action="switch", provider="desk", previous="bot", reason="agent")
    await store.append_decision(session.id, first)
    await store.append_decision(session.id, second)
    assert await store.decisions(session.id) == [first, second]
    assert await store.decisions("mts_unknown") == []


async def test_decisions_are_kept_per_session(store: SessionHistory) -> None:
    a, _ = await store.find_or_create("webchat", "c-1", "u-1")
    b, _ = await store.find_or_create("webchat", "c-2", "u-2")
    decision = RouteDecision(action="open", provider="bot", intent="greet", confidence=0.9)
    await store.append_decision(a.id, decision)
    assert await store.decisions(a.id) == [decision]
    assert await store.decisions(b.id) == []

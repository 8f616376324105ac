"""Direct Line's streams and watermarks against a real midtier: live frames carry the
transcript ``seq``, a client that reconnects or polls after a watermark gets each activity
once, lines still waiting in the outbox reach a new stream once, keep-alives, stream tokens
and collisions."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from support.channel_world import TYPING_AT_ONCE
from support.directline import SECRET, DirectLine, Stream, bot_said, directline_midtier
from support.server import Running

from adapters.channels.directline_stream import MAX_STREAMS
from adapters.channels.directline_tokens import LEEWAY_S, STREAM_TTL_S, Tokens
from connector.activity import new_activity_id
from connector.records import OutboxEntry
from connector.sessions import TranscriptEntry


@pytest.fixture
async def run(tmp_path: Path) -> AsyncIterator[Running]:
    # Typing before every answer: the stream shows it live, without a watermark.
    async with directline_midtier(tmp_path, TYPING_AT_ONCE, keepalive_s=0.3) as running:
        yield running


@pytest.fixture
async def client(run: Running) -> AsyncIterator[DirectLine]:
    async with aiohttp.ClientSession() as http:
        dl = DirectLine(http, run)
        await dl.generate("dl_streamer")
        await dl.start()
        yield dl


async def _seqs(run: Running, conversation: str) -> dict[str, int]:
    """Transcript seq by activity id."""
    session = await run.engine.store.by_channel("directline", conversation)
    assert session is not None
    entries = await run.engine.store.transcript(session.id)
    return {e.activity["id"]: e.seq for e in entries if e.activity.get("id")}


def _frame_of(stream: Stream, activity_id: str) -> dict[str, object]:
    [frame] = [
        f for f in stream.frames if f and any(a["id"] == activity_id for a in f["activities"])
    ]
    return frame


async def test_the_stream_gets_the_echo_then_the_reply_with_their_seqs_as_watermarks(
    run: Running, client: DirectLine
) -> None:
    async with client.stream() as stream:
        sent = await client.say("hi", user="dl_streamer")
        echo = await stream.expect(lambda a: a["id"] == sent)
        assert echo["channelData"]["clientActivityID"] == "c1"
        assert echo["from"] == {"id": "dl_streamer", "role": "user"}
        reply = await stream.expect(bot_said(lambda t: "Acme Pay help assistant" in t))
        assert reply["conversation"]["id"] == client.conversation
        assert reply["recipient"]["id"] == "dl_streamer"
        seqs = await _seqs(run, client.conversation or "")
        assert _frame_of(stream, sent)["watermark"] == str(seqs[sent])
        assert _frame_of(stream, reply["id"])["watermark"] == str(seqs[reply["id"]])
        # Typing is shown live and has no place in the transcript: no watermark.
        typing = [a for a in stream.activities if a["type"] == "typing"]
        assert typing and all("watermark" not in _frame_of(stream, a["id"]) for a in typing)
        assert stream.activities.index(typing[0]) < stream.activities.index(reply)


async def test_a_reconnecting_client_gets_each_activity_exactly_once(
    run: Running, client: DirectLine
) -> None:
    async with client.stream() as first:
        await client.say("hi", user="dl_streamer")
        await first.expect(bot_said(lambda t: "Acme Pay help assistant" in t))
        watermark = first.watermark
    await client.say("what are your fees?", user="dl_streamer")
    await run.engine.inbound.idle()  # answered while no stream was open
    await run.engine.outbox.idle()  # and the answer taken by the channel
    assert await run.engine.store.outbox_pending("directline", client.conversation or "") == []
    async with client.stream(await client.reconnect(watermark)) as second:
        missed = await second.expect(bot_said(lambda t: "free" in t))
        assert [a["text"] for a in second.activities if a["from"]["role"] == "user"] == [
            "what are your fees?"
        ]
        sent = await client.say("thanks", user="dl_streamer")
        await second.expect(lambda a: a["id"] == sent)
        assert second.activities.index(missed) < second.activities.index(
            next(a for a in second.activities if a["id"] == sent)
        )
    got = Counter(a["id"] for a in first.activities + second.activities if a["type"] == "message")
    seqs = await _seqs(run, client.conversation or "")
    # Every line up to the last message, each once; nothing that is not in the transcript.
    assert {i for i, seq in seqs.items() if seq <= seqs[sent]} == set(got)
    assert set(got.values()) == {1}


async def test_a_line_still_waiting_in_the_outbox_reaches_a_new_stream_once_in_its_place(
    run: Running, client: DirectLine
) -> None:
    conversation = client.conversation or ""
    await client.say("hi", user="dl_streamer")
    await run.engine.inbound.idle()
    session = await run.engine.store.by_channel("directline", conversation)
    assert session is not None
    # Committed, not yet delivered: what a stream opening in between finds.
    late = {
        "type": "message",
        "id": new_activity_id(),
        "from": {"id": "faq", "name": "the Acme Pay assistant", "role": "bot"},
        "conversation": {"id": conversation},
        "recipient": {"id": "dl_streamer"},
        "timestamp": "2026-12-01T10:00:00Z",
        "text": "one more thing",
    }
    await run.engine.store.append_transcript(
        session.id, TranscriptEntry(speaker="bot", text=late["text"], activity=late)
    )
    entry = OutboxEntry(
        id=late["id"],
        session_id=session.id,
        channel="directline",
        conversation_id=conversation,
        activity=late,
    )
    await run.engine.store.outbox_put(entry)
    async with client.stream() as stream:
        await stream.expect(lambda a: a["id"] == late["id"])
        sent = await client.say("and?", user="dl_streamer")
        await stream.expect(lambda a: a["id"] == sent)
        # Delivered once the stream had joined (and passed it by), before the echo.
        await run.engine.outbox.settled("directline", conversation)
        pending = await run.engine.store.outbox_pending("directline", conversation)
        assert late["id"] not in {e.id for e in pending}
    ids = [a["id"] for a in stream.activities]
    assert Counter(ids)[late["id"]] == 1
    said = [a.get("text", "") for a in stream.activities if a["type"] == "message"]
    assert said[0] == "hi" and "help assistant" in said[1] and said[2] == "one more thing"


async def test_polling_after_a_watermark_gives_only_newer_lines_a_page_at_a_time(
    run: Running, client: DirectLine
) -> None:
    await client.say("hi", user="dl_streamer")
    await run.engine.inbound.idle()
    first = await client.poll()
    assert [a["channelData"].get("clientActivityID") for a in first["activities"][:1]] == ["c1"]
    assert first["watermark"] == str(max((await _seqs(run, client.conversation or "")).values()))
    session = await run.engine.store.by_channel("directline", client.conversation or "")
    assert session is not None
    for n in range(230):
        hidden = n % 10 == 0  # midtier's bookkeeping lines have no activity
        activity = (
            {}
            if hidden
            else {
                "type": "message",
                "id": f"line-{n}",
                "text": f"line {n}",
                "from": {"id": "faq"},
                "conversation": {"id": "c"},
            }
        )
        await run.engine.store.append_transcript(
            session.id, TranscriptEntry(speaker="bot", text=f"line {n}", activity=activity)
        )
    pages, watermark = [], first["watermark"]
    while True:
        page = await client.poll(watermark)
        if not page["activities"]:
            assert page["watermark"] == watermark
            break
        pages.append([a["id"] for a in page["activities"]])
        watermark = page["watermark"]
    assert [len(p) for p in pages] == [100, 100, 7]
    assert [i for page in pages for i in page] == [f"line-{n}" for n in range(230) if n % 10]


async def test_the_stream_sends_empty_keepalive_frames(client: DirectLine) -> None:
    async with client.stream() as stream:
        await stream.keepalive()


async def test_a_stream_opens_only_with_its_own_fresh_stream_token(
    run: Running, client: DirectLine
) -> None:
    assert client.stream_url is not None and client.token is not None
    url = client.stream_url.replace("ws://", "http://")
    base, _, token = url.partition("?t=")
    upgrade = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }
    tokens = Tokens("directline", [SECRET], 1800)
    other = "dlc_" + "z" * 27
    stale = tokens.stream(client.conversation or "", now=time.time() - STREAM_TTL_S - LEEWAY_S - 1)
    cases = {
        base: 401,
        f"{base}?t={client.token}": 401,  # a conversation token is not a stream token
        f"{base}?t={tokens.stream(other)}": 403,
        f"{base}?t={stale}": 401,
        f"{base}?t={token}&watermark=x": 400,
    }
    for target, status in cases.items():
        async with client.http.get(target, headers=upgrade) as response:
            assert response.status == status, target
    async with client.http.get(url) as response:  # not a WebSocket
        assert response.status == 400


async def test_a_stream_beyond_the_limit_closes_the_oldest_with_collision(
    client: DirectLine,
) -> None:
    streams = []
    for _ in range(MAX_STREAMS + 1):
        url = await client.reconnect(None)
        streams.append(await client.http.ws_connect(url))
    try:
        closed = await Stream(streams[0]).closed()
        assert closed.extra == "collision"
        sent = await client.say("hi", user="dl_streamer")
        await Stream(streams[-1]).expect(lambda a: a["id"] == sent)
    finally:
        for ws in streams:
            await ws.close()


async def test_the_secret_reads_any_conversation(run: Running, client: DirectLine) -> None:
    await client.say("hi", user="dl_streamer")
    await run.engine.inbound.idle()
    path = f"/conversations/{client.conversation}/activities"
    status, body = await client.call("GET", path, SECRET)
    assert status == 200 and body["activities"][0]["text"] == "hi"

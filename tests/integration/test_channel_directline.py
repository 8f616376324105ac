"""The bot -> agent -> bot journey through a Direct Line client, as Web Chat talks to midtier:
a token from ``tokens/generate``, messages posted over REST, replies read from the stream."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from support.directline import DirectLine, Stream, bot_said, directline_midtier
from support.journey import bot_agent_bot

USER = "dl_journey_user"


class DirectLineUser:
    """Says things by posting activities; reads what midtier sent from the stream."""

    def __init__(self, client: DirectLine, stream: Stream) -> None:
        self.client = client
        self.stream = stream

    async def say(self, text: str) -> None:
        sent = await self.client.say(text, user=USER)
        echo = await self.stream.expect(lambda a: a["id"] == sent)  # Web Chat's "sent" mark
        assert echo["channelData"]["clientActivityID"]

    async def expect(self, where: Callable[[str], bool], within: float = 15.0) -> dict[str, Any]:
        return await self.stream.expect(bot_said(where), within)


async def test_a_direct_line_client_goes_from_bot_to_agent_and_back(tmp_path: Path) -> None:
    async with (
        directline_midtier(tmp_path) as run,
        aiohttp.ClientSession() as http,
    ):
        client = DirectLine(http, run)
        await client.generate(USER)
        assert (await client.start())["conversationId"] == client.conversation
        async with client.stream() as stream:
            session = await bot_agent_bot(
                run, "directline", DirectLineUser(client, stream), verified=False
            )
        assert session.channel_conversation_id == client.conversation
        assert session.user_id == USER
        assert session.claims == {"sub": USER, "channel": "directline", "verified": False}
        # What polling shows is the transcript, the user's own messages included.
        polled = await client.poll()
        texts = [a.get("text") for a in polled["activities"] if a["type"] == "message"]
        transcript = await run.engine.store.transcript(session.id)
        assert texts == [e.text for e in transcript if e.activity.get("type") == "message"]
        assert "I've frozen your card." in texts and "thank you!" in texts

"""One conversation that every channel must carry: a bot answers, the user reports fraud and
lands on the agent desk (a real desk WebSocket), the agent answers and resolves, and the bot
takes the next question, all in one mid-tier session whose legs and transcript are checked.

A channel's end-to-end test gives :func:`bot_agent_bot` a user that can ``say`` something
through the platform and ``expect`` the reply the platform was asked to deliver.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from connector.sessions import MidTierSession
from support.server import Running, agent


class User(Protocol):
    async def say(self, text: str) -> None: ...

    async def expect(self, where: Callable[[str], bool], within: float = 15.0) -> Any: ...


async def _only_session(run: Running, channel: str) -> MidTierSession:
    sessions = [s for s in await run.engine.store.list_sessions(limit=100) if s.channel == channel]
    assert len(sessions) == 1, [s.id for s in sessions]
    return sessions[0]


async def bot_agent_bot(
    run: Running, channel: str, user: User, *, verified: bool = True
) -> MidTierSession:
    """Drive the whole journey; return the session at the end. ``verified``: whether the
    channel vouches for the user (a platform's signature) or only passes on a label."""
    await user.say("hi")
    await user.expect(lambda t: "Acme Pay help assistant" in t)
    session = await _only_session(run, channel)
    assert [leg.provider for leg in session.legs] == ["faq"]
    assert session.legs[0].channel == channel

    await user.say("someone used my card without my permission")
    await user.expect(lambda t: "passing you to" in t)  # the switch notice
    async with agent(run) as desk:
        queued = await desk.expect("queue", lambda f: bool(f["conversations"]))
        [item] = queued["conversations"]
        assert item["intent"] == "report_fraud" and item["reason"] == "reported fraud"
        assert item["user"]["claims"]["channel"] == channel
        assert item["user"]["claims"]["verified"] is verified
        await desk.send(type="accept", conversation=item["conversation"])
        await user.expect(lambda t: "Dana" in t)
        await desk.send(
            type="send", conversation=item["conversation"], text="I've frozen your card."
        )
        await user.expect(lambda t: t == "I've frozen your card.")
        await user.say("thank you!")
        await desk.expect("message", lambda f: f["text"] == "thank you!")
        await desk.send(type="resolve", conversation=item["conversation"])
        await user.expect(lambda t: t.startswith("You're back"))
        await desk.expect("closed")

    await user.say("how do I reset my password")
    await user.expect(lambda t: "Forgot password" in t)
    session = await _only_session(run, channel)
    assert [leg.provider for leg in session.legs] == ["faq", "agents", "faq"]
    assert all(leg.channel == channel for leg in session.legs)
    assert session.legs[1].close_reason == "resolved by agent Dana"
    transcript = await run.engine.store.transcript(session.id)
    said = [e.text for e in transcript if e.speaker == "user"]
    assert said == [
        "hi",
        "someone used my card without my permission",
        "thank you!",
        "how do I reset my password",
    ]
    speakers = {e.speaker for e in transcript}
    assert {"user", "bot", "agent", "system"} <= speakers
    return session

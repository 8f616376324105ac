"""A bot that answers every message with how many it has had in this conversation.

Its count and the list of what it got live in ConversationState on ``LegStorage``, so they
are committed with each reply: after a crash the bot has seen each message once. It also
appends every turn it starts to ``$MIDTIER_ECHO_TURNS`` (outside any transaction): that file
shows the turns a crash cut short and midtier ran again.
"""

from __future__ import annotations

import os
from typing import Any

from botbuilder.core import ActivityHandler, ConversationState, TurnContext

from adapters.providers.botbuilder_state import LegStorage


class CountingEchoBot(ActivityHandler):  # type: ignore[misc]
    def __init__(self) -> None:
        self.state = ConversationState(LegStorage())
        self._counter = self.state.create_property("echo")
        self._turns = os.environ.get("MIDTIER_ECHO_TURNS")

    async def on_turn(self, turn_context: TurnContext) -> None:
        await super().on_turn(turn_context)
        await self.state.save_changes(turn_context)

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        state: dict[str, Any] = await self._counter.get(turn_context, dict)
        text = turn_context.activity.text or ""
        if self._turns:
            _append(self._turns, f"{turn_context.activity.conversation.id} {text}\n")
        got = state.setdefault("got", [])
        got.append(text)
        await turn_context.send_activity(f"echo {len(got)}: {text}")


def _append(path: str, line: str) -> None:
    """One small write per turn, straight to the file (a kill right after keeps it)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)

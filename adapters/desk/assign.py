"""Which agent holds each conversation on the desk (kept in ``leg.data["desk"]``).

Taking a conversation is atomic within the process: one lock per conversation around a fresh
read of the leg and the update, so of agents accepting at the same moment only the first
finds it waiting; the others learn who has it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from connector.errors import NotFound
from connector.interfaces import ProviderHost
from connector.sessions import Leg


class Assignments:
    """Assigns desk conversations to agents, one at a time per conversation."""

    def __init__(
        self, host: ProviderHost, provider: str, read: Callable[[str], Awaitable[Leg | None]]
    ) -> None:
        self._host = host
        self._provider = provider
        self._read = read  # a fresh read of the desk's open leg of a conversation
        self._locks: dict[str, asyncio.Lock] = {}

    async def take(self, conversation: str, agent: dict[str, str]) -> tuple[bool, dict[str, Any]]:
        """Give ``conversation`` to ``agent`` (``{"id", "name"}``) if nobody holds it.

        Returns ``(True, agent)`` when it became theirs now, ``(False, holder)`` when it was
        already held (by them or by someone else). Raises NotFound when it left the desk.
        """
        async with self._locks.setdefault(conversation, asyncio.Lock()):
            leg = await self._read(conversation)
            if leg is None:
                raise NotFound("no such conversation on the desk")
            desk = leg.data.get("desk", {})
            if desk.get("status") == "assigned":
                return False, dict(desk.get("agent") or {})
            taken = {**desk, "status": "assigned", "agent": agent}
            await self._host.update_leg_data(self._provider, conversation, {"desk": taken})
            return True, agent

    def forget(self, conversation: str) -> None:
        """The conversation left the desk."""
        self._locks.pop(conversation, None)

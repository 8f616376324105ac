"""Which agent holds each conversation on the desk (kept in ``leg.data["desk"]``).

Taking a conversation is a check-and-set on the leg under the session's lock
(``ProviderHost.change_leg``), committed with the session: of agents accepting at the same
moment only the first finds it waiting; the others learn who has it.
"""

from __future__ import annotations

from typing import Any

from connector.errors import NotFound
from connector.provider_protocol import ProviderHost

Taken = tuple[bool, dict[str, Any]]


class Assignments:
    """Assigns desk conversations to agents, one at a time per conversation."""

    def __init__(self, host: ProviderHost, provider: str) -> None:
        self._host = host
        self._provider = provider

    async def take(self, conversation: str, agent: dict[str, str]) -> Taken:
        """Give ``conversation`` to ``agent`` (``{"id", "name"}``) if nobody holds it.

        Returns ``(True, agent)`` when it became theirs now, ``(False, holder)`` when it was
        already held (by them or by someone else). Raises NotFound when it left the desk.
        """

        def claim(data: dict[str, Any]) -> Taken:
            desk = data.get("desk", {})
            if desk.get("status") == "assigned":
                return False, dict(desk.get("agent") or {})
            data["desk"] = {**desk, "status": "assigned", "agent": agent}
            return True, agent

        try:
            return await self._host.change_leg(self._provider, conversation, claim)
        except NotFound as exc:  # closed or gone: the same to an agent
            raise NotFound("no such conversation on the desk") from exc

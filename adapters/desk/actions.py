"""What an agent does on the desk: accept, send, typing, resolve and transfer frames.

An agent acts only on a conversation that is open on the desk, and (but for ``accept``) only
on one they accepted. Accepting goes through :class:`~adapters.desk.assign.Assignments`, so of
agents accepting at once exactly one wins; the winner greets the user. What an agent sends
reaches the user as the provider's activity, in the agent's name. A resolve may name one of
the desk's ``dispositions``: the conversation's outcome for the desk (``midtier stats``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from adapters.desk.assign import Assignments
from adapters.desk.settings import DeskSettings
from adapters.desk.signin import AgentIdentity
from adapters.pages import send_error
from connector.activity import Activity, ActivityTypes, ChannelAccount, now, status_event
from connector.interfaces import ProviderHost
from connector.records import RESOLVED, Verdict
from connector.sessions import Leg

ACTIONS = {"accept", "send", "resolve", "transfer", "typing"}

MAX_TEXT = 4000


class Agent:
    """An agent signed in on one socket, and how they appear to the user."""

    __slots__ = ("account", "id", "name", "ws")

    def __init__(self, ws: web.WebSocketResponse, identity: AgentIdentity, provider: str) -> None:
        self.id = identity.id
        self.name = identity.name
        self.ws = ws
        # How the agent appears to the user.
        self.account = ChannelAccount(
            id=f"{provider}:{identity.id}", name=identity.name, role="bot"
        )


class AgentActions:
    """The frames agents send to the desk of provider ``name``, carried out on its legs.

    ``tickets`` (provider conversation id -> session id) is the desk's own, read as it
    changes; ``snapshot_soon`` sends the agents a fresh queue once the turn is committed.
    """

    def __init__(
        self,
        host: ProviderHost,
        name: str,
        settings: DeskSettings,
        tickets: Mapping[str, str],
        snapshot_soon: Callable[[], Awaitable[None]],
    ) -> None:
        self.name = name
        self._host = host
        self.settings = settings
        self._tickets = tickets
        self._assignments = Assignments(host, name)
        self._snapshot_soon = snapshot_soon

    async def _open_leg(self, conversation: str) -> Leg | None:
        """A fresh read of the desk's open leg of ``conversation``."""
        session_id = self._tickets.get(conversation)
        session = await self._host.store.get(session_id) if session_id else None
        if session is None or session.status != "active":
            return None
        leg = session.leg_for_provider(self.name, conversation)
        return leg if leg is not None and leg.is_open else None

    async def act(self, agent: Agent, frame: dict[str, Any]) -> None:
        """Carry out one frame of ``agent``; what is wrong with it goes back as an error frame."""
        kind, conversation = frame["type"], frame.get("conversation")
        if kind not in ACTIONS:
            await send_error(agent.ws, "malformed_frame", f"unknown frame type {kind!r}")
            return
        leg = await self._open_leg(conversation) if isinstance(conversation, str) else None
        if leg is None or not isinstance(conversation, str):
            await send_error(agent.ws, "not_found", "no such conversation on the desk")
            return
        if kind == "accept":
            await self._accept(agent, conversation)
            return
        assigned = leg.data.get("desk", {}).get("agent") or {}
        if assigned.get("id") != agent.id:
            await send_error(
                agent.ws, "not_yours", "accept the conversation first", conversation=conversation
            )
            return
        host = self._host
        if kind == "typing":
            if self.settings.agent_typing:
                typing = Activity(type=ActivityTypes.TYPING, from_=agent.account)
                await host.signal(self.name, conversation, typing)
            return
        if kind == "send":
            text = frame.get("text")
            if not isinstance(text, str) or not text.strip() or not _unicode(text):
                await send_error(agent.ws, "malformed_frame", "a message needs text")
                return
            await host.provider_activity(self.name, conversation, self._say(agent, text[:MAX_TEXT]))
        elif kind == "resolve":
            verdict = self._disposition(frame.get("disposition"))
            if verdict is None:
                known = ", ".join(self.settings.dispositions)
                await send_error(
                    agent.ws, "malformed_frame", f"disposition must be one of: {known}"
                )
                return
            reason = f"resolved by agent {agent.name}"
            if verdict.explicit:
                reason += f" ({verdict.detail})"
            await host.hand_back(self.name, conversation, reason, verdict)
        else:
            target = frame.get("target")
            if not isinstance(target, str) or target not in host.providers or target == self.name:
                await send_error(
                    agent.ws, "malformed_frame", "transfer needs a known target provider"
                )
                return
            await host.transfer(
                self.name, conversation, target, f"transferred by agent {agent.name}"
            )
        await self._snapshot_soon()

    def _disposition(self, name: object) -> Verdict | None:
        """The outcome a resolve frame's ``disposition`` gives (none named: ``resolved``;
        None: not one of the desk's)."""
        if name is None:
            return RESOLVED
        if not isinstance(name, str) or name not in self.settings.dispositions:
            return None
        success = self.settings.dispositions[name]
        return Verdict("disposition", success, detail=name, explicit=True)

    async def _accept(self, agent: Agent, conversation: str) -> None:
        """Assign ``conversation`` to ``agent`` unless someone holds it; then greet the user."""
        me = {"id": agent.id, "name": agent.name}
        got, holder = await self._assignments.take(conversation, me)
        if not got:
            if holder.get("id") != agent.id:
                who = holder.get("name") or "Another agent"
                reason = f"{who} already took this conversation"
                await send_error(agent.ws, "taken", reason, conversation=conversation)
            return
        greeting = (
            f"Hi, this is {agent.name} from the support team. I'm reading your conversation now."
        )
        await self._host.provider_activity(self.name, conversation, status_event("accepted"))
        await self._host.provider_activity(self.name, conversation, self._say(agent, greeting))
        await self._snapshot_soon()

    def _say(self, agent: Agent, text: str) -> Activity:
        return Activity(type="message", text=text, timestamp=now(), from_=agent.account)


def _unicode(text: str) -> bool:
    """Whether ``text`` can be stored and sent (a lone surrogate cannot)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


__all__ = ["ACTIONS", "MAX_TEXT", "Agent", "AgentActions"]

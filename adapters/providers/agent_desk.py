"""The live-agent desk: a provider whose answers come from people, on a page at ``/agent``.

A conversation switched here waits in a queue (with its transcript, intent, the reason for
the handoff and the customer's last message) until an agent accepts it; the agent then
chats, and either resolves it (midtier hands it back to a bot) or transfers it to another
provider. Queue state lives in the legs (``leg.data["desk"]``), so it survives a restart.

Each agent signs in as themselves over ``/agent/ws`` (see :mod:`adapters.desk.signin` and
:mod:`adapters.desk.gate`); the agent id that owns a conversation comes only from a personal
token or a signed session. Accepting is atomic: of agents accepting one conversation at once,
one wins and the others are told it was taken. Typing goes both ways without being recorded.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from aiohttp import WSCloseCode, web

from adapters.desk.assign import Assignments
from adapters.desk.cards import queue_cards
from adapters.desk.gate import sign_in
from adapters.desk.settings import DeskSettings
from adapters.desk.signin import AgentIdentity, DeskSignIn
from adapters.desk.throttle import SignInThrottle
from adapters.pages import check_origin, ended, page_handler, parse_frame, send_error
from connector.activity import (
    Activity,
    ActivityTypes,
    ChannelAccount,
    HandoffEventNames,
    now,
    status_event,
)
from connector.config import Config
from connector.context import ProviderContext
from connector.errors import AuthCodeError, MidtierError
from connector.provider_protocol import HandoffContext, ProviderHost
from connector.sessions import Leg, MidTierSession, new_id

log = logging.getLogger("midtier.agent_desk")

ACTIONS = {"accept", "send", "resolve", "transfer", "typing"}

MAX_TEXT = 4000


class DeskHost(ProviderHost, Protocol):
    """What the desk uses of the core besides the provider entry points."""

    config: Config

    def title(self, provider: str) -> str: ...


class _Agent:
    __slots__ = ("account", "id", "name", "ws")

    def __init__(self, ws: web.WebSocketResponse, identity: AgentIdentity, provider: str) -> None:
        self.id = identity.id
        self.name = identity.name
        self.ws = ws
        # How the agent appears to the user.
        self.account = ChannelAccount(
            id=f"{provider}:{identity.id}", name=identity.name, role="bot"
        )


class AgentDeskProvider:
    """Queue, assignment and chat for human agents."""

    # Its notices ("no agent is signed in") are midtier's words, not an agent's.
    speaks_for_midtier = True

    speaker = "agent"

    Settings = DeskSettings

    def __init__(self, context: ProviderContext[DeskSettings, DeskHost]) -> None:
        self.name = name = context.name
        self._host = host = context.host
        self._data_dir = context.data_dir
        self.settings = context.settings
        self.page_path = self.settings.page_path
        self.ws_path = self.settings.ws_path
        self.signin = DeskSignIn(self.settings)
        limits = self.settings.sign_in
        self.throttle = SignInThrottle(
            max_failures=limits.max_failures,
            window_s=limits.window_s,
            cooldown_s=limits.cooldown_s,
            delay_s=limits.delay_s,
        )
        self._agents: dict[web.WebSocketResponse, _Agent] = {}
        # provider conversation id -> session id, for the conversations on the desk
        self._tickets: dict[str, str] = {}
        self._assignments = Assignments(host, name)
        self._origins: list[str] = []

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self.signin.start(self._data_dir)
        self._tickets.update(await self._host.store.open_conversations(self.name))

    async def shutdown(self) -> None:
        """Server going down: close the agents' sockets (the page reconnects)."""
        for ws in list(self._agents):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")

    def mount(self, app: web.Application) -> None:
        self._origins = self._host.config.midtier.allowed_origins
        app.router.add_get(
            self.page_path, page_handler("adapters.providers", "agent.html", framable=False)
        )
        app.router.add_get(self.ws_path, self._serve_ws)

    # ------------------------------------------------------------------ Provider

    async def open(self, session: MidTierSession, leg: Leg, context: HandoffContext) -> str:
        conversation = new_id("desk")
        leg.data["desk"] = {
            "status": "waiting",
            "agent": None,
            "reason": context.reason,
            "intent": context.intent,
            "confidence": round(context.confidence, 3),
            "from_provider": context.from_provider,
            "claims": await self._redeem(context.auth_code),
        }
        self._tickets[conversation] = session.id
        return conversation

    async def deliver(self, leg: Leg, activity: Activity) -> list[Activity]:
        conversation = leg.provider_conversation_id
        if activity.type == ActivityTypes.TYPING:
            await self._broadcast(
                {"type": "typing", "conversation": conversation, "speaker": "user"}
            )
            return []
        if activity.is_message:
            frame = {
                "type": "message",
                "conversation": conversation,
                "speaker": "user",
                "text": activity.text or "",
                "at": now().isoformat(),
            }
            # Agents see what is recorded: after the core has committed this turn.
            await self._host.after_commit(lambda: self._broadcast(frame))
        await self._snapshot_soon()
        if activity.is_event(HandoffEventNames.CONTEXT) and not self._agents:
            # Said right after the switch notice, so the user is not left waiting in silence.
            return [self._no_agent_notice()]
        return []

    async def close(self, leg: Leg, reason: str) -> None:
        self._tickets.pop(leg.provider_conversation_id, None)
        frame = {"type": "closed", "conversation": leg.provider_conversation_id, "reason": reason}
        await self._host.after_commit(lambda: self._broadcast(frame))
        await self._snapshot_soon()

    async def health(self) -> bool:
        return True

    async def _redeem(self, code: str | None) -> dict[str, Any]:
        """The user's verified claims, fetched with the handoff's authorization code."""
        if not code:
            return {}
        try:
            grant = await self._host.redeem(code, self.name)
        except AuthCodeError as exc:
            log.warning("could not redeem the authorization code: %s", exc)
            return {}
        claims = grant.get("claims", {})
        return claims if isinstance(claims, dict) else {}

    def _no_agent_notice(self) -> Activity:
        # Not an agent speaking: said in midtier's own voice (see ``speaks_for_midtier``).
        return Activity(
            type=ActivityTypes.MESSAGE,
            text=self.settings.no_agent_notice,
            timestamp=now(),
            channel_data={"midtier": {"notice": True}},
        )

    # ------------------------------------------------------------------ queue views

    async def queue(self) -> list[dict[str, Any]]:
        """Every conversation on the desk, waiting ones first (see ``queue_cards``)."""
        return await queue_cards(self._host.store, self.name, self._tickets)

    async def _snapshot_soon(self) -> None:
        # Agents see what is recorded: after the core has committed this turn.
        if self._agents:
            await self._host.after_commit(self._send_snapshot)

    async def _send_snapshot(self) -> None:
        await self._broadcast({"type": "queue", "conversations": await self.queue()})

    async def _broadcast(self, frame: dict[str, Any]) -> None:
        for ws in list(self._agents):
            try:
                await ws.send_json(frame)
            except (ConnectionResetError, RuntimeError):
                self._agents.pop(ws, None)

    # ------------------------------------------------------------------ HTTP

    async def _serve_ws(self, request: web.Request) -> web.WebSocketResponse:
        check_origin(request, self._origins)
        ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=64 * 1024)
        await ws.prepare(request)
        identity = await sign_in(
            ws,
            request.remote or "unknown",
            self.signin,
            self.throttle,
            self.settings.sign_in.timeout_s,
        )
        if identity is None:
            return ws
        agent = _Agent(ws, identity, self.name)
        self._agents[ws] = agent
        try:
            await self._ready(agent, identity)
            async for msg in ws:
                if ended(msg):
                    break
                frame = parse_frame(msg)
                if frame is None:
                    await send_error(
                        ws, "malformed_frame", "frames must be JSON objects with a type"
                    )
                    continue
                try:
                    await self._act(agent, frame)
                except MidtierError as exc:
                    await send_error(ws, "not_found", str(exc))
        finally:
            self._agents.pop(ws, None)
        return ws

    async def _ready(self, agent: _Agent, identity: AgentIdentity) -> None:
        targets = [
            {"name": n, "title": self._host.title(n)}
            for n in self._host.providers
            if n != self.name
        ]
        await agent.ws.send_json(
            {
                "type": "ready",
                "agent": {"id": agent.id, "name": agent.name},
                "session": identity.session,
                "expires_at": identity.expires_at,
                "typing": self.settings.agent_typing,
                "targets": targets,
            }
        )
        await agent.ws.send_json({"type": "queue", "conversations": await self.queue()})

    async def _open_leg(self, conversation: str) -> Leg | None:
        """A fresh read of the desk's open leg of ``conversation``."""
        session_id = self._tickets.get(conversation)
        session = await self._host.store.get(session_id) if session_id else None
        if session is None or session.status != "active":
            return None
        leg = session.leg_for_provider(self.name, conversation)
        return leg if leg is not None and leg.is_open else None

    async def _act(self, agent: _Agent, frame: dict[str, Any]) -> None:
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
            await host.hand_back(self.name, conversation, f"resolved by agent {agent.name}")
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

    async def _accept(self, agent: _Agent, conversation: str) -> None:
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

    def _say(self, agent: _Agent, text: str) -> Activity:
        return Activity(type="message", text=text, timestamp=now(), from_=agent.account)


def _unicode(text: str) -> bool:
    """Whether ``text`` can be stored and sent (a lone surrogate cannot)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True

"""The live-agent desk: a provider whose answers come from people, on a page at ``/agent``.

A conversation switched here waits in a queue (with its transcript, intent, the reason for
the handoff and the customer's last message) until an agent accepts it; the agent then
chats, and either resolves it (midtier hands it back to a bot) or transfers it to another
provider. Queue state lives in the legs (``leg.data["desk"]``), so it survives a restart.

Each agent signs in as themselves over ``/agent/ws`` (see :mod:`adapters.desk.signin` and
:mod:`adapters.desk.gate`); the agent id that owns a conversation comes only from a personal
token or a signed session; what their frames do is in :mod:`adapters.desk.actions`. Accepting
is atomic: of agents accepting one conversation at once, one wins and the others are told it
was taken. Typing goes both ways without being recorded.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from aiohttp import WSCloseCode, web

from adapters.desk.actions import Agent, AgentActions
from adapters.desk.cards import queue_cards
from adapters.desk.gate import sign_in
from adapters.desk.playground import mount_playground
from adapters.desk.settings import DeskSettings
from adapters.desk.signin import AgentIdentity, DeskSignIn
from adapters.desk.throttle import SignInThrottle
from adapters.pages import check_origin, ended, page_handler, parse_frame, send_error
from connector.activity import (
    Activity,
    ActivityTypes,
    HandoffEventNames,
    now,
)
from connector.config import Config
from connector.context import ProviderContext
from connector.errors import AuthCodeError, MidtierError
from connector.provider_protocol import HandoffContext, ProviderHost
from connector.sessions import Leg, MidTierSession, new_id

log = logging.getLogger("midtier.agent_desk")


class DeskHost(ProviderHost, Protocol):
    """What the desk uses of the core besides the provider entry points."""

    config: Config

    def title(self, provider: str) -> str: ...


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
        self._agents: dict[web.WebSocketResponse, Agent] = {}
        # provider conversation id -> session id, for the conversations on the desk
        self._tickets: dict[str, str] = {}
        self._actions = AgentActions(host, name, self.settings, self._tickets, self._snapshot_soon)
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
        if self.settings.playground_path is not None:
            mount_playground(app, self.settings.playground_path, self.signin, self.throttle)

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
        agent = Agent(ws, identity, self.name)
        self._agents[ws] = agent
        try:
            await self._ready(agent, identity)
            async for msg in ws:
                if ended(msg):
                    break
                frame, problem = parse_frame(msg)
                if frame is None:
                    await send_error(ws, "malformed_frame", problem)
                    continue
                try:
                    await self._actions.act(agent, frame)
                except MidtierError as exc:
                    await send_error(ws, "not_found", str(exc))
        finally:
            self._agents.pop(ws, None)
        return ws

    async def _ready(self, agent: Agent, identity: AgentIdentity) -> None:
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
                "dispositions": [
                    {"name": n, "success": ok} for n, ok in self.settings.dispositions.items()
                ],
            }
        )
        await agent.ws.send_json({"type": "queue", "conversations": await self.queue()})

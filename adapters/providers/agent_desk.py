"""The live-agent desk: a provider whose answers come from people, on a page at ``/agent``.

A conversation switched here waits in a queue (with its transcript, intent and the reason
for the handoff) until an agent accepts it; the agent then chats, and either resolves it
(midtier hands it back to a bot) or transfers it to another provider. The page talks over
``/agent/ws``; its first frame must carry the desk token (``MIDTIER_AGENT_TOKEN``, or a
token generated at start-up and written to ``<data>/agent-token``). Queue state lives in the
legs (``leg.data["desk"]``), so it survives a restart.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import secrets
from typing import Any

from aiohttp import WSCloseCode, web

from adapters.pages import page_handler, parse_frame, send_error
from connector.activity import Activity, ChannelAccount, now
from connector.config import ProviderConfig
from connector.errors import AuthCodeError, MidtierError
from connector.handoff import status_event
from connector.interfaces import HandoffContext
from connector.logs import redactor
from connector.sessions import Leg, MidTierSession, new_id

log = logging.getLogger("midtier.agent_desk")


_AGENT_ID = re.compile(r"^agent_[A-Za-z0-9_\-]{20,40}$")


class _Agent:
    __slots__ = ("id", "name", "ws")

    def __init__(self, ws: web.WebSocketResponse, name: str, agent_id: object = None) -> None:
        # A reconnecting page sends its previous id back so it keeps its conversations.
        known = isinstance(agent_id, str) and _AGENT_ID.match(agent_id)
        self.id = agent_id if known and isinstance(agent_id, str) else new_id("agent")
        self.name = name
        self.ws = ws


class AgentDeskProvider:
    """Queue, assignment and chat for human agents."""

    speaker = "agent"

    def __init__(self, name: str, config: ProviderConfig, host: Any) -> None:
        self.name = name
        self._host = host
        settings = config.settings
        self._token = str(settings.get("token") or "")
        self.page_path = str(settings.get("page_path", "/agent"))
        self.ws_path = str(settings.get("ws_path", "/agent/ws"))
        self._agents: dict[web.WebSocketResponse, _Agent] = {}
        # provider conversation id -> session id, for the conversations on the desk
        self._tickets: dict[str, str] = {}
        self._page = b""

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if not self._token:
            self._token = secrets.token_urlsafe(24)
            path = self._host.data_dir / "agent-token"
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(self._token + "\n")
            log.info("agent desk token generated and written to %s", path)
        redactor.add(self._token)
        for session in await self._host.store.list_sessions(
            status="active", provider=self.name, limit=10_000
        ):
            leg = session.current_leg
            if leg is not None:
                self._tickets[leg.provider_conversation_id] = session.id

    async def shutdown(self) -> None:
        """Server going down: close the agents' sockets (the page reconnects)."""
        for ws in list(self._agents):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")

    def mount(self, app: web.Application, host: Any) -> None:
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
        if activity.is_message:
            frame = {
                "type": "message",
                "conversation": leg.provider_conversation_id,
                "speaker": "user",
                "text": activity.text or "",
                "at": now().isoformat(),
            }
            await self._host.after_commit(lambda: self._broadcast(frame))
        await self._snapshot_soon()
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

    # ------------------------------------------------------------------ queue views

    async def queue(self) -> list[dict[str, Any]]:
        """Every conversation on the desk, waiting ones first, with its transcript."""
        out = []
        store = self._host.store
        for conversation, session_id in list(self._tickets.items()):
            session = await store.get(session_id)
            leg = session.leg_for_provider(self.name, conversation) if session else None
            if session is None or leg is None or not leg.is_open:
                continue
            desk = leg.data.get("desk", {})
            transcript = await store.transcript(session.id, last=50)
            out.append(
                {
                    "conversation": conversation,
                    "status": desk.get("status", "waiting"),
                    "agent": desk.get("agent"),
                    "reason": desk.get("reason") or leg.open_reason,
                    "intent": desk.get("intent"),
                    "confidence": desk.get("confidence"),
                    "from_provider": desk.get("from_provider"),
                    "opened_at": leg.opened_at.isoformat(),
                    "user": {"id": session.user_id, "claims": desk.get("claims", {})},
                    "transcript": [
                        {
                            "speaker": e.speaker,
                            "text": e.text,
                            "at": e.at.isoformat(),
                            "provider": e.provider,
                        }
                        for e in transcript
                        if e.speaker != "system" or e.activity
                    ],
                }
            )
        out.sort(key=lambda c: (c["status"] != "waiting", c["opened_at"]))
        return out

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
        ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=64 * 1024)
        await ws.prepare(request)
        agent: _Agent | None = None
        try:
            async for msg in ws:
                frame = _parse(msg)
                if frame is None:
                    await _error(ws, "malformed_frame", "frames must be JSON objects with a type")
                    continue
                if agent is None:
                    agent = await self._auth(ws, frame)
                    if agent is None:
                        break
                    continue
                try:
                    await self._act(agent, frame)
                except MidtierError as exc:
                    await _error(ws, "not_found", str(exc))
        finally:
            self._agents.pop(ws, None)
        return ws

    async def _auth(self, ws: web.WebSocketResponse, frame: dict[str, Any]) -> _Agent | None:
        token = frame.get("token")
        if (
            frame.get("type") != "auth"
            or not isinstance(token, str)
            or not hmac.compare_digest(token.encode(), self._token.encode())
        ):
            log.warning("agent desk sign-in refused")
            await _error(ws, "unauthorized", "invalid or missing agent token")
            await ws.close(code=4401, message=b"unauthorized")
            return None
        info = frame.get("agent")
        info = info if isinstance(info, dict) else {}
        agent = _Agent(ws, str(info.get("name") or "Agent")[:60], info.get("id"))
        self._agents[ws] = agent
        targets = [
            {"name": n, "title": self._host.title(n)}
            for n in self._host.providers
            if n != self.name
        ]
        await ws.send_json(
            {"type": "ready", "agent": {"id": agent.id, "name": agent.name}, "targets": targets}
        )
        await ws.send_json({"type": "queue", "conversations": await self.queue()})
        return agent

    async def _act(self, agent: _Agent, frame: dict[str, Any]) -> None:
        kind, conversation = frame["type"], frame.get("conversation")
        if not isinstance(conversation, str) or conversation not in self._tickets:
            await _error(agent.ws, "not_found", "no such conversation on the desk")
            return
        host, me = self._host, {"id": agent.id, "name": agent.name}
        session = await host.store.get(self._tickets[conversation])
        leg = session.leg_for_provider(self.name, conversation) if session else None
        desk = leg.data.get("desk", {}) if leg else {}
        assigned = desk.get("agent") or {}
        if kind == "accept":
            if desk.get("status") == "assigned":
                await _error(agent.ws, "not_yours", "another agent already took this conversation")
                return
            await host.update_leg_data(
                self.name, conversation, {"desk": {**desk, "status": "assigned", "agent": me}}
            )
            await host.provider_activity(self.name, conversation, status_event("accepted"))
            await host.provider_activity(
                self.name,
                conversation,
                self._say(
                    agent,
                    f"Hi, this is {agent.name} from the support team. "
                    "I'm reading your conversation now.",
                ),
            )
        elif assigned.get("id") != agent.id:
            await _error(agent.ws, "not_yours", "accept the conversation first")
            return
        elif kind == "send":
            text = frame.get("text")
            if not isinstance(text, str) or not text.strip():
                await _error(agent.ws, "malformed_frame", "a message needs text")
                return
            await host.provider_activity(self.name, conversation, self._say(agent, text[:4000]))
        elif kind == "resolve":
            await host.hand_back(self.name, conversation, f"resolved by agent {agent.name}")
        elif kind == "transfer":
            target = frame.get("target")
            if not isinstance(target, str) or target not in host.providers or target == self.name:
                await _error(agent.ws, "malformed_frame", "transfer needs a known target provider")
                return
            await host.transfer(
                self.name, conversation, target, f"transferred by agent {agent.name}"
            )
        else:
            await _error(agent.ws, "malformed_frame", f"unknown frame type {kind!r}")
            return
        await self._snapshot_soon()

    def _say(self, agent: _Agent, text: str) -> Activity:
        return Activity(
            type="message",
            text=text,
            timestamp=now(),
            from_=ChannelAccount(id=f"{self.name}:{agent.id}", name=agent.name, role="bot"),
        )


_error = send_error
_parse = parse_frame

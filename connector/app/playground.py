"""``POST /routing/explain``: the routing playground's question to the running server.

What :func:`connector.routing.explain.explain` says about one message, answered by the
live parts rather than offline (``midtier route explain``): the classifier the server
reads messages with, the router with the providers' health, circuit breakers and open-leg
counts as they are now, and the session as the store has it. It writes nothing: no session
is created, no decision recorded, nothing is sent to a provider or a user.

Who may ask is decided by the :class:`connector.interfaces.ExplainGate` an adapter offers
(the agent desk: its tokens, and its throttle of failed sign-ins); with none, every request
is refused with 403.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from connector.app.requests import ENGINE, authorization, read_json_object
from connector.engine import Engine
from connector.errors import AuthError, Forbidden, MalformedPayload, NotFound, TooManyAttempts
from connector.interfaces import ExplainGate
from connector.routing.explain import explain, new_session
from connector.sessions import MidTierSession

EXPLAIN_PATH = "/routing/explain"
# A credential to send instead of the token from now on (the desk's signed session).
SESSION_HEADER = "X-Midtier-Agent-Session"
FIELDS = frozenset({"text", "channel", "session"})
MAX_ID_CHARS = 200  # longer than any session id midtier makes: not looked up at all
NO_GATE = (
    "the routing playground is served beside the agent desk, and no provider of kind "
    "agent_desk is configured"
)
EXPLAIN_GATE = web.AppKey("explain_gate", ExplainGate)


def offer_gate(app: web.Application, gate: ExplainGate) -> None:
    """Make ``gate`` the playground's; a second one is a clash (``RuntimeError``), which
    ``create_app`` reports with the adapter's file and key."""
    if EXPLAIN_GATE in app:
        raise RuntimeError(
            f"{EXPLAIN_PATH} is guarded by another agent desk already; "
            "set playground_path: null on all desks but one"
        )
    app[EXPLAIN_GATE] = gate


async def routing_explain(request: web.Request) -> web.Response:
    """Explain one message as the running server would route it; see the module."""
    gate = request.app.get(EXPLAIN_GATE)
    if gate is None:
        raise Forbidden(NO_GATE)
    try:
        issued = await gate.admit(_bearer(request), request.remote or "unknown")
    except AuthError as exc:
        return _refused(exc)
    engine = request.app[ENGINE]
    body = await read_json_object(request)  # size limit (413), JSON rules (400, 415)
    text, channel, session_id = _question(body, engine)
    session = await _session(engine, session_id, channel)
    intent = await engine.understanding.read(text)
    found = explain(
        engine.router, intent, session, text, stored=session_id is not None, at=datetime.now(UTC)
    )
    headers = {"Cache-Control": "no-store"}
    if issued is not None:
        headers[SESSION_HEADER] = issued
    return web.json_response(found, headers=headers)


def _bearer(request: web.Request) -> str | None:
    """The credential of ``Authorization: Bearer <credential>`` (None: none sent)."""
    value = authorization(request)  # a non-ASCII header: 401
    if value is None:
        return None
    scheme, _, credential = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        return None
    return credential.strip()


def _refused(exc: AuthError) -> web.Response:
    status = 403 if isinstance(exc, Forbidden) else 401
    headers = {"Cache-Control": "no-store"}
    body: dict[str, Any] = {"error": type(exc).__name__, "reason": str(exc)}
    if isinstance(exc, TooManyAttempts):
        headers["Retry-After"] = str(exc.retry_after)
        body["retry_after"] = exc.retry_after
    elif status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="midtier agent desk"'
    return web.json_response(body, status=status, headers=headers)


def _question(body: dict[str, Any], engine: Engine) -> tuple[str, str | None, str | None]:
    """``text``, ``channel`` and ``session`` of the body, checked (400 with a reason)."""
    unknown = sorted(k for k in body if k not in FIELDS)
    if unknown:
        names = ", ".join(repr(k[:40]) for k in unknown[:5])
        raise MalformedPayload(f"unknown field(s) {names}; expected text, channel, session")
    text = body.get("text")
    if text is None:
        raise MalformedPayload("text is missing: the message to explain")
    if not isinstance(text, str):
        raise MalformedPayload("text must be a string")
    if not text.strip():
        raise MalformedPayload("text is empty")
    limit = engine.config.midtier.limits.max_text_chars
    if len(text) > limit:
        # As a user's message over the limit is refused on the channels that can say so.
        raise MalformedPayload(f"text longer than {limit} characters")
    channel, session_id = body.get("channel"), body.get("session")
    for name, value in (("channel", channel), ("session", session_id)):
        if value is not None and not isinstance(value, str):
            raise MalformedPayload(f"{name} must be a string")
    channels = engine.config.midtier.channels
    if channel is not None and channel not in channels:
        known = ", ".join(sorted(channels)) or "none"
        raise MalformedPayload(f"no channel named {channel[:60]!r} (configured: {known})")
    return text, channel, session_id or None


async def _session(engine: Engine, session_id: str | None, channel: str | None) -> MidTierSession:
    """The stored session to explain with, or a new one (never saved) on ``channel``."""
    if session_id is None:
        channels = engine.config.midtier.channels
        default = "webchat" if "webchat" in channels or not channels else next(iter(channels))
        return new_session(channel or default)
    found = None
    if len(session_id) <= MAX_ID_CHARS:
        found = await engine.store.get(session_id)
    if found is None:
        raise NotFound(f"no session {session_id[:60]!r}")
    if channel is not None and channel != found.channel:
        raise MalformedPayload(
            f"session {found.id} is on channel {found.channel!r}, not {channel!r}; "
            "leave channel out to explain it there"
        )
    return found

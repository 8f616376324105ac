"""The webhook route every channel shares: ``/channels/{name}``.

The core, not the adapter, owns it, so that each channel is one file: the size limit (413
before the body is read whole), the method (405), verification before anything is parsed
(401/403, nothing touched), parsing (400 with a reason), recording each event with its
dedupe key before the platform is answered (so a crash after the 200 loses nothing and a
retry, even one that arrives while the first delivery is still being processed, is
recorded once), and the answer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web

from connector.activity import Activity
from connector.app.requests import ENGINE, header, match_text, read_body
from connector.channel_protocol import Acknowledges, Handshakes, WebhookChannel
from connector.channels import OK, ChannelRequest, ChannelResponse
from connector.claims import identities
from connector.engine import Engine
from connector.errors import MalformedPayload, NotFound

log = logging.getLogger("midtier.webhooks")


@dataclass(frozen=True, slots=True)
class Webhook:
    """A webhook channel with its optional steps, found once when the route is mounted."""

    adapter: WebhookChannel
    handshakes: Handshakes | None
    acknowledges: Acknowledges | None

    @classmethod
    def of(cls, adapter: WebhookChannel) -> Webhook:
        return cls(adapter, _handshakes(adapter), _acknowledges(adapter))


WEBHOOKS = web.AppKey("webhooks", dict[str, Webhook])
PUBLIC_URL = web.AppKey("public_url", str)
ALLOWED = "GET, POST"


async def channel_webhook(request: web.Request) -> web.StreamResponse:
    name = match_text(request, "name")
    hook = request.app[WEBHOOKS].get(name)
    if hook is None:
        raise NotFound(f"no webhook channel named {name!r}")
    if request.method not in ("GET", "POST"):
        return _method_not_allowed(request.method)
    incoming = ChannelRequest(
        method=request.method,
        url=request.app[PUBLIC_URL] + request.raw_path,
        path=request.path,
        headers=request.headers,
        query=request.query,
        body=await read_body(request),  # the size limit before anything else
        content_type=header(request, "Content-Type") or "",
    )
    adapter, handshakes = hook.adapter, hook.handshakes
    if request.method == "GET":
        answer = await handshakes.handshake(incoming) if handshakes is not None else None
        return _response(answer) if answer is not None else _method_not_allowed("GET")
    await adapter.verify(incoming)
    if handshakes is not None:
        answer = await handshakes.handshake(incoming)
        if answer is not None:
            return _response(answer)
    activities = await adapter.parse(incoming)
    engine = request.app[ENGINE]
    for activity in activities:
        await _record(engine, name, activity)
    if hook.acknowledges is not None:
        return _response(await hook.acknowledges.acknowledge(incoming, activities))
    return _response(OK)


# What ``isinstance`` on these runtime protocols checks (their one method), without its cost
# (7 us a call on Python 3.11).
def _handshakes(adapter: object) -> Handshakes | None:
    return cast(Handshakes, adapter) if callable(getattr(adapter, "handshake", None)) else None


def _acknowledges(adapter: object) -> Acknowledges | None:
    found = callable(getattr(adapter, "acknowledge", None))
    return cast(Acknowledges, adapter) if found else None


async def _record(engine: Engine, name: str, activity: Activity) -> None:
    address = None
    proved: list[str] = []
    if activity.channel_data and (
        "address" in activity.channel_data or "identities" in activity.channel_data
    ):
        data = dict(activity.channel_data)
        found = data.pop("address", None)
        address = found if isinstance(found, dict) else None
        proved = identities(data.pop("identities", None))
        activity = activity.model_copy(update={"channel_data": data or None})
    limit = engine.config.midtier.limits.max_text_chars
    if activity.text is not None and len(activity.text) > limit:
        # The platform took a longer message than midtier keeps: the user already sent it,
        # so it is cut (and marked) rather than refused, which would lose it.
        log.info("channel %s: a message was cut to %d characters", name, limit)
        activity = activity.model_copy(update={"text": activity.text[: limit - 1] + "…"})
    user = activity.from_.id if activity.from_ is not None else ""
    # The platform vouched for who sent it (its signature checked out), and for the
    # identities (a phone number) the adapter read from what it signed.
    claims: dict[str, Any] = {"sub": user, "channel": name, "verified": True}
    if proved:
        claims["identities"] = proved
    try:
        await engine.submit(name, activity, claims=claims, ref=activity.id, address=address)
    except MalformedPayload as exc:
        # One event midtier cannot take (an adapter left out its conversation or sender): a
        # 400 would make the platform retry the whole batch for ever, so it is left out,
        # loudly.
        log.warning(
            "channel %s: an event was refused: %s",
            name,
            exc,
            extra={"event": "refused_event", "channel": name},
        )


def _response(answer: ChannelResponse) -> web.Response:
    return web.Response(
        status=answer.status,
        body=answer.body,
        headers={"Content-Type": answer.content_type, **answer.headers},
    )


def _method_not_allowed(method: str) -> web.Response:
    return web.json_response(
        {"error": "MethodNotAllowed", "reason": f"{method} is not allowed here"},
        status=405,
        headers={"Allow": ALLOWED},
    )


def mount_webhooks(app: web.Application, channels: dict[str, Any], public_url: str) -> None:
    """The one webhook route, for every channel that takes webhooks."""
    app[WEBHOOKS] = {n: Webhook.of(c) for n, c in channels.items() if isinstance(c, WebhookChannel)}
    app[PUBLIC_URL] = public_url.rstrip("/")
    app.router.add_route("*", "/channels/{name}", channel_webhook)

"""What the web chat page and the agent desk page share: serving a packaged page with strict
headers, and the JSON-frame conventions of their WebSockets."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from aiohttp import WSMsgType, web

from connector.errors import MalformedPayload
from connector.payloads import loads


def page_handler(
    package: str, name: str, *, framable: bool
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A GET handler serving ``static/<name>`` of ``package`` (read once, at mount time)."""
    body = resources.files(package).joinpath(f"static/{name}").read_bytes()
    ancestors = "'self'" if framable else "'none'"
    headers = {
        # Inline script and style only; the socket goes back to where the page came from.
        "Content-Security-Policy": "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
        f"style-src 'unsafe-inline'; script-src 'unsafe-inline'; frame-ancestors {ancestors}",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache" if framable else "no-store",
    }

    async def serve(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="text/html", charset="utf-8", headers=headers)

    return serve


def parse_frame(msg: Any) -> dict[str, Any] | None:
    """A JSON text frame that is an object with a string ``type``; None for anything else.

    Parsed by :func:`connector.payloads.loads`: nesting is bounded and a lone surrogate in any
    string makes the whole frame malformed, so handlers only ever see text they can store,
    compare and encode.
    """
    if msg.type != WSMsgType.TEXT or not isinstance(msg.data, str):
        return None
    try:
        frame = loads(msg.data, what="frame")
    except MalformedPayload:
        return None
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        return None
    return frame


async def send_error(ws: web.WebSocketResponse, code: str, reason: str) -> None:
    """The ``{"type": "error", "code", "reason"}`` frame both pages understand."""
    await ws.send_json({"type": "error", "code": code, "reason": reason})

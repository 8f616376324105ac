"""What the web chat page and the agent desk page share: serving a packaged page with strict
headers, and the JSON-frame conventions of their WebSockets."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterable
from importlib import resources
from typing import Any

from aiohttp import WSMsgType, web

from connector.config import normalize_origin
from connector.errors import Forbidden, MalformedPayload
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


MALFORMED = "frames must be JSON objects with a type"


def parse_frame(msg: Any) -> tuple[dict[str, Any] | None, str]:
    """A JSON text frame that is an object with a string ``type``, and ``""``; or None and
    why not, for the error frame.

    Parsed by :func:`connector.payloads.loads`: nesting is bounded and a lone surrogate in any
    string makes the whole frame malformed, so handlers only ever see text they can store,
    compare and encode.
    """
    if msg.type != WSMsgType.TEXT or not isinstance(msg.data, str):
        return None, MALFORMED
    try:
        frame = loads(msg.data, what="frame")
    except MalformedPayload as exc:
        return None, f"{MALFORMED}: {exc}"
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        return None, MALFORMED
    return frame, ""


async def send_error(ws: web.WebSocketResponse, code: str, reason: str, **extra: Any) -> None:
    """The ``{"type": "error", "code", "reason", ...}`` frame both pages understand; a socket
    that is closing or went away is left alone."""
    if ws.closed:
        return
    with contextlib.suppress(ConnectionResetError, RuntimeError):
        await ws.send_json({"type": "error", "code": code, "reason": reason, **extra})


def ended(msg: Any) -> bool:
    """Whether a message from ``async for msg in ws`` says the socket failed (aiohttp has
    closed it already with 1002, 1007 or 1009): nothing more can be said on it."""
    return bool(msg.type == WSMsgType.ERROR)


def check_origin(request: web.Request, allowed: Iterable[str]) -> None:
    """Refuse a WebSocket upgrade started by a page of another site (``Forbidden``: 403).

    Browsers attach cookies and reach loopback and intranet hosts on behalf of any page they
    show, so a socket must not serve a page it did not come from. Allowed: no ``Origin``
    header (not a browser), the request's own host (the page midtier served), and the
    configured ``allowed_origins`` (normalized, or ``*``). Call it before ``ws.prepare``.
    """
    origin = request.headers.get("Origin")
    if origin is None:
        return
    wanted = normalize_origin(origin)
    if wanted is not None:
        allowed = list(allowed)
        if "*" in allowed or wanted in allowed or _same_host(wanted, request.host):
            return
    raise Forbidden("this page's origin may not open the socket (see allowed_origins)")


def _same_host(origin: str, host_header: str) -> bool:
    """Whether ``origin`` names the host (and port) the request was sent to.

    The scheme is not compared: behind a TLS-terminating proxy midtier sees ``http``
    while the page is ``https``. A Host without a port means the scheme's default port.
    """
    scheme, _, authority = origin.partition("://")
    default = "443" if scheme == "https" else "80"
    host, port = _split_host(authority.lower(), default)
    asked, asked_port = _split_host(host_header.strip().lower(), default)
    return bool(host) and (host, port) == (asked, asked_port)


def _split_host(authority: str, default_port: str) -> tuple[str, str]:
    if authority.startswith("["):  # [v6]:port
        host, _, rest = authority.partition("]")
        return host + "]", rest[1:] if rest.startswith(":") else default_port
    host, _, port = authority.partition(":")
    return host, port or default_port

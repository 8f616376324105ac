"""The page of a continuation link: ``<public url>/continue#<token>``.

``GET /continue`` (the path the core gives) is a static page; the token stays in the URL's
fragment, which browsers never send, so it reaches no access log, proxy or ``Referer``, and
the previews messaging apps fetch of a link see no code. The page posts the token to
``POST /continue`` (``{"token": "..."}``) and shows what comes back: the code, when it
expires, and for each other configured channel a deep link that opens the app with the code
typed in (``midtier.yaml: continuation.channels.<name>.link``), or its name. An unknown,
used or expired token is a 404; the answer is never cached.
"""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web

from adapters.pages import page_handler
from connector.app.requests import read_json_object


class LinkHost(Protocol):
    """What the page asks the core (``connector.continuation.Continuation``)."""

    async def describe(self, token: str) -> dict[str, Any] | None: ...


class ContinuationPage:
    """Serves the continuation link's page at ``path`` and the one call it makes."""

    def __init__(self, host: LinkHost, path: str) -> None:
        self._host = host
        self._path = path

    def mount(self, app: web.Application) -> None:
        page = page_handler("adapters.channels", "continue.html", framable=False)
        app.router.add_get(self._path, page)
        app.router.add_post(self._path, self._describe)

    async def _describe(self, request: web.Request) -> web.Response:
        body = await read_json_object(request)  # size limit, strict JSON: 413 / 400
        token = body.get("token")
        found = await self._host.describe(token) if isinstance(token, str) else None
        headers = {"Cache-Control": "no-store"}
        if found is None:
            reason = "this link is unknown, was used or has expired"
            return web.json_response(
                {"error": "unknown_link", "reason": reason}, status=404, headers=headers
            )
        return web.json_response(found, headers=headers)

"""The Bot Framework Web Chat page of a Direct Line channel (see :mod:`.directline`).

At ``page_path`` (``/directline/``): the page, Web Chat's official bundle (fetched and
checked by ``scripts/fetch-webchat.sh``, shipped as package data, never loaded from a CDN),
the page's script, and ``POST token``: a fresh ``tokens/generate`` answer for a new
anonymous user, which is what a company's own token server does, so that the page never
holds the secret.

The page is served with a Content-Security-Policy that allows scripts from midtier only
(no inline script, no eval: the bundle needs neither), and styles from midtier and those
carrying the page's nonce (Web Chat writes its styles into ``<style>`` elements, and puts
the nonce it is given on them).
"""

from __future__ import annotations

import html
import logging
import secrets
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any, Protocol

from aiohttp import web

log = logging.getLogger("midtier.directline")

BUNDLE = "static/vendor/webchat.js"
# The hash of an empty <style>: the scroll-to-bottom part of Web Chat adds one without the
# nonce and fills it through the CSSOM (which CSP leaves alone), so this admits no style text.
EMPTY_STYLE = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class TokenServer(Protocol):
    """What the page needs of its channel."""

    title: str
    base: str  # the Direct Line API's path, e.g. /v3/directline

    async def generate(self, user: str | None) -> dict[str, Any]: ...


def csp(nonce: str) -> str:
    """The page's policy: everything from midtier itself, Web Chat's styles by nonce."""
    return (
        "default-src 'none'; script-src 'self'; connect-src 'self'; "
        f"style-src 'nonce-{nonce}' '{EMPTY_STYLE}'; img-src 'self' data: blob:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
    )


def bundle_installed() -> bool:
    """Whether ``scripts/fetch-webchat.sh`` put Web Chat's bundle in place."""
    return resources.files("adapters.channels").joinpath(BUNDLE).is_file()


def _static(name: str) -> bytes:
    return resources.files("adapters.channels").joinpath(name).read_bytes()


def mount_page(app: web.Application, channel: TokenServer, path: str) -> None:
    """Add the page's routes under ``path`` (ending in ``/``)."""
    template = _static("static/directline.html").decode("utf-8")
    template = template.replace("{title}", html.escape(channel.title)).replace(
        "{directline}", html.escape(channel.base)
    )
    script = _static("static/directline.js")
    bundle_file = resources.files("adapters.channels").joinpath(BUNDLE)
    bundle = bundle_file.read_bytes() if bundle_file.is_file() else None
    if bundle is None:
        log.warning("the Direct Line page has no Web Chat bundle: run scripts/fetch-webchat.sh")

    async def page(request: web.Request) -> web.Response:
        nonce = secrets.token_urlsafe(18)
        headers = {**_HEADERS, "Content-Security-Policy": csp(nonce), "Cache-Control": "no-store"}
        body = template.replace("{nonce}", nonce)
        return web.Response(text=body, content_type="text/html", headers=headers)

    async def token(request: web.Request) -> web.Response:
        # A new anonymous user each time; "dl_" says the id is bound into the token.
        answer = await channel.generate(f"dl_{secrets.token_urlsafe(18)}")
        return web.json_response(answer, headers={**_HEADERS, "Cache-Control": "no-store"})

    app.router.add_get(path, page)
    if path != "/":
        app.router.add_get(path.rstrip("/"), _redirect(path))
    app.router.add_get(path + "page.js", _script(script))
    app.router.add_get(path + "webchat.js", _bundle(bundle))
    app.router.add_post(path + "token", token)


def _redirect(path: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPPermanentRedirect(path)

    return redirect


def _script(body: bytes) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def serve(request: web.Request) -> web.Response:
        headers = {**_HEADERS, "Cache-Control": "no-cache"}
        return web.Response(body=body, content_type="text/javascript", headers=headers)

    return serve


def _bundle(body: bytes | None) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def serve(request: web.Request) -> web.Response:
        if body is None:
            return web.json_response(
                {"error": "Unavailable", "reason": "Web Chat's bundle is not installed"},
                status=503,
            )
        headers = {**_HEADERS, "Cache-Control": "public, max-age=86400"}
        return web.Response(body=body, content_type="text/javascript", headers=headers)

    return serve

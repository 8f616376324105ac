"""``POST /auth/token``: a provider exchanges an authorization code for the user's auth
context, with RFC 6749's errors."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from connector.app.requests import ENGINE, authorization, read_fields
from connector.app.statuses import status_for
from connector.auth import check_credential
from connector.errors import AuthCodeError, AuthError, MalformedPayload, NotFound

log = logging.getLogger("midtier.app")


async def auth_token(request: web.Request) -> web.Response:
    """OAuth-style token endpoint: a provider exchanges a code for the user's auth context.

    Body (JSON or form): ``grant_type=authorization_code``, ``code``, ``client_id`` (the
    provider name); the provider credential as ``client_secret`` or ``Authorization: Bearer``.
    """
    engine = request.app[ENGINE]
    try:
        body = await read_fields(request)  # over the size limit: 413 before anything else
        header_value = authorization(request) or ""
        fields = _oauth_fields(body, ("grant_type", "client_id", "provider", "code"))
        secret = _oauth_fields(body, ("client_secret",)).get("client_secret")
    except (AuthError, MalformedPayload) as exc:  # RFC 6749 errors, our statuses
        error = "invalid_client" if isinstance(exc, AuthError) else "invalid_request"
        return oauth_error(status_for(exc), error, str(exc))
    if fields.get("grant_type", "authorization_code") != "authorization_code":
        return oauth_error(400, "unsupported_grant_type", "only authorization_code is supported")
    provider = fields.get("client_id") or fields.get("provider") or ""
    code = fields.get("code") or ""
    if not secret and header_value.startswith("Bearer "):
        secret = header_value[7:]
    cfg = engine.config.providers.get(provider)
    try:
        check_credential(cfg.credential if cfg else "", secret or None)
    except AuthError as exc:
        log.warning("token request refused for client %r: %s", provider[:64], exc)
        return oauth_error(401, "invalid_client", str(exc))
    if not code:
        return oauth_error(400, "invalid_request", "code is missing")
    try:
        grant = await engine.host.redeem(code, provider)
    except (AuthCodeError, NotFound) as exc:
        log.warning("token request refused for client %r: %s", provider[:64], exc)
        return oauth_error(400, "invalid_grant", str(exc))
    return web.json_response(grant, headers={"Cache-Control": "no-store"})


def _oauth_fields(body: dict[str, Any], names: tuple[str, ...]) -> dict[str, str]:
    """The named fields of a token request; each must be a string when present."""
    out: dict[str, str] = {}
    for name in names:
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise MalformedPayload(f"{name} must be a string")
        out[name] = value
    return out


def oauth_error(status: int, error: str, description: str) -> web.Response:
    """An RFC 6749 error answer (also the token endpoint of midtier's Connector issuer)."""
    return web.json_response(
        {"error": error, "error_description": description},
        status=status,
        headers={"Cache-Control": "no-store"},
    )

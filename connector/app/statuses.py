"""Where midtier's errors become HTTP statuses: the only such mapping in midtier, and the
middleware that applies it to every route (a 500 only for what is truly ours)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from connector.errors import (
    AuthCodeError,
    AuthError,
    ConflictError,
    Forbidden,
    InputError,
    MidtierError,
    NotFound,
    PayloadTooLarge,
    SessionClosed,
    UnsupportedMediaType,
)

log = logging.getLogger("midtier.app")


def status_for(exc: MidtierError) -> int:
    """The HTTP status of an error of ours (the only such mapping in midtier)."""
    if isinstance(exc, PayloadTooLarge):
        return 413
    if isinstance(exc, UnsupportedMediaType):
        return 415
    if isinstance(exc, Forbidden):
        return 403
    if isinstance(exc, AuthError):
        return 401
    if isinstance(exc, SessionClosed | ConflictError):
        return 409
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, InputError | AuthCodeError):
        return 400
    return 500


# Decoding failures of untrusted input that escaped connector.payloads: still the caller's
# fault, so a 400 and one line, never a traceback (its text may quote what was sent).
_DECODING_ERRORS = (UnicodeError, HttpProcessingError, web.RequestPayloadError, RecursionError)


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except MidtierError as exc:
        if request.writer.output_size > 0:
            raise  # a WebSocket or stream already answered: no status to send any more
        status = status_for(exc)
        if status >= 500:
            log.exception("request failed: %s %s", request.method, request.path)
        return web.json_response({"error": type(exc).__name__, "reason": str(exc)}, status=status)
    except _DECODING_ERRORS as exc:
        if request.writer.output_size > 0:
            raise
        log.warning(
            "bad input on %s %s: %s",
            request.method,
            request.path,
            type(exc).__name__,
            extra={"event": "bad_input"},
        )
        reason = "the request could not be decoded"
        return web.json_response({"error": "MalformedPayload", "reason": reason}, status=400)

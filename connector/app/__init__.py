"""The aiohttp application: routes, and start-up/shutdown of stores, models and adapters.

``create_app(config, data_dir)`` builds everything without side effects; the
``cleanup_ctx`` opens the store, trains or loads the intent classifier, starts providers and
background tasks, and closes all of it again on shutdown. This is the only module of the core
(with :mod:`connector.app.requests`, how requests are read) that imports aiohttp, and the
only place errors become HTTP statuses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError

from connector.app.requests import BODY_LIMIT, ENGINE, authorization, read_fields
from connector.app.webhooks import mount_webhooks
from connector.auth import check_credential
from connector.config import Config
from connector.context import SharedHttp
from connector.continuation import LINK_PATH
from connector.engine import Engine
from connector.errors import (
    AuthCodeError,
    AuthError,
    ConfigError,
    ConfigErrors,
    ConflictError,
    Forbidden,
    InputError,
    MalformedPayload,
    MidtierError,
    NotFound,
    PayloadTooLarge,
    SessionClosed,
    UnsupportedMediaType,
)
from connector.interfaces import IntentResult, Mountable
from connector.logs import redactor
from connector.registry import build_adapters, build_continuation_page
from connector.store import open_store

__all__ = ["ENGINE", "HTTP", "AccessLogger", "create_app", "status_for"]

log = logging.getLogger("midtier.app")

HTTP = web.AppKey("http", SharedHttp)
HEALTH_INTERVAL_S = 15.0
EXPIRY_INTERVAL_S = 60.0


class _NotReady:
    """Stands in for the classifier until start-up has trained or loaded it."""

    def classify(self, text: str) -> IntentResult:
        return IntentResult(name=None, confidence=0.0, out_of_scope=True)


class AccessLogger(AbstractAccessLogger):
    """One line per request, without the query string (it may carry tokens)."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s %.1fms",
            request.method,
            request.path,
            response.status,
            time * 1000,
            extra={"event": "http"},
        )


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


async def healthz(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    return web.json_response(
        {
            "status": "ok",
            "providers": {
                name: {
                    "healthy": engine.pool.healthy.get(name, True),
                    "circuit": engine.pool.breakers.state(name),
                }
                for name in engine.providers
            },
            "open_legs": dict(engine.pool.open_legs),
        }
    )


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
        return _oauth_error(status_for(exc), error, str(exc))
    if fields.get("grant_type", "authorization_code") != "authorization_code":
        return _oauth_error(400, "unsupported_grant_type", "only authorization_code is supported")
    provider = fields.get("client_id") or fields.get("provider") or ""
    code = fields.get("code") or ""
    if not secret and header_value.startswith("Bearer "):
        secret = header_value[7:]
    cfg = engine.config.providers.get(provider)
    try:
        check_credential(cfg.credential if cfg else "", secret or None)
    except AuthError as exc:
        log.warning("token request refused for client %r: %s", provider[:64], exc)
        return _oauth_error(401, "invalid_client", str(exc))
    if not code:
        return _oauth_error(400, "invalid_request", "code is missing")
    try:
        grant = await engine.redeem(code, provider)
    except (AuthCodeError, NotFound) as exc:
        log.warning("token request refused for client %r: %s", provider[:64], exc)
        return _oauth_error(400, "invalid_grant", str(exc))
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


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    return web.json_response(
        {"error": error, "error_description": description},
        status=status,
        headers={"Cache-Control": "no-store"},
    )


async def _expiry_loop(engine: Engine) -> None:
    while True:
        try:
            closed = await engine.expire_idle()
            if closed:
                log.info("closed %d idle session(s)", closed)
        except Exception:  # keep expiring on the next pass
            log.exception("session expiry pass failed")
        await asyncio.sleep(EXPIRY_INTERVAL_S)


async def _health_loop(engine: Engine) -> None:
    while True:
        for name, provider in engine.providers.items():
            try:
                async with asyncio.timeout(engine.pool.timeout(name)):
                    engine.pool.healthy[name] = await provider.health()
            except Exception as exc:  # a health probe must never stop the loop
                log.warning("health check of %s failed: %s", name, exc)
                engine.pool.healthy[name] = False
        await asyncio.sleep(HEALTH_INTERVAL_S)


def create_app(
    config: Config,
    data_dir: Path,
    *,
    store_url: str | None = None,
    public_url: str = "http://127.0.0.1:3978",
) -> web.Application:
    """Build the application for ``config``; nothing starts until the app runs."""
    data_dir = Path(data_dir)
    app = web.Application(
        client_max_size=config.midtier.limits.max_body_bytes, middlewares=[error_middleware]
    )
    store = open_store(
        store_url or str(data_dir / "midtier.db"), synchronous=config.midtier.store.synchronous
    )
    engine = Engine(
        config, store, _NotReady(), {}, {}, token_url=public_url.rstrip("/") + "/auth/token"
    )
    engine.data_dir = data_dir
    engine.public_url = public_url.rstrip("/")
    http = SharedHttp()
    channels, providers = build_adapters(
        config, engine, data_dir=data_dir, public_url=public_url, http=http
    )
    engine.channels.update(channels)
    engine.providers.update(providers)
    page = build_continuation_page(config, engine.continuation, LINK_PATH)
    app[ENGINE] = engine
    app[HTTP] = http
    app[BODY_LIMIT] = config.midtier.limits.max_body_bytes
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/auth/token", auth_token)
    mount_webhooks(app, channels, public_url)
    mounted = [
        *(("midtier.yaml", f"channels.{n}", a) for n, a in channels.items()),
        *(("providers.yaml", f"providers.{n}", a) for n, a in providers.items()),
        ("midtier.yaml", "continuation.page", page),
    ]
    for file, key, adapter in mounted:
        if isinstance(adapter, Mountable):
            try:
                adapter.mount(app)
            except (RuntimeError, ValueError) as exc:  # aiohttp: a route taken twice
                reason = f"its routes clash with another's ({exc})"
                raise ConfigErrors([ConfigError(file, key, reason)]) from None
    if isinstance(page, Mountable):
        engine.continuation.page_url = engine.public_url + LINK_PATH
    for pcfg in config.providers.values():
        redactor.add(pcfg.credential)
    app.cleanup_ctx.append(_lifecycle)
    app.on_shutdown.append(_going_away)
    return app


async def _going_away(app: web.Application) -> None:
    """Close long-lived connections (WebSockets) first, so shutdown does not wait on them."""
    engine = app[ENGINE]
    for adapter in [*engine.channels.values(), *engine.providers.values()]:
        shutdown = getattr(adapter, "shutdown", None)
        if shutdown is not None:
            await shutdown()


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    """Start everything in order; stop what was started, in reverse, also when a later
    step of the start-up fails (so a failed start exits instead of hanging on a thread)."""
    from connector.routing.nlu import train_or_load

    engine = app[ENGINE]
    async with contextlib.AsyncExitStack() as started:
        engine.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        await engine.store.start()
        started.push_async_callback(engine.store.close)
        classifier, trained = await asyncio.to_thread(
            train_or_load, engine.config.nlu_files, engine.data_dir / "nlu-cache"
        )
        engine.classifier = classifier
        log.info("intent classifier %s", "trained" if trained else "loaded from cache")
        await engine.pool.load_counts(engine.store)
        shared = app[HTTP]
        # One client for every adapter's platform calls; each call sets its own deadline.
        # No cookie jar: platforms authenticate every call, and adapters must not share cookies.
        shared.open(
            aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=30), cookie_jar=aiohttp.DummyCookieJar()
            )
        )
        started.push_async_callback(shared.close)
        for adapter in [*engine.channels.values(), *engine.providers.values()]:
            start = getattr(adapter, "start", None)
            if start is not None:
                await start()
            stop = getattr(adapter, "stop", None)
            if stop is not None:
                started.push_async_callback(_stop_quietly, adapter, stop)
        await engine.outbox.load_backlog()
        engine.outbox.start()
        started.push_async_callback(engine.outbox.stop)
        await engine.inbox.resume()
        started.push_async_callback(engine.inbox.stop)
        await engine.inbound.resume()  # what a crash left recorded but unanswered goes first
        started.push_async_callback(engine.inbound.stop)
        for loop, name in ((_health_loop, "midtier-health"), (_expiry_loop, "midtier-expiry")):
            task = asyncio.create_task(loop(engine), name=name)
            started.push_async_callback(_cancel, task)
        log.info("midtier started", extra={"providers": sorted(engine.providers)})
        yield


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _stop_quietly(adapter: object, stop: Callable[[], Awaitable[None]]) -> None:
    try:
        await stop()
    except Exception:  # the others must still stop
        log.exception("stopping %s failed", adapter)

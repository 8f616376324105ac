"""The aiohttp application: routes, and start-up/shutdown of stores, models and adapters.

``create_app(config, data_dir)`` builds everything without side effects; the
``cleanup_ctx`` opens the store, trains or loads the intent classifier, starts providers and
background tasks, and closes all of it again on shutdown. This is the only module of the core
(with its modules: ``requests``, how requests are read; ``statuses``, the only place
errors become HTTP statuses; ``webhooks``, the channels' route; ``token``, ``/auth/token``;
``playground``, ``/routing/explain``)
that imports aiohttp.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from connector.app.playground import EXPLAIN_PATH, routing_explain
from connector.app.requests import BODY_LIMIT, ENGINE
from connector.app.statuses import error_middleware, status_for
from connector.app.token import auth_token
from connector.app.webhooks import mount_webhooks
from connector.config import Config
from connector.context import Services, SharedHttp
from connector.continuation import LINK_PATH
from connector.engine import Engine
from connector.errors import ConfigError, ConfigErrors
from connector.interfaces import IntentResult, Mountable
from connector.logs import redactor
from connector.registry import app_services, build_adapters, build_continuation_page
from connector.reload import Reloader
from connector.store import open_store

__all__ = ["ENGINE", "HTTP", "SERVICES", "AccessLogger", "create_app", "status_for"]

log = logging.getLogger("midtier.app")

HTTP = web.AppKey("http", SharedHttp)
SERVICES = web.AppKey("services", Services)  # what providers share, one set per app
HEALTH_INTERVAL_S = 15.0
EXPIRY_INTERVAL_S = 60.0


class _NotReady:
    """Stands in for the classifier until start-up has trained or loaded it."""

    def classify(self, text: str) -> IntentResult:
        return IntentResult(name=None, confidence=0.0, out_of_scope=True)


class AccessLogger(AbstractAccessLogger):
    """One line per request, without the query string (it may carry tokens)."""

    @property
    def enabled(self) -> bool:
        """Whether its lines are written at all: when not (``--log-level warning``), aiohttp
        neither times requests nor calls ``log`` (it asks once per connection)."""
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s %.1fms",
            request.method,
            request.path,
            response.status,
            time * 1000,
            extra={"event": "http"},
        )


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
        await engine.pool.probe()  # a probe that fails counts as unhealthy, never raises
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
    settings = config.midtier.store
    store = open_store(
        store_url or str(data_dir / "midtier.db"),
        synchronous=settings.synchronous,
        commit_window_s=settings.commit_window_ms / 1000,
    )
    engine = Engine(
        config, store, _NotReady(), {}, {}, token_url=public_url.rstrip("/") + "/auth/token"
    )
    engine.data_dir = data_dir
    engine.public_url = public_url.rstrip("/")
    http = SharedHttp()
    services = app_services(
        config, engine.host, data_dir=data_dir, public_url=public_url, http=http
    )
    channels, providers = build_adapters(
        config,
        engine,
        data_dir=data_dir,
        public_url=public_url,
        http=http,
        services=services,
        provider_host=engine.host,
    )
    engine.channels.update(channels)
    engine.providers.update(providers)
    page = build_continuation_page(config, engine.continuation, LINK_PATH)
    app[ENGINE] = engine
    app[HTTP] = http
    app[SERVICES] = services
    app[BODY_LIMIT] = config.midtier.limits.max_body_bytes
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/auth/token", auth_token)
    app.router.add_post(EXPLAIN_PATH, routing_explain)
    mount_webhooks(app, channels, public_url)
    mounted = [
        *(("midtier.yaml", f"channels.{n}", a) for n, a in channels.items()),
        *(("providers.yaml", f"providers.{n}", a) for n, a in providers.items()),
        *(("providers.yaml", key, service) for key, service in services),
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
    from connector.routing.nlu import classifier_for

    engine = app[ENGINE]
    async with contextlib.AsyncExitStack() as started:
        engine.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        await engine.store.start()
        started.push_async_callback(engine.store.close)
        classifier, trained = await asyncio.to_thread(
            classifier_for,
            engine.config.routing,
            engine.config.nlu_files,
            engine.data_dir / "nlu-cache",
        )
        engine.understanding.classifier = classifier
        log.info("intent classifier %s", "trained" if trained else "loaded from cache")
        await engine.pool.load_counts(engine.store)
        await engine.rates.refresh()
        shared = app[HTTP]
        # One client for every adapter's platform calls; each call sets its own deadline.
        # No cookie jar: platforms authenticate every call, and adapters must not share cookies.
        shared.open(
            aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=30), cookie_jar=aiohttp.DummyCookieJar()
            )
        )
        started.push_async_callback(shared.close)
        shared_by_providers = [service for _, service in app[SERVICES]]
        for adapter in [
            *shared_by_providers,
            *engine.channels.values(),
            *engine.providers.values(),
        ]:
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
        outcomes = asyncio.create_task(engine.rates.keep_fresh(), name="midtier-outcomes")
        started.push_async_callback(_cancel, outcomes)
        reloader = Reloader(
            engine.config,
            engine.router,
            engine.understanding,
            engine.pool,
            engine.data_dir,
            classifier_for,
        )
        event_loop = asyncio.get_running_loop()
        reloader.install(event_loop)  # last: a SIGHUP before this would end the process
        started.callback(reloader.uninstall, event_loop)
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

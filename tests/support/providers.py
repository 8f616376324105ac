"""Providers built the way ``connector.registry`` builds them, for tests that hold one in hand.

``build(Kind, name, host, **keys)`` takes what a ``providers.<name>`` block of providers.yaml
holds (the common keys ``title``, ``timeout_s``, ``credential`` and the kind's own), validates
the kind's keys with its ``Settings`` as the registry does (``ConfigErrors`` naming
``providers.yaml`` and ``providers.<name>.<key>``), and calls ``Kind(context)``. Providers
that call out over HTTP use the shared client: open one with :func:`shared_http`. The core
calls a provider through a ``ProviderPool``: :func:`pooled` puts built providers in one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from connector.config import ProviderConfig
from connector.context import SharedHttp
from connector.pool import ProviderPool
from connector.registry import provider_context
from support.doubles import make_config

P = TypeVar("P")


def build(
    cls: type[P],
    name: str,
    host: Any,
    *,
    http: SharedHttp | None = None,
    data_dir: Path = Path("data"),
    public_url: str = "http://127.0.0.1:3978",
    **block: Any,
) -> P:
    """``cls`` built from the providers.yaml block ``block`` under the name ``name``."""
    config = ProviderConfig.model_validate(
        {"kind": f"{cls.__module__}:{cls.__qualname__}", **block}
    )
    context = provider_context(
        cls,
        name,
        config,
        host,
        data_dir=data_dir,
        public_url=public_url,
        http=http if http is not None else SharedHttp(),
    )
    return cls(context)  # type: ignore[call-arg]


def pooled(*providers: Any) -> ProviderPool:
    """A ProviderPool of built ``providers``, each under its own block's ``timeout_s``."""
    config = make_config(Path("."), [], {})
    config.providers.update({p.name: p.config for p in providers})
    return ProviderPool(config, {p.name: p for p in providers})


@asynccontextmanager
async def shared_http(total_s: float = 30) -> AsyncIterator[SharedHttp]:
    """The shared HTTP client, opened as the app opens it at start-up (``total_s``: its
    default deadline of a request), closed afterwards."""
    http = SharedHttp()
    http.open(aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=total_s)))
    try:
        yield http
    finally:
        await http.close()

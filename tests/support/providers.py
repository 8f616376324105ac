"""Providers built the way ``connector.registry`` builds them, for tests that hold one in hand.

``build(Kind, name, host, **keys)`` takes what a ``providers.<name>`` block of providers.yaml
holds (the common keys ``title``, ``timeout_s``, ``credential`` and the kind's own), validates
the kind's keys with its ``Settings`` as the registry does (``ConfigErrors`` naming
``providers.yaml`` and ``providers.<name>.<key>``), and calls ``Kind(context)``. Providers
that call out over HTTP use the shared client: open one with :func:`shared_http`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from connector.config import ProviderConfig
from connector.context import SharedHttp
from connector.registry import provider_context

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


@asynccontextmanager
async def shared_http() -> AsyncIterator[SharedHttp]:
    """The shared HTTP client, opened as the app opens it at start-up, closed afterwards."""
    http = SharedHttp()
    http.open(aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)))
    try:
        yield http
    finally:
        await http.close()

"""Finds adapter classes by the ``kind`` names used in config.

The core imports no concrete adapter. Each adapter package (``adapters`` by default, more in
``midtier.yaml: adapter_packages``) has ``channels.REGISTRY`` and ``providers.REGISTRY``:
plain dicts from kind name to a ``"module:Class"`` path, imported only when a config uses
that kind. A kind may also be a dotted path itself, for third-party adapters.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from connector.config import Config, ProviderConfig
from connector.context import (
    ChannelContext,
    ProviderContext,
    ServiceContext,
    Services,
    SharedHttp,
    settings_of,
)
from connector.errors import ConfigError, ConfigErrors


def import_dotted(path: str) -> Any:
    """Import ``"package.module:Name"`` or ``"package.module.Name"``."""
    if ":" in path:
        module_name, _, attr = path.partition(":")
    else:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ImportError(f"{path!r} is not a dotted path like 'package.module:Name'")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError as exc:
        raise ImportError(f"module {module_name!r} has no {attr!r}") from exc


def known_kinds(group: str, packages: list[str]) -> dict[str, str]:
    """Kind name -> dotted path, from every adapter package's registry of ``group``."""
    kinds: dict[str, str] = {}
    for package in packages:
        module = importlib.import_module(f"{package}.{group}")
        for name, path in getattr(module, "REGISTRY", {}).items():
            kinds.setdefault(name, path)
    return kinds


def resolve(kind: str, group: str, packages: list[str], file: str, key: str) -> Any:
    """The class for ``kind``, or a ConfigError naming file and key."""
    kinds = known_kinds(group, packages)
    path = kinds.get(kind)
    if path is None and ("." in kind or ":" in kind):
        path = kind
    if path is None:
        known = ", ".join(sorted(kinds)) or "none"
        raise ConfigError(file, key, f"unknown kind {kind!r} (known: {known})")
    try:
        return import_dotted(path)
    except ImportError as exc:
        raise ConfigError(file, key, f"cannot import {path!r}: {exc}") from exc


def add_config_dir_to_path(config: Config) -> None:
    """Make modules beside the config (e.g. ``bots/``) importable by dotted path."""
    directory = str(Path(config.dir).resolve())
    if directory not in sys.path:
        sys.path.insert(0, directory)


def provider_context(
    cls: type[Any],
    name: str,
    pcfg: ProviderConfig,
    host: Any,
    *,
    data_dir: Path,
    public_url: str,
    http: SharedHttp,
    services: Services | None = None,
) -> ProviderContext[Any, Any]:
    """What provider ``name`` (of class ``cls``) is built from; ConfigErrors naming
    ``providers.yaml`` and ``providers.<name>.<key>`` for every problem of its settings.

    ``services``: the app's shared objects; without them, the provider shares with nobody.
    """
    key = f"providers.{name}"
    public_url = public_url.rstrip("/")
    if services is None:
        services = Services(ServiceContext(host, data_dir, public_url, http))
    return ProviderContext(
        name=name,
        settings=settings_of(cls, pcfg.settings, "providers.yaml", key),
        data_dir=data_dir,
        public_url=public_url,
        http=http,
        file="providers.yaml",
        key=key,
        config=pcfg,
        host=host,
        services=services,
    )


def channel_context(
    cls: type[Any],
    name: str,
    raw: dict[str, Any],
    host: Any,
    data_dir: Path,
    public_url: str,
    http: SharedHttp,
) -> ChannelContext[Any]:
    """What channel ``name`` (of class ``cls``) is built from; ConfigErrors naming
    ``midtier.yaml`` and ``channels.<name>.<key>`` for every problem of its settings."""
    key = f"channels.{name}"
    return ChannelContext(
        name=name,
        settings=settings_of(cls, raw, "midtier.yaml", key),
        data_dir=data_dir,
        public_url=public_url.rstrip("/"),
        http=http,
        file="midtier.yaml",
        key=key,
        host=host,
    )


def app_services(
    config: Config, host: Any, *, data_dir: Path, public_url: str, http: SharedHttp
) -> Services:
    """The shared objects of one app's providers (none made until a provider asks)."""
    context = ServiceContext(
        host, data_dir, public_url.rstrip("/"), http, channels=tuple(config.midtier.channels)
    )
    return Services(context)


def build_adapters(
    config: Config,
    host: Any,
    errors: list[ConfigError] | None = None,
    *,
    data_dir: Path = Path("data"),
    public_url: str = "http://127.0.0.1:3978",
    http: SharedHttp | None = None,
    services: Services | None = None,
    provider_host: Any = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Construct every configured channel and provider.

    Channels get ``host`` (the core's channel side), providers ``provider_host`` (its
    provider side; ``host`` when not given).

    A channel is built from a :class:`ChannelContext`, a provider from a
    :class:`ProviderContext`, each with the settings its ``Settings`` model validated.
    Problems raise ConfigErrors listing all of them, or, when an ``errors`` list is given,
    are appended to it and the adapters that could be built are returned. The providers share
    ``services`` (the app's, to mount and start them; by default a set of their own).
    """
    shared = http if http is not None else SharedHttp()
    if services is None:
        services = app_services(config, host, data_dir=data_dir, public_url=public_url, http=shared)
    add_config_dir_to_path(config)
    packages = config.midtier.adapter_packages
    collect = errors is not None
    errors = errors if errors is not None else []
    channels: dict[str, Any] = {}
    providers: dict[str, Any] = {}
    for name, ccfg in config.midtier.channels.items():
        try:
            where = f"channels.{name}.kind"
            cls = resolve(ccfg.kind, "channels", packages, "midtier.yaml", where)
            raw = dict(ccfg.model_extra or {})
            channels[name] = cls(
                channel_context(cls, name, raw, host, data_dir, public_url, shared)
            )
        except ConfigError as exc:
            errors.append(exc)
        except ConfigErrors as exc:
            errors.extend(exc.errors)
    for name, pcfg in config.providers.items():
        try:
            cls = resolve(
                pcfg.kind, "providers", packages, "providers.yaml", f"providers.{name}.kind"
            )
            built_from = provider_context(
                cls,
                name,
                pcfg,
                host if provider_host is None else provider_host,
                data_dir=data_dir,
                public_url=public_url,
                http=shared,
                services=services,
            )
            providers[name] = cls(built_from)
        except ConfigError as exc:
            errors.append(exc)
        except ConfigErrors as exc:
            errors.extend(exc.errors)
    if errors and not collect:
        raise ConfigErrors(errors)
    return channels, providers


def build_continuation_page(config: Config, host: Any, path: str) -> Any | None:
    """The page of continuation links at ``path`` (``continuation.page``, a
    ``"module:Class"`` built as ``Class(host, path)``), or None when there is none."""
    settings = config.midtier.continuation
    if not settings.enabled or settings.page is None:
        return None
    try:
        cls = import_dotted(settings.page)
    except ImportError as exc:
        problem = ConfigError(
            "midtier.yaml", "continuation.page", f"cannot import {settings.page!r}: {exc}"
        )
        raise ConfigErrors([problem]) from exc
    return cls(host, path)

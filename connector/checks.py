"""``midtier check``: every problem of a config directory, each with its file and key."""

from __future__ import annotations

import fnmatch
import inspect
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from connector.config import Config, load_config
from connector.errors import ConfigError, ConfigErrors
from connector.registry import build_adapters, build_continuation_page
from connector.routing.decision import OUT_OF_SCOPE


def _nlu_errors(config: Config) -> tuple[list[ConfigError], set[str]]:
    from connector.routing.nlu_data import load_training_data

    try:
        data = load_training_data(config.nlu_files)
    except ConfigErrors as exc:
        return exc.errors, set()
    return [], set(data.intents)


def _routing_errors(config: Config, intents: set[str]) -> list[ConfigError]:
    errors = []
    for name, route in config.routing.routes.items():
        for i, pattern in enumerate(route.intents):
            if not fnmatch.filter(intents, pattern):
                errors.append(
                    ConfigError(
                        "routing.yaml",
                        f"routes.{name}.intents[{i}]",
                        f"intent {pattern!r} matches nothing in the NLU data",
                    )
                )
    for intent in config.routing.labels:
        if intent != OUT_OF_SCOPE and intent not in intents:
            errors.append(
                ConfigError(
                    "routing.yaml", f"labels.{intent}", "no intent of this name in the NLU data"
                )
            )
    return errors


def tier_errors(config: Config) -> list[ConfigError]:
    """The classifier tier routing.yaml names, if it cannot be imported (its extra)."""
    from connector.routing.nlu import TierUnavailable, tier_module

    try:
        tier_module(config.routing.nlu.tier)
    except TierUnavailable as exc:
        return [ConfigError("routing.yaml", "nlu.tier", str(exc))]
    return []


async def adapter_errors(adapters: list[Any]) -> list[ConfigError]:
    """Run every adapter's optional ``check()`` (sync or async); collect what it raises."""
    errors: list[ConfigError] = []
    for adapter in adapters:
        check = getattr(adapter, "check", None)
        if check is None:
            continue
        try:
            result = check()
            if inspect.isawaitable(result):
                await result
        except ConfigError as exc:
            errors.append(exc)
        except ConfigErrors as exc:
            errors.extend(exc.errors)
    return errors


def check_config(directory: Path, warnings: list[str] | None = None) -> list[ConfigError]:
    """Validate everything that can be validated without starting the server; what loads
    but looks unintended (``nlu_lint``) goes to ``warnings``, each with file and line."""
    import asyncio

    unset: list[ConfigError] = []
    try:
        config = load_config(directory, found=unset)
    except ConfigErrors as exc:
        return [*unset, *exc.errors]
    errors: list[ConfigError] = []
    channels, providers = build_adapters(config, SimpleNamespace(config=config), errors)
    # A key whose env var is unset was read as empty: its own complaints say nothing more.
    errors = [e for e in errors if (e.file, e.key) not in {(u.file, u.key) for u in unset}]
    errors.extend(asyncio.run(adapter_errors([*channels.values(), *providers.values()])))
    try:
        build_continuation_page(config, None, "/continue")
    except ConfigErrors as exc:
        errors.extend(exc.errors)
    nlu_errors, intents = _nlu_errors(config)
    errors.extend(nlu_errors)
    errors.extend(tier_errors(config))
    if intents:
        errors.extend(_routing_errors(config, intents))
    if warnings is not None and not nlu_errors:
        from connector.routing.nlu_lint import lint

        warnings.extend(str(finding) for finding in lint(config))
    return [*unset, *errors]

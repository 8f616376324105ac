"""Reading one config file: YAML, ``${NAME}`` references to environment variables, and
pydantic's validation errors as ``ConfigError(file, key, message)`` with a dotted key.

Secrets are never written in config files: a value ``${NAME}`` is read from the environment
variable ``NAME`` (an error if unset) and ``${NAME:-default}`` falls back to ``default``.
Problems are appended to a list rather than raised, so that one pass reports all of them;
:mod:`connector.config` assembles a config directory from these files.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from connector.errors import ConfigError

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def substitute_env(value: Any, file: str, key: str, errors: list[ConfigError]) -> Any:
    """Replace ``${NAME}`` / ``${NAME:-default}`` in every string of a YAML tree."""
    if isinstance(value, str):

        def repl(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            found = os.environ.get(name)
            if found is not None:
                return found
            if default is not None:
                return default
            errors.append(ConfigError(file, key, f"environment variable {name} is not set"))
            return ""

        return _ENV_REF.sub(repl, value)
    if isinstance(value, Mapping):
        return {
            k: substitute_env(v, file, f"{key}.{k}" if key else str(k), errors)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [substitute_env(v, file, f"{key}[{i}]", errors) for i, v in enumerate(value)]
    return value


def read_yaml(path: Path, errors: list[ConfigError], *, required: bool = True) -> Any:
    """The YAML document in ``path`` ({} when empty); None, with the error noted, when the
    file is missing (and ``required``) or is not YAML."""
    if not path.exists():
        if required:
            errors.append(ConfigError(path.name, "", "file not found"))
        return None
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        errors.append(ConfigError(path.name, where, f"not valid YAML: {exc}"))
        return None
    return {} if data is None else data


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def validation_errors(file: str, exc: ValidationError, prefix: str = "") -> list[ConfigError]:
    """One ConfigError per pydantic error, with a dotted key."""
    out = []
    for err in exc.errors():
        key = _loc(tuple(err["loc"]))
        if prefix:
            key = f"{prefix}.{key}" if key else prefix
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        out.append(ConfigError(file, key, msg))
    return out


M = TypeVar("M", bound=BaseModel)


def parse_model(cls: type[M], data: Any, file: str, errors: list[ConfigError]) -> M | None:
    """``data`` with ``${NAME}`` substituted, as a ``cls``; None (errors noted) if invalid."""
    data = substitute_env(data, file, "", errors)
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        errors.extend(validation_errors(file, exc))
        return None

"""Typed configuration: ``bot_configs/*.yaml`` -> pydantic models, failing fast and clearly.

Files of a config directory::

    midtier.yaml     channels, notices, limits; session, auth, store, outbox, continuation
    providers.yaml   providers by name: kind, title, timeout, credential, kind-specific keys
    routing.yaml     which provider serves which intents, on what conditions; fallback; default
    nlu/*.yml        intent training data in Rasa's NLU YAML format

Secrets are never written in these files: a value ``${NAME}`` is read from the environment
variable ``NAME`` (an error if unset) and ``${NAME:-default}`` falls back to ``default``.
Every problem is reported as ``ConfigError(file, key, message)``; :func:`load_config` collects
all of them and raises :class:`ConfigErrors`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from connector.continuation_settings import ContinuationSettings
from connector.errors import ConfigError, ConfigErrors
from connector.routing.config import Circuit, Route, RoutingConfig
from connector.settings import (
    AuthSettings,
    ChannelConfig,
    Limits,
    Notices,
    OutboxSettings,
    SessionSettings,
    StoreSettings,
    normalize_origin,
)

__all__ = [
    "AuthSettings",
    "ChannelConfig",
    "Circuit",
    "Config",
    "Limits",
    "MidtierConfig",
    "Notices",
    "OutboxSettings",
    "ProviderConfig",
    "ProvidersFile",
    "Route",
    "RoutingConfig",
    "SessionSettings",
    "StoreSettings",
    "load_config",
    "normalize_origin",
    "substitute_env",
    "validation_errors",
]

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- midtier.yaml


class MidtierConfig(_Strict):
    title: str = "midtier"
    # Pages on other sites allowed to open midtier's WebSockets (web chat, agent desk), as
    # origins (``https://www.example.com``) or ``*``. The page's own origin (the request's
    # Host) is always allowed, and so is a client that sends no Origin (not a browser).
    allowed_origins: list[str] = Field(default_factory=list)
    channels: dict[str, ChannelConfig] = Field(
        default_factory=lambda: {"webchat": ChannelConfig(kind="webchat")}
    )
    notices: Notices = Field(default_factory=Notices)
    session: SessionSettings = Field(default_factory=SessionSettings)
    limits: Limits = Field(default_factory=Limits)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    continuation: ContinuationSettings = Field(default_factory=ContinuationSettings)
    # Packages whose ``channels.REGISTRY`` / ``providers.REGISTRY`` name the adapter kinds.
    adapter_packages: list[str] = Field(default_factory=lambda: ["adapters"])

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        out = []
        for entry in value:
            origin = "*" if entry.strip() == "*" else normalize_origin(entry)
            if origin is None:
                raise ValueError(f"{entry!r} is not an origin like https://www.example.com or *")
            out.append(origin)
        return out

    @model_validator(mode="after")
    def _continuation_channels(self) -> MidtierConfig:
        problems = [
            InitErrorDetails(
                type=PydanticCustomError("unknown_channel", "no channel of this name"),
                loc=("continuation", "channels", name),
                input=name,
            )
            for name in self.continuation.check_channels(self.channels)
        ]
        if problems:
            raise ValidationError.from_exception_data(type(self).__name__, problems)
        return self


# --------------------------------------------------------------------------- providers.yaml


class ProviderConfig(BaseModel):
    """One provider. ``kind`` names an adapter; unknown keys belong to that adapter."""

    model_config = ConfigDict(extra="allow")
    kind: str
    title: str = ""
    timeout_s: float = Field(default=10.0, gt=0)
    # Secret the provider presents at POST /auth/token (from an env var; empty = none).
    credential: str = ""

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class ProvidersFile(_Strict):
    providers: dict[str, ProviderConfig]


# --------------------------------------------------------------------------- the whole


class Config(BaseModel):
    """A loaded, validated config directory."""

    dir: Path
    midtier: MidtierConfig
    providers: dict[str, ProviderConfig]
    routing: RoutingConfig
    nlu_files: list[Path]


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


def _read_yaml(path: Path, errors: list[ConfigError], *, required: bool = True) -> Any:
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


def _model(cls: type[M], data: Any, file: str, errors: list[ConfigError]) -> M | None:
    data = substitute_env(data, file, "", errors)
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        errors.extend(validation_errors(file, exc))
        return None


def _cross_check(
    providers: dict[str, ProviderConfig], routing: RoutingConfig, errors: list[ConfigError]
) -> None:
    names = set(providers)
    for name in routing.routes:
        if name not in names:
            errors.append(
                ConfigError(
                    "routing.yaml", f"routes.{name}", "no provider of this name in providers.yaml"
                )
            )
    for key in ("fallback", "default"):
        value = getattr(routing, key)
        if value is not None and value not in names:
            errors.append(
                ConfigError("routing.yaml", key, f"{value!r} is not a provider in providers.yaml")
            )


def _is_unset_env(error: ConfigError) -> bool:
    return error.message.startswith("environment variable ") and error.message.endswith(
        " is not set"
    )


def load_config(directory: str | Path, *, found: list[ConfigError] | None = None) -> Config:
    """Load and validate a config directory, or raise ConfigErrors listing every problem.

    With ``found`` (``midtier check``), unset environment variables are appended to it and
    read as empty, so that everything else can still be checked in the same pass.
    """
    root = Path(directory)
    errors: list[ConfigError] = []
    if not root.is_dir():
        raise ConfigErrors([ConfigError(str(root), "", "config directory not found")])

    raw = _read_yaml(root / "midtier.yaml", errors, required=False)
    midtier = (
        _model(MidtierConfig, raw or {}, "midtier.yaml", errors)
        if raw is not None
        else MidtierConfig()
    )
    raw = _read_yaml(root / "providers.yaml", errors)
    providers_file = (
        _model(ProvidersFile, raw, "providers.yaml", errors) if raw is not None else None
    )
    raw = _read_yaml(root / "routing.yaml", errors)
    routing = _model(RoutingConfig, raw, "routing.yaml", errors) if raw is not None else None

    nlu_dir = root / "nlu"
    nlu_files = (
        sorted([*nlu_dir.glob("*.yml"), *nlu_dir.glob("*.yaml")]) if nlu_dir.is_dir() else []
    )
    if not nlu_files:
        errors.append(ConfigError("nlu/", "", "no NLU training data (nlu/*.yml) found"))

    if providers_file is not None and routing is not None:
        _cross_check(providers_file.providers, routing, errors)
    if found is not None and all(_is_unset_env(e) for e in errors):
        found.extend(errors)
        errors = []
    if errors or midtier is None or providers_file is None or routing is None:
        raise ConfigErrors(errors)
    return Config(
        dir=root.resolve(),
        midtier=midtier,
        providers=providers_file.providers,
        routing=routing,
        nlu_files=nlu_files,
    )

"""Typed configuration: ``bot_configs/*.yaml`` -> pydantic models, failing fast and clearly.

Files of a config directory::

    midtier.yaml     channels, notices, limits; session, auth, store, outbox, continuation
    providers.yaml   providers by name: kind, title, timeout, credential, kind-specific keys
    routing.yaml     which provider serves which intents, on what conditions; fallback; default
    nlu/*.yml        intent training data in Rasa's NLU YAML format

Secrets are never written in these files: a value ``${NAME}`` is read from the environment
variable ``NAME`` (an error if unset) and ``${NAME:-default}`` falls back to ``default``
(:mod:`connector.config_files` reads each file). Every problem is reported as
``ConfigError(file, key, message)``; :func:`load_config` collects all of them and raises
:class:`ConfigErrors`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from connector.config_files import parse_model, read_yaml
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
]


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


def cross_check(
    providers: dict[str, ProviderConfig], routing: RoutingConfig, errors: list[ConfigError]
) -> None:
    """Append to ``errors`` what of ``routing`` names providers that ``providers`` lacks."""
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
    escalate = routing.next_best_action.escalate_to
    if escalate is not None and escalate not in names:
        errors.append(
            ConfigError(
                "routing.yaml",
                "next_best_action.escalate_to",
                f"{escalate!r} is not a provider in providers.yaml",
            )
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

    raw = read_yaml(root / "midtier.yaml", errors, required=False)
    midtier = (
        parse_model(MidtierConfig, raw or {}, "midtier.yaml", errors)
        if raw is not None
        else MidtierConfig()
    )
    raw = read_yaml(root / "providers.yaml", errors)
    providers_file = (
        parse_model(ProvidersFile, raw, "providers.yaml", errors) if raw is not None else None
    )
    raw = read_yaml(root / "routing.yaml", errors)
    routing = parse_model(RoutingConfig, raw, "routing.yaml", errors) if raw is not None else None

    nlu_dir = root / "nlu"
    nlu_files = (
        sorted([*nlu_dir.glob("*.yml"), *nlu_dir.glob("*.yaml")]) if nlu_dir.is_dir() else []
    )
    if not nlu_files:
        errors.append(ConfigError("nlu/", "", "no NLU training data (nlu/*.yml) found"))

    if providers_file is not None and routing is not None:
        cross_check(providers_file.providers, routing, errors)
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

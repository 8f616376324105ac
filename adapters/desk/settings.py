"""The desk's keys in ``providers.yaml``, validated at start-up with file and key in errors."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from connector.config import ProviderConfig, validation_errors
from connector.errors import ConfigError, ConfigErrors

MIN_TOKEN_CHARS = 16
# Agent ids from config are their keys; ids of agents signed in with the shared token are
# "agent_" + random, so the two can never meet.
AGENT_KEY = re.compile(r"^(?!agent_)[a-z0-9][a-z0-9_.-]{0,39}$")

NO_AGENT_NOTICE = (
    "No agent is signed in right now. Your messages are kept, and an agent will answer you "
    "here as soon as one signs in."
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _token(value: str) -> str:
    if len(value) < MIN_TOKEN_CHARS or any(c.isspace() for c in value):
        raise ValueError(f"a token needs at least {MIN_TOKEN_CHARS} characters and no spaces")
    return value


class AgentAccount(_Strict):
    """One agent who signs in with a personal token."""

    name: str = Field(min_length=1, max_length=60)
    token: str

    @field_validator("token")
    @classmethod
    def _personal(cls, value: str) -> str:
        return _token(value)


class SignInSettings(_Strict):
    """Deadlines and limits of signing in."""

    timeout_s: float = Field(default=10.0, gt=0, le=300, description="to send the auth frame")
    session_ttl_s: float = Field(default=12 * 3600, gt=0, description="signed session lifetime")
    max_failures: int = Field(default=5, gt=0, description="wrong tokens per address...")
    window_s: float = Field(default=300.0, gt=0, description="...within this window")
    cooldown_s: float = Field(default=300.0, gt=0, description="then refused for this long")
    delay_s: float = Field(default=0.5, ge=0, le=10, description="first wrong-token delay")


class DeskSettings(_Strict):
    """``providers.<name>`` keys of a ``kind: agent_desk`` provider (besides the common ones)."""

    # Shared desk token: anyone holding it signs in under a name of their choice and gets an
    # id of their own. Empty: generated once and kept in <data>/agent-token.
    token: str = ""
    shared_signin: bool = True  # false: only the agents below can sign in
    agents: dict[str, AgentAccount] = Field(default_factory=dict)
    sign_in: SignInSettings = Field(default_factory=SignInSettings)
    no_agent_notice: str = Field(default=NO_AGENT_NOTICE, min_length=1)
    # Send "the agent is typing" to the customer's channel (the web chat shows it; a channel
    # that cannot show typing drops it).
    agent_typing: bool = True
    page_path: str = "/agent"
    ws_path: str = "/agent/ws"

    @field_validator("token")
    @classmethod
    def _shared(cls, value: str) -> str:
        return _token(value) if value else value


def load_settings(name: str, config: ProviderConfig) -> DeskSettings:
    """The desk's settings, or ConfigErrors naming ``providers.yaml`` and each key."""
    prefix = f"providers.{name}"
    try:
        settings = DeskSettings.model_validate(config.settings)
    except ValidationError as exc:
        raise ConfigErrors(validation_errors("providers.yaml", exc, prefix)) from exc
    errors = []
    seen: dict[str, str] = {}
    if settings.token:
        seen[settings.token] = "token"
    for key, account in settings.agents.items():
        where = f"{prefix}.agents.{key}"
        if not AGENT_KEY.match(key):
            errors.append(
                ConfigError(
                    "providers.yaml",
                    where,
                    "agent ids are 1-40 lower-case letters, digits, '_', '.' or '-', "
                    "and do not start with 'agent_'",
                )
            )
        other = seen.setdefault(account.token, f"agents.{key}.token")
        if other != f"agents.{key}.token":
            errors.append(
                ConfigError("providers.yaml", f"{where}.token", f"the same token as {other}")
            )
    if not settings.shared_signin and not settings.agents:
        errors.append(
            ConfigError(
                "providers.yaml",
                f"{prefix}.shared_signin",
                "with shared_signin: false, list the agents who may sign in under agents",
            )
        )
    if errors:
        raise ConfigErrors(errors)
    return settings

"""The desk's keys in ``providers.yaml``: its ``Settings`` model, validated at start-up and by
``midtier check``, every problem with file and key (``connector.context.settings_of``)."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

MIN_TOKEN_CHARS = 16
# Agent ids from config are their keys; ids of agents signed in with the shared token are
# "agent_" + random, so the two can never meet.
AGENT_KEY = re.compile(r"^(?!agent_)[a-z0-9][a-z0-9_.-]{0,39}$")
DISPOSITION = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")

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
    # The routing playground's page; its questions go to the core's POST /routing/explain,
    # which this desk's tokens and sign-in throttle guard. None: no playground here (one
    # desk of several serves it).
    playground_path: str | None = "/agent/playground"
    # What an agent can say of a conversation when resolving it, and whether each is a
    # success: the desk's outcome for it (``connector.outcomes``; ``midtier stats``).
    dispositions: dict[str, bool] = Field(
        default_factory=lambda: {"resolved": True, "not_resolved": False}
    )

    @field_validator("token")
    @classmethod
    def _shared(cls, value: str) -> str:
        return _token(value) if value else value

    @field_validator("dispositions")
    @classmethod
    def _dispositions(cls, value: dict[str, bool]) -> dict[str, bool]:
        if not value:
            raise ValueError("at least one disposition is needed")
        for name in value:
            if not DISPOSITION.match(name):
                raise ValueError(
                    f"disposition {name!r}: lowercase letters, digits, _ and -, at most 40"
                )
        return value

    @model_validator(mode="after")
    def _agents_can_sign_in(self) -> DeskSettings:
        """Agent ids that cannot be mistaken for shared sign-ins, one token per person, and
        someone able to sign in at all."""
        problems: list[InitErrorDetails] = []

        def problem(loc: tuple[str, ...], kind: str, message: str, **context: str) -> None:
            error = PydanticCustomError(kind, message, context)
            problems.append(InitErrorDetails(type=error, loc=loc, input=None))

        seen: dict[str, str] = {self.token: "token"} if self.token else {}
        for key, account in self.agents.items():
            if not AGENT_KEY.match(key):
                problem(
                    ("agents", key),
                    "agent_id",
                    "agent ids are 1-40 lower-case letters, digits, '_', '.' or '-', "
                    "and do not start with 'agent_'",
                )
            other = seen.setdefault(account.token, f"agents.{key}.token")
            if other != f"agents.{key}.token":
                problem(
                    ("agents", key, "token"), "same_token", "the same token as {other}", other=other
                )
        if not self.shared_signin and not self.agents:
            problem(
                ("shared_signin",),
                "nobody_signs_in",
                "with shared_signin: false, list the agents who may sign in under agents",
            )
        if problems:
            raise ValidationError.from_exception_data(type(self).__name__, problems)
        return self

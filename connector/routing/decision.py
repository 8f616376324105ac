"""Route decisions: which provider serves a message, why, and what else was possible."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from connector.activity import now
from connector.plain import Record

# open: first leg of a session; switch: to another provider; fallback: to the fallback provider;
# move: the provider that serves it is on other channels only (``channels``): the user is
# offered to continue there, and ``next_best`` serves it here if they carry on here.
# ask: the user is offered ``choices`` (the providers of the top intents) and nothing is
# delivered until they choose; escalate: to the ``escalate_to`` provider (a person) at once.
Action = Literal["open", "stay", "switch", "fallback", "move", "ask", "escalate"]


@dataclass(slots=True, kw_only=True)
class Choice(Record):
    """One option of an ``ask`` decision: the intent, the provider serving it, its title."""

    intent: str
    provider: str
    title: str
    confidence: float


@dataclass(slots=True, kw_only=True)
class Candidate(Record):
    """A provider the router considered, and whether its conditions held."""

    provider: str
    eligible: bool
    reason: str


@dataclass(frozen=True, slots=True)
class Condition:
    """One condition on a provider taking a conversation (``min_confidence``, ``channels``,
    ``hours``, ``capacity``, ``health``), and whether it held."""

    name: str
    holds: bool
    detail: str


@dataclass(slots=True, kw_only=True)
class RouteDecision(Record):
    """The router's answer for one user message."""

    at: datetime = field(default_factory=now)
    action: Action
    provider: str | None  # who serves the message
    previous: str | None = None  # who served the conversation before
    intent: str | None = None
    confidence: float = 0.0
    out_of_scope: bool = False
    # For people (the desk's queue, ``sessions show``): "reported fraud", "asked for a person".
    summary: str = ""
    # For operators: the rule that decided, e.g. "agents serves report_fraud; faq does not".
    reason: str = ""
    # Next best action: the runner-up, if the chosen provider fails.
    next_best: str | None = None
    # For ``move``: the channels on which ``provider`` serves the conversation.
    channels: list[str] = field(default_factory=list)
    alternatives: list[Candidate] = field(default_factory=list)
    # For ``ask``: what the user may choose between, best first.
    choices: list[Choice] = field(default_factory=list)
    message_id: str | None = None


def intent_history(decisions: list[RouteDecision], last: int = 10) -> list[dict[str, Any]]:
    """The recent intents of a session's route decisions, oldest first (for handoffs)."""
    found = [
        {"name": d.intent, "confidence": round(d.confidence, 4), "at": d.at.isoformat()}
        for d in decisions
        if d.intent is not None
    ]
    return found[-last:]


_SEPARATORS = re.compile(r"[\s._\-]+")
# The ``labels`` key for messages no intent covers, and its default reading.
OUT_OF_SCOPE = "out_of_scope"
NOBODY_HELPED = "the assistant could not help with this"


class Labels:
    """How intents read to people: ``routing.yaml``'s ``labels``, else a default phrase
    ("asked about check balance"); each built once."""

    def __init__(self, configured: Mapping[str, str]) -> None:
        self._configured = configured
        self._built: dict[str, str] = {}

    def __call__(self, intent: str | None) -> str:
        key = OUT_OF_SCOPE if intent is None else intent
        found = self._built.get(key)
        if found is None:
            found = self._configured.get(key)
            if found is None:
                found = NOBODY_HELPED if intent is None else f"asked about {words(intent)}"
            self._built[key] = found
        return found


def words(intent: str) -> str:
    """``lost_or_stolen_card`` -> ``lost or stolen card``; ``card.lost`` -> ``card lost``."""
    return " ".join(_SEPARATORS.split(intent)).strip() or intent

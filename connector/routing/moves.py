"""The ``move`` decision: when the best route for an intent serves it only on other channels.

A route whose ``channels`` leave out the user's channel is skipped; but when it is the best
route for the intent and could take the conversation on one of its channels the conversation
can move to, the decision is ``move`` (once per provider and session): midtier offers the
user to continue there (:mod:`connector.continuation`), and the next best provider here
serves the conversation if the user carries on where they are.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from connector.config import Route
from connector.routing.conditions import Checks
from connector.routing.decision import Candidate
from connector.sessions import MidTierSession

# The session's ``channel_state`` key of the providers a move was already offered for.
MOVES_OFFERED = "moves_offered"


class Router(Checks, Protocol):
    """What of ``connector.routing.policy.Router`` (the caller) a move offer reads."""

    reachable: Collection[str]

    def route(self, provider: str) -> Route: ...

    def interrupt_needed(self, provider: str) -> float: ...


def elsewhere_only(
    router: Router,
    session: MidTierSession,
    alternatives: list[Candidate],
    intent: str,
    confidence: float,
    waiting: bool,
) -> tuple[str, list[str]] | None:
    """The best candidate, if it is held back only by the user's channel: it and the
    channels it serves that the conversation can move to (once per provider)."""
    offered = session.channel_state.get(MOVES_OFFERED)
    for candidate in alternatives:
        if candidate.eligible:
            return None  # a better one serves it here
        route = router.route(candidate.provider)
        if route.channels is None or (isinstance(offered, list) and candidate.provider in offered):
            continue
        held = session.held_by(candidate.provider)
        if router.check(candidate.provider, confidence, None, intent, held=held) is not None:
            continue
        if waiting and confidence < router.interrupt_needed(candidate.provider):
            continue
        channels = [c for c in route.channels if c in router.reachable]
        if channels:
            return candidate.provider, channels
    return None

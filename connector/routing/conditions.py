"""The conditions under which a provider may take a conversation, each evaluated with its
result and a reason for people: the route's own (minimum confidence, channels, business
hours, capacity), the provider's measured success rate for the message's intent
(``min_success_rate``, :mod:`connector.outcomes`), and its health and circuit breaker.

Conditions say which conversations a provider *takes*, not which it keeps: one it has
stays with it after its hours and at its capacity (one of its open legs is this
conversation's), and for the intent its leg was opened for whatever its success rate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Literal, Protocol

from connector.config import Route
from connector.routing.decision import Condition
from connector.sessions import Leg

Rates = Callable[[str, str], tuple[int, int]]
"""(successes, outcomes) of a provider for an intent (``connector.outcomes.SuccessRates``)."""


def unmeasured(_provider: str, _intent: str) -> tuple[int, int]:
    """No outcomes for anyone: every ``min_success_rate`` holds."""
    return 0, 0


class Checks(Protocol):
    """A router's ``check``: why a provider may not take a conversation now (None: it may),
    for the parts of the routing that ask it of the router they serve."""

    def check(
        self,
        provider: str,
        confidence: float,
        channel: str | None,
        intent: str | None = None,
        *,
        held: Leg | None = None,
    ) -> str | None: ...


class Conditions:
    """What the conditions are checked against: the providers' health (``unavailable``:
    why one cannot take conversations, None: it can), their open legs, their success rates
    and the clock business hours are read by. Holds no rules: those are the route's."""

    def __init__(
        self,
        unavailable: Callable[[str], str | None],
        open_legs: Mapping[str, int],
        success: Rates,
        clock: Callable[[], datetime],
    ) -> None:
        self._unavailable = unavailable
        self._open_legs = open_legs
        self._success = success
        self._clock = clock

    def of(
        self,
        provider: str,
        route: Route | None,
        confidence: float,
        channel: str | None,
        intent: str | None,
        held: Leg | None,
        min_outcomes: int,
    ) -> Iterator[Condition]:
        """Each condition on ``provider`` (its ``route``, None: it has none) taking a
        message at ``confidence`` on ``channel`` (None: whichever it serves) for ``intent``
        (None: no success rate checked); ``held``: the open leg through which it has the
        conversation already; ``min_outcomes``: the outcomes a rate is judged from."""
        if route is not None:
            open_legs = self._open_legs.get(provider, 0)
            yield from route_conditions(
                route, confidence, channel, self._clock, open_legs, holding=held is not None
            )
            if route.min_success_rate is not None and intent:
                good, total = self._success(provider, intent)
                kept = held is not None and held.opened_for == intent
                yield success_condition(
                    intent, good, total, route.min_success_rate, min_outcomes, kept=kept
                )
        problem = self._unavailable(provider)
        yield Condition("health", problem is None, problem or "healthy")


def route_conditions(
    route: Route,
    confidence: float,
    channel: str | None,
    clock: Callable[[], datetime],
    open_legs: int,
    *,
    holding: bool = False,
) -> Iterator[Condition]:
    """Each condition ``route`` sets, evaluated for a message at ``confidence`` on
    ``channel`` (None: whichever it serves), with ``open_legs`` conversations open now.
    ``holding``: the conversation is with this provider already, and stays with it after
    its hours and at capacity (those say which conversations it takes, not which it keeps;
    one of its open legs is this conversation's)."""
    needed = route.min_confidence
    if needed is not None:
        ok = confidence >= needed
        yield Condition(
            "min_confidence",
            ok,
            f"confidence {confidence:.2f} "
            + (f"at least {needed:.2f}" if ok else f"below its minimum {needed:.2f}"),
        )
    channels = route.channels
    if channel is not None and channels is not None:
        ok = channel in channels
        yield Condition(
            "channels", ok, f"{'serves' if ok else 'does not serve'} channel {channel!r}"
        )
    if route.hours is not None:
        closed = route.hours.closed(clock())
        if closed is not None and holding:
            yield Condition("hours", True, f"{closed}; keeps the conversation it has")
        else:
            yield Condition("hours", closed is None, closed or "open now")
    cap = route.max_open_legs
    if cap is not None and holding:
        yield Condition(
            "capacity", True, f"{open_legs} of {cap} open conversations, this one among them"
        )
    elif cap is not None:
        ok = open_legs < cap
        yield Condition(
            "capacity",
            ok,
            f"{open_legs} of {cap} open conversations"
            if ok
            else f"at capacity ({cap} open conversations)",
        )


Judgement = Literal["too few", "below min", "ok"]


def judged(good: int, total: int, needed: float, enough: int) -> Judgement:
    """A success rate of ``good`` in ``total`` against the minimum ``needed``, judged only
    from ``enough`` outcomes on (``too few``: the minimum holds)."""
    if total < enough:
        return "too few"
    return "ok" if good / total >= needed else "below min"


def success_condition(
    intent: str, good: int, total: int, needed: float, enough: int, *, kept: bool
) -> Condition:
    """The success rate ``good`` of ``total`` for ``intent`` against the minimum ``needed``,
    judged from ``enough`` outcomes on; ``kept``: the provider has the conversation for this
    intent already (it keeps it)."""
    judgement = judged(good, total, needed, enough)
    if judgement == "too few":
        return Condition(
            "success_rate",
            True,
            f"{total} outcome(s) for {intent}, fewer than the {enough} needed to judge",
        )
    rate = good / total
    ok = judgement == "ok"
    detail = f"success rate {rate:.0%} for {intent} ({good} of {total}) " + (
        f"at least {needed:.0%}" if ok else f"below its minimum {needed:.0%}"
    )
    if not ok and kept:
        return Condition("success_rate", True, f"{detail}; keeps the conversation it has")
    return Condition("success_rate", ok, detail)

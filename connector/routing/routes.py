"""One route of ``routing.yaml``: which intents it serves (names and fnmatch patterns,
compiled once), and the conditions of its own under which it may take a conversation
(minimum confidence, channels, business hours, capacity). Health is the router's to add: it
is the providers' state, not the route's."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime
from fnmatch import translate

from connector.config import Route
from connector.routing.decision import Condition


class CompiledRoute:
    """A route with its intent patterns compiled."""

    __slots__ = ("exact", "name", "pattern", "route")

    def __init__(self, name: str, route: Route) -> None:
        self.name = name
        self.route = route
        self.exact = {i for i in route.intents if not any(c in i for c in "*?[")}
        globs = [translate(i) for i in route.intents if i not in self.exact]
        self.pattern = re.compile("|".join(globs)) if globs else None

    def serves(self, intent: str) -> bool:
        return intent in self.exact or bool(self.pattern and self.pattern.match(intent))


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

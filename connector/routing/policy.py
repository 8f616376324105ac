"""Routing rules: which provider may serve an intent, and on what conditions.

The router keeps a conversation with its current provider while that provider serves the
intent of the new message (or the message is too uncertain to justify a switch), and
otherwise picks the first provider, in ``routing.yaml`` order, that serves the intent and
whose conditions hold: minimum confidence, channel, capacity (open legs), health and its
circuit breaker.
Out-of-scope messages of a new conversation go to the fallback provider. A *sticky*
provider (a human agent) keeps the conversation until it hands it back.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from fnmatch import translate

from connector.config import Route, RoutingConfig
from connector.interfaces import IntentResult
from connector.routing.decision import Candidate, RouteDecision
from connector.sessions import MidTierSession


class _CompiledRoute:
    __slots__ = ("exact", "name", "pattern", "route")

    def __init__(self, name: str, route: Route) -> None:
        self.name = name
        self.route = route
        self.exact = {i for i in route.intents if not any(c in i for c in "*?[")}
        globs = [translate(i) for i in route.intents if i not in self.exact]
        self.pattern = re.compile("|".join(globs)) if globs else None

    def serves(self, intent: str) -> bool:
        return intent in self.exact or bool(self.pattern and self.pattern.match(intent))


class Router:
    """Turns an intent into a route decision. Pure: all state is passed in."""

    def __init__(
        self,
        config: RoutingConfig,
        *,
        unavailable: Callable[[str], str | None] = lambda _name: None,
        open_legs: Mapping[str, int] | None = None,
    ) -> None:
        self.config = config
        self._routes = [_CompiledRoute(n, r) for n, r in config.routes.items()]
        self._by_name = {r.name: r for r in self._routes}
        self._serving: dict[str, list[_CompiledRoute]] = {}
        self._unavailable = unavailable
        self._open_legs: Mapping[str, int] = open_legs if open_legs is not None else {}

    def providers_for(self, intent: str) -> list[str]:
        """Providers serving ``intent``, in configuration order."""
        return [r.name for r in self._serving_routes(intent)]

    def serves(self, provider: str, intent: str) -> bool:
        route = self._by_name.get(provider)
        return bool(route and route.serves(intent))

    def is_sticky(self, provider: str | None) -> bool:
        route = self._by_name.get(provider or "")
        return bool(route and route.route.sticky)

    def _serving_routes(self, intent: str) -> list[_CompiledRoute]:
        found = self._serving.get(intent)
        if found is None:
            found = self._serving[intent] = [r for r in self._routes if r.serves(intent)]
        return found

    def check(self, provider: str, confidence: float, channel: str) -> str | None:
        """Why ``provider`` may not take a conversation now (None: it may)."""
        route = self._by_name.get(provider)
        if route is not None:
            needed = route.route.min_confidence
            if needed is not None and confidence < needed:
                return f"confidence {confidence:.2f} below its minimum {needed:.2f}"
            if route.route.channels is not None and channel not in route.route.channels:
                return f"does not serve channel {channel!r}"
            cap = route.route.max_open_legs
            if cap is not None and self._open_legs.get(provider, 0) >= cap:
                return f"at capacity ({cap} open conversations)"
        return self._unavailable(provider)

    def decide(self, session: MidTierSession, intent: IntentResult) -> RouteDecision:
        """The decision for one user message of ``session``."""
        current = session.current_provider
        name, conf = intent.name, intent.confidence
        base = {
            "previous": current,
            "intent": name,
            "confidence": conf,
            "out_of_scope": intent.out_of_scope,
        }
        if current is not None and self.is_sticky(current):
            return RouteDecision(
                action="stay",
                provider=current,
                reason=f"{current} keeps the conversation until it hands it back",
                **base,
            )
        confident = (
            name is not None and not intent.out_of_scope and conf >= self.config.min_confidence
        )
        if not confident:
            why = (
                "out of scope"
                if intent.out_of_scope or name is None
                else (f"confidence {conf:.2f} below {self.config.min_confidence:.2f}")
            )
            if current is not None:
                return RouteDecision(
                    action="stay", provider=current, reason=f"{why}; staying with {current}", **base
                )
            target = (
                self.config.fallback
                if intent.out_of_scope or name is None
                else (self.config.default or self.config.fallback)
            )
            action = "fallback" if target == self.config.fallback else "open"
            return RouteDecision(
                action=action,
                provider=target,
                reason=f"{why}; new conversation",
                next_best=self.config.fallback if target != self.config.fallback else None,
                **base,
            )
        assert name is not None
        leg = session.current_leg
        if (
            leg is not None
            and leg.data.get("expecting_input")
            and conf < self.config.interrupt_confidence
        ):
            return RouteDecision(
                action="stay",
                provider=current,
                reason=f"{current} is waiting for an answer and {name} at {conf:.2f} "
                f"is below {self.config.interrupt_confidence:.2f} to interrupt it",
                **base,
            )
        if (
            current is not None
            and self.serves(current, name)
            and self.check(current, conf, session.channel) is None
        ):
            return RouteDecision(
                action="stay", provider=current, reason=f"{current} serves {name}", **base
            )
        alternatives = []
        for route in self._serving_routes(name):
            problem = self.check(route.name, conf, session.channel)
            alternatives.append(
                Candidate(
                    provider=route.name,
                    eligible=problem is None,
                    reason=problem or f"serves {name}",
                )
            )
        eligible = [c.provider for c in alternatives if c.eligible]
        if eligible:
            chosen = eligible[0]
            rest = [*eligible[1:], self.config.fallback]
            return RouteDecision(
                action="open" if current is None else "switch",
                provider=chosen,
                reason=f"{chosen} serves {name}" + (f"; {current} does not" if current else ""),
                next_best=next((p for p in rest if p != chosen), None),
                alternatives=alternatives,
                **base,
            )
        why = (
            "; ".join(f"{c.provider}: {c.reason}" for c in alternatives) or "no provider serves it"
        )
        return RouteDecision(
            action="fallback",
            provider=self.config.fallback,
            reason=f"no eligible provider for {name} ({why})",
            alternatives=alternatives,
            **base,
        )

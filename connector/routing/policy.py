"""Routing rules: which provider may serve an intent, and on what conditions.

The router keeps a conversation with its current provider while that provider serves the
intent of the new message (or the message is too uncertain to justify a switch), and
otherwise picks the first provider, in ``routing.yaml`` order, that serves the intent and
whose conditions hold (:mod:`connector.routing.conditions`): minimum confidence, channel,
business hours (``hours``: time zone, weekly spans, holidays), capacity (open legs), the
provider's measured success rate for the intent (``min_success_rate``), health and its
circuit breaker.
Out-of-scope messages of a new conversation go to the fallback provider. A *sticky*
provider (a human agent) keeps the conversation until it hands it back.

A provider that asked a question (its last reply was ``expectingInput``) keeps the next
message unless the route that would take it is sure enough to interrupt: the route's own
``interrupt_confidence``, or the global one. What must reach a person (fraud, a lost card)
sets a low one, so that "someone used my card" does not become the disputes bot's merchant.

A route whose ``channels`` leave out the user's channel is skipped; but when it is the best
route for the intent and could take the conversation on one of its channels, the decision is
``move`` (:mod:`connector.routing.moves`).

Every decision carries a short ``summary`` for people ("reported fraud", from the
``labels`` of ``routing.yaml``) and the detailed ``reason`` behind it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from connector.config import Route, RoutingConfig
from connector.interfaces import IntentResult
from connector.routing.conditions import Conditions, Rates, unmeasured
from connector.routing.decision import Action, Candidate, Condition, Labels, RouteDecision
from connector.routing.moves import elsewhere_only
from connector.routing.next_best import next_best
from connector.routing.routes import CompiledRoute
from connector.sessions import Leg, MidTierSession


class Router:
    """Turns an intent into a route decision. Pure: all state is passed in."""

    def __init__(
        self,
        config: RoutingConfig,
        *,
        unavailable: Callable[[str], str | None] = lambda _name: None,
        open_legs: Mapping[str, int] | None = None,
        success: Rates = unmeasured,
        reachable: Collection[str] = (),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """``success``: (successes, outcomes) of a provider for an intent in the window
        (:class:`connector.outcomes.SuccessRates`); ``reachable``: the channels a
        conversation can be moved to (none: never ``move``); ``clock``: the time business
        hours are checked at."""
        self.reachable: Collection[str] = frozenset(reachable)  # where a conversation may move
        legs: Mapping[str, int] = open_legs if open_legs is not None else {}
        self._state = Conditions(unavailable, legs, success, clock)
        self.reconfigure(config)

    def reconfigure(self, config: RoutingConfig) -> None:
        """Route by ``config`` from now on (``midtier reload``). Synchronous, so no decision
        on the event loop sees half of the old rules and half of the new."""
        self.config = config
        self._routes = [CompiledRoute(n, r) for n, r in config.routes.items()]
        self._by_name = {r.name: r for r in self._routes}
        self._serving: dict[str, list[CompiledRoute]] = {}
        self._labels = Labels(config.labels)

    @property
    def fallback(self) -> str:
        """The provider of last resort (``routing.yaml`` ``fallback``)."""
        return self.config.fallback

    def providers_for(self, intent: str) -> list[str]:
        """Providers serving ``intent``, in configuration order."""
        return [r.name for r in self._serving_routes(intent)]

    def serves(self, provider: str, intent: str) -> bool:
        route = self._by_name.get(provider)
        return bool(route and route.serves(intent))

    def route(self, provider: str) -> Route:
        """``provider``'s route (``KeyError`` for one ``routing.yaml`` has none for)."""
        return self._by_name[provider].route

    def is_sticky(self, provider: str | None) -> bool:
        route = self._by_name.get(provider or "")
        return bool(route and route.route.sticky)

    def _serving_routes(self, intent: str) -> list[CompiledRoute]:
        found = self._serving.get(intent)
        if found is None:
            found = self._serving[intent] = [r for r in self._routes if r.serves(intent)]
        return found

    def check(
        self,
        provider: str,
        confidence: float,
        channel: str | None,
        intent: str | None = None,
        *,
        held: Leg | None = None,
    ) -> str | None:
        """Why ``provider`` may not take a conversation now (None: it may); ``channel``
        None: on whichever channel it serves; ``intent``: the message's (None: no success
        rate is checked); ``held``: the open leg through which ``provider`` has the
        conversation already (it keeps it outside its hours and at capacity, and for the
        intent it was opened for whatever its success rate)."""
        for condition in self._conditions(provider, confidence, channel, intent, held):
            if not condition.holds:
                return condition.detail
        return None

    def conditions(
        self,
        provider: str,
        confidence: float,
        channel: str | None,
        intent: str | None = None,
        *,
        held: Leg | None = None,
    ) -> list[Condition]:
        """Every condition on ``provider`` taking a conversation now, each with its result
        (``midtier route explain``); ``check`` stops at the first that fails."""
        return list(self._conditions(provider, confidence, channel, intent, held))

    def _conditions(
        self,
        provider: str,
        confidence: float,
        channel: str | None,
        intent: str | None,
        held: Leg | None,
    ) -> Iterator[Condition]:
        found = self._by_name.get(provider)
        route = found.route if found is not None else None
        enough = self.config.success_rate.min_outcomes
        return self._state.of(provider, route, confidence, channel, intent, held, enough)

    def label(self, intent: str | None) -> str:
        """How the intent reads to people: its configured label, or a default phrase."""
        return self._labels(intent)

    def interrupt_needed(self, provider: str) -> float:
        """The confidence ``provider``'s intents need to interrupt a waiting provider."""
        route = self._by_name.get(provider)
        own = route.route.interrupt_confidence if route is not None else None
        return self.config.interrupt_confidence if own is None else own

    def decide(
        self, session: MidTierSession, intent: IntentResult, *, chosen: bool = False
    ) -> RouteDecision:
        """The decision for one user message of ``session``: the rules, then the next best
        action of ``routing.yaml`` (not for an intent the user ``chosen`` when asked)."""
        decision = self._rules(session, intent)
        nba = self.config.next_best_action
        if chosen or not (nba.by_intent or nba.by_confidence):
            return decision
        return next_best(self, session, intent, decision)

    def _rules(self, session: MidTierSession, intent: IntentResult) -> RouteDecision:
        current = session.current_provider
        name, conf = intent.name, intent.confidence
        base: dict[str, Any] = {
            "previous": current,
            "intent": name,
            "confidence": conf,
            "out_of_scope": intent.out_of_scope,
        }
        confident = (
            name is not None and not intent.out_of_scope and conf >= self.config.min_confidence
        )
        if current is not None and self.is_sticky(current):
            return RouteDecision(
                action="stay",
                provider=current,
                summary=self.label(name) if confident else f"carried on with {current}",
                reason=f"{current} keeps the conversation until it hands it back",
                **base,
            )
        if not confident:
            why = (
                "out of scope"
                if intent.out_of_scope or name is None
                else (f"confidence {conf:.2f} below {self.config.min_confidence:.2f}")
            )
            if current is not None:
                return RouteDecision(
                    action="stay",
                    provider=current,
                    summary=f"carried on with {current}",
                    reason=f"{why}; staying with {current}",
                    **base,
                )
            target = (
                self.config.fallback
                if intent.out_of_scope or name is None
                else (self.config.default or self.config.fallback)
            )
            action: Action = "fallback" if target == self.config.fallback else "open"
            return RouteDecision(
                action=action,
                provider=target,
                summary=self.label(None) if action == "fallback" else "started a conversation",
                reason=f"{why}; new conversation",
                next_best=self.config.fallback if target != self.config.fallback else None,
                **base,
            )
        assert name is not None
        label = self.label(name)
        leg = session.current_leg
        if (
            current is not None
            and self.serves(current, name)
            and self.check(current, conf, session.channel, name, held=leg) is None
        ):
            return RouteDecision(
                action="stay",
                provider=current,
                summary=label,
                reason=f"{current} serves {name}",
                **base,
            )
        waiting = current is not None and leg is not None and bool(leg.data.get("expecting_input"))
        alternatives = []
        held_back = False  # a route that could take it, but not from a provider mid-question
        for route in self._serving_routes(name):
            held = session.held_by(route.name)
            problem = self.check(route.name, conf, session.channel, name, held=held)
            if problem is None and waiting:
                needed = self.interrupt_needed(route.name)
                if conf < needed:
                    held_back = True
                    problem = (
                        f"confidence {conf:.2f} below {needed:.2f} to interrupt {current}, "
                        "which is waiting for an answer"
                    )
            alternatives.append(
                Candidate(
                    provider=route.name,
                    eligible=problem is None,
                    reason=problem or f"serves {name}",
                )
            )
        eligible = [c.provider for c in alternatives if c.eligible]
        elsewhere = elsewhere_only(self, session, alternatives, name, conf, waiting)
        if elsewhere is not None:
            target, channels = elsewhere
            return RouteDecision(
                action="move",
                provider=target,
                summary=label,
                reason=f"{target} serves {name} on {', '.join(channels)} only; "
                "offered to continue there",
                next_best=(eligible or [self.config.fallback])[0],
                channels=channels,
                alternatives=alternatives,
                **base,
            )
        if eligible:
            chosen = eligible[0]
            rest = [*eligible[1:], self.config.fallback]
            return RouteDecision(
                action="open" if current is None else "switch",
                provider=chosen,
                summary=label,
                reason=f"{chosen} serves {name}" + (f"; {current} does not" if current else ""),
                next_best=next((p for p in rest if p != chosen), None),
                alternatives=alternatives,
                **base,
            )
        if waiting and (held_back or conf < self.config.interrupt_confidence):
            # Most likely the answer to the provider's question ("Coffee Corp"), not a new
            # request: the provider gets it.
            return RouteDecision(
                action="stay",
                provider=current,
                summary=f"answered the question {current} asked",
                reason=f"{current} is waiting for an answer and {name} at {conf:.2f} "
                "is not enough to interrupt it",
                alternatives=alternatives,
                **base,
            )
        why = (
            "; ".join(f"{c.provider}: {c.reason}" for c in alternatives) or "no provider serves it"
        )
        return RouteDecision(
            action="fallback",
            provider=self.config.fallback,
            summary=label,
            reason=f"no eligible provider for {name} ({why})",
            alternatives=alternatives,
            **base,
        )

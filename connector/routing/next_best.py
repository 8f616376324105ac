"""The next best action of ``routing.yaml``: after the rules have decided, per intent or
else per confidence band, stay with the current provider, switch as the rules said, ask the
user to choose between the providers of the top intents, or escalate to a person.

    next_best_action:
      by_intent: {report_fraud: escalate}
      by_confidence:            # the first band whose ``below`` the top confidence is under
        - {below: 0.6, action: ask}
      max_choices: 3
      titles: {dispute_charge: Dispute a charge}   # button titles (default: the intent's words)
      escalate_to: agents       # default: the fallback provider

It never overrides a provider that keeps the conversation (sticky: a person), a bot waiting
for the answer to its question, a ``move``, or an out-of-scope message.
"""

from __future__ import annotations

from typing import Any, Protocol

from connector.config import RoutingConfig
from connector.interfaces import IntentResult
from connector.routing.conditions import Checks
from connector.routing.decision import Choice, RouteDecision, words
from connector.sessions import MidTierSession


class Router(Checks, Protocol):
    """What of ``connector.routing.policy.Router`` (the caller) the next best action reads."""

    config: RoutingConfig

    @property
    def fallback(self) -> str: ...

    def is_sticky(self, provider: str | None) -> bool: ...

    def label(self, intent: str | None) -> str: ...

    def providers_for(self, intent: str) -> list[str]: ...


def next_best(
    router: Router, session: MidTierSession, intent: IntentResult, decision: RouteDecision
) -> RouteDecision:
    """``decision`` as the next best action turns it (or ``decision`` itself)."""
    name, conf = intent.name, intent.confidence
    current = session.current_provider
    leg = session.current_leg
    if (
        name is None
        or intent.out_of_scope
        or decision.action == "move"
        or router.is_sticky(current)
        or (leg is not None and bool(leg.data.get("expecting_input")))
    ):
        return decision
    nba = router.config.next_best_action
    action = nba.by_intent.get(name)
    why = f"next best action for {name}"
    if action is None:
        band = next((b for b in nba.by_confidence if conf < b.below), None)
        if band is None:
            return decision
        action, why = band.action, f"confidence {conf:.2f} under {band.below:.2f}"
    base: dict[str, Any] = {
        "previous": current,
        "intent": name,
        "confidence": conf,
        "out_of_scope": False,
        "alternatives": decision.alternatives,
    }
    if action == "stay" and current is not None and decision.provider != current:
        return RouteDecision(
            action="stay",
            provider=current,
            summary=f"carried on with {current}",
            reason=f"{why}: stay with {current} (the rules: {decision.action} "
            f"to {decision.provider}, {decision.reason})",
            **base,
        )
    if action == "escalate":
        target = nba.escalate_to or router.fallback
        if target == current:
            return decision
        return RouteDecision(
            action="escalate",
            provider=target,
            summary=router.label(name),
            reason=f"{why}: escalate to {target}",
            next_best=router.fallback if target != router.fallback else None,
            **base,
        )
    if action == "ask":
        choices = _choices(router, session, intent)
        if len(choices) < 2:
            return decision.model_copy(
                update={"reason": f"{decision.reason}; {why}: not asked, one provider serves it"}
            )
        listed = ", ".join(f"{c.intent} ({c.provider})" for c in choices)
        return RouteDecision(
            action="ask",
            provider=current,
            summary="asked the user to choose",
            reason=f"{why}: asked the user to choose between {listed}",
            choices=choices,
            **base,
        )
    return decision  # switch: as the rules decided (or stay without a provider to stay with)


def _choices(router: Router, session: MidTierSession, intent: IntentResult) -> list[Choice]:
    """The top intents' providers, one choice per provider, best first. Checked as if the
    user had chosen (at full confidence): a chosen intent is routed at 1.0."""
    nba = router.config.next_best_action
    found: list[Choice] = []
    for name, confidence in intent.ranking:
        provider = next(
            (
                p
                for p in router.providers_for(name)
                if router.check(p, 1.0, session.channel, name, held=session.held_by(p)) is None
            ),
            None,
        )
        if provider is None or any(c.provider == provider for c in found):
            continue
        title = nba.titles.get(name) or _title(name)
        found.append(Choice(intent=name, provider=provider, title=title, confidence=confidence))
        if len(found) == nba.max_choices:
            break
    return found


def _title(intent: str) -> str:
    text = words(intent)
    return text[:1].upper() + text[1:]

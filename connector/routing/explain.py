"""What the router would do with one message, and why: the classifier's ranking, the
decision, and every condition of every route (``midtier route explain``, the routing
playground). Pure: it reads the router and a session, and changes neither."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from connector.interfaces import IntentResult
from connector.routing.policy import Router
from connector.sessions import MidTierSession


def new_session(channel: str) -> MidTierSession:
    """The new conversation a question is explained in when no stored session is named
    (never saved)."""
    return MidTierSession(user_id="explain", channel=channel, channel_conversation_id="explain")


def explain(
    router: Router,
    intent: IntentResult,
    session: MidTierSession,
    text: str,
    *,
    stored: bool,
    at: datetime,
) -> dict[str, Any]:
    """A JSON-ready explanation of ``router.decide(session, intent)`` for ``text``, decided
    at ``at``; ``session`` is None in it unless the session is ``stored``.

    ``routes`` lists every route of ``routing.yaml`` in order: whether it serves the intent,
    and each of its conditions (``min_confidence``, ``channels``, ``hours``, ``capacity``,
    ``success_rate``, ``health``) with its result and detail.
    """
    decision = router.decide(session, intent)
    routes = []
    for name in router.config.routes:
        serves = intent.name is not None and router.serves(name, intent.name)
        conditions = router.conditions(
            name, intent.confidence, session.channel, intent.name, held=session.held_by(name)
        )
        routes.append(
            {
                "provider": name,
                "serves_intent": serves,
                "sticky": router.is_sticky(name),
                "conditions": [
                    {"name": c.name, "holds": c.holds, "detail": c.detail} for c in conditions
                ],
                "eligible": serves and all(c.holds for c in conditions),
            }
        )
    return {
        "text": text,
        "channel": session.channel,
        "session": session.id if stored else None,
        "current_provider": session.current_provider,
        "intent": intent.name,
        "confidence": intent.confidence,
        "confidence_of": router.config.nlu.threshold_on,  # the intent's, or its provider's
        "out_of_scope": intent.out_of_scope,
        "ranking": [{"intent": name, "confidence": p} for name, p in intent.ranking],
        "decision": decision.model_dump(mode="json", exclude={"at", "message_id"}),
        "routes": routes,
        "fallback": router.config.fallback,
        "at": at.isoformat(),
    }


def render(found: dict[str, Any]) -> str:
    """The explanation as text for a terminal."""
    lines = [f"message: {found['text']!r} on {found['channel']}"]
    current = found["current_provider"]
    if found["session"] is None:
        lines.append("session: a new conversation")
    else:
        lines.append(f"session: {found['session']} (current provider: {current or 'none'})")
    scope = "out of scope" if found["out_of_scope"] else f"intent {found['intent']}"
    summed = " (its provider's, over its baseline)" if found["confidence_of"] == "provider" else ""
    lines += ["", f"classifier: {scope} at {found['confidence']:.2f}{summed}"]
    for n, row in enumerate(found["ranking"], 1):
        lines.append(f"  {n}. {row['intent']:<32} {row['confidence']:.3f}")
    d = found["decision"]
    lines += [
        "",
        f"decision: {d['action']} -> {d['provider']}  ({d['summary']})",
        f"  reason: {d['reason']}",
    ]
    if d.get("next_best"):
        lines.append(f"  next best: {d['next_best']}")
    lines += ["", f"routes (in routing.yaml order; fallback: {found['fallback']}):"]
    for route in found["routes"]:
        serves = "serves the intent" if route["serves_intent"] else "does not serve the intent"
        flags = ", sticky" if route["sticky"] else ""
        mark = "eligible" if route["eligible"] else "not eligible"
        lines.append(f"  {route['provider']}: {serves}{flags}; {mark}")
        for c in route["conditions"]:
            mark = {True: "ok  ", False: "FAIL", None: "?   "}[c["holds"]]
            lines.append(f"    {mark} {c['name']:<15} {c['detail']}")
    return "\n".join(lines)

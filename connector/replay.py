"""Recorded conversations decided again by another routing configuration or classifier
(``midtier replay``): where the decisions would change, and what that does to who serves.

Each user message that has a recorded route decision is classified and decided again, in
transcript order, by a :class:`~connector.routing.policy.Router` on the other
configuration, against a session of its own that starts as a new conversation on the
recorded session's channel. Who holds that session follows the *replayed* decisions. What a
live server knows and a recording does not is approximated as :data:`ASSUMPTIONS`
says (the command's help and README.md say the same).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from connector.interfaces import IntentResult
from connector.routing.conditions import Rates, unmeasured
from connector.routing.config import RoutingConfig
from connector.routing.decision import RouteDecision
from connector.routing.moves import MOVES_OFFERED
from connector.routing.policy import Router
from connector.session_lines import ExportedEntry, ExportedSession, SessionLine
from connector.sessions import LEG_INTENT, Leg, MidTierSession

Classify = Callable[[str], IntentResult]
NO_INTENT = IntentResult(name=None, confidence=0.0, out_of_scope=True)  # a message without text
EXPECTING_INPUT = "expectingInput"
_REPLAY_CONVERSATION = "replay"  # the replayed session's channel conversation: none is real

ASSUMPTIONS = """\
What a replay assumes (a recording does not hold all that a live server knows):
- The user says what they said in the recording, whoever the replay gave them to.
- A change of provider that the recording shows between two messages and that no route
  decision made (a bot's handoff request, an agent's resolve or transfer, a provider that
  failed) is made in the replay too when the replay's provider is the one it came from.
  So a sticky provider keeps the conversation until the recorded session's leg with it
  closed; one that only the replay gave it to keeps it to the end.
- A bot is waiting for an answer (expectingInput) when it has the conversation in the
  replay and the recording shows it asking (a reply of its with that input hint) since the
  previous message.
- Business hours are checked at the time each message was recorded; every provider is
  healthy and has room (health, circuit breakers and open legs live in the running server).
- ``min_success_rate`` is checked against the success rates the store of ``--data`` has
  now (``success_rate.window_h`` back from now, the same for every message); without a
  store every provider meets its minimum.
- A user message without a recorded decision (a continuation code, one not yet processed)
  is not replayed; a number answering offered choices is classified as typed.
"""


def is_switch(decision: RouteDecision) -> bool:
    """Whether the decision takes the conversation from one provider to another."""
    return (
        decision.action != "move"
        and decision.previous is not None
        and decision.provider is not None
        and decision.provider != decision.previous
    )


@dataclass(frozen=True)
class Step:
    """One user message: its recorded decision and the replayed one."""

    entry: ExportedEntry
    recorded: RouteDecision
    replayed: RouteDecision

    @property
    def changed(self) -> bool:
        """A different action or provider (the reasons may differ anyway)."""
        return (self.recorded.action, self.recorded.provider) != (
            self.replayed.action,
            self.replayed.provider,
        )


@dataclass(frozen=True)
class SessionReplay:
    """What replaying one session found."""

    session: ExportedSession
    steps: list[Step]
    unmatched: int  # user messages without a recorded decision: not replayed

    @property
    def changes(self) -> list[Step]:
        return [s for s in self.steps if s.changed]


class _Clock:
    """The time the router checks business hours at: the replayed message's."""

    def __init__(self) -> None:
        self.at = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.at


class Replayer:
    """Replays sessions through one routing configuration and one classifier."""

    def __init__(
        self,
        routing: RoutingConfig,
        classify: Classify,
        *,
        reachable: Collection[str] = (),
        success: Rates = unmeasured,
    ) -> None:
        """``reachable``: the channels a conversation can move to (as the server's router);
        ``success``: (successes, outcomes) per provider and intent (none: every minimum
        holds)."""
        self._clock = _Clock()
        self.router = Router(routing, reachable=reachable, success=success, clock=self._clock)
        self._classify = classify

    def replay(self, line: SessionLine) -> SessionReplay:
        """Decide each recorded user message of ``line`` again (see the module docstring)."""
        pairs, unmatched = _pairs(line)
        legs = {leg.id: leg for leg in line.session.legs}
        first = line.session.legs[0].channel if line.session.legs else line.session.channel
        session = MidTierSession(
            id=line.session.id,
            user_id="replay",
            channel=first,
            channel_conversation_id=_REPLAY_CONVERSATION,
        )
        steps = []
        for k, (at, entry, recorded) in enumerate(pairs):
            leg = legs.get(entry.leg_id or "")
            if leg is not None:  # the channel the message came in on (a session may move)
                session.channel = leg.channel
            intent = self._classify(entry.text) if entry.text else NO_INTENT
            self._clock.at = entry.at
            replayed = self.router.decide(session, intent)
            steps.append(Step(entry, recorded, replayed))
            _follow(session, replayed, entry.at)
            if k + 1 < len(pairs):
                until, following, after = pairs[k + 1]
                _outside(session, recorded, after.previous, following.at)
                _expecting(session, line.transcript[at + 1 : until])
        return SessionReplay(line.session, steps, unmatched)


def _pairs(line: SessionLine) -> tuple[list[tuple[int, ExportedEntry, RouteDecision]], int]:
    """(transcript index, user message, its recorded decision), in order; and how many user
    messages have none. Decisions name their message; older ones without ids pair in order."""
    users = [(i, e) for i, e in enumerate(line.transcript) if e.speaker == "user"]
    if any(d.message_id for d in line.decisions):
        by_id: dict[str, RouteDecision] = {}
        for d in line.decisions:
            if d.message_id:
                by_id.setdefault(d.message_id, d)  # a message routed again later keeps its first
        pairs = [(i, e, by_id[e.message_id]) for i, e in users if e.message_id in by_id]
    else:
        pairs = [(i, e, d) for (i, e), d in zip(users, line.decisions, strict=False)]
    return pairs, len(users) - len(pairs)


def _hold(
    session: MidTierSession, provider: str | None, at: datetime, intent: str | None = None
) -> None:
    """``provider`` holds the replayed conversation from ``at`` (None: nobody), for
    ``intent`` (None: the intent the leg before it was opened for, as the server's switch)."""
    leg = session.current_leg
    if leg is not None:
        leg.closed_at = at
    if provider is not None:
        opened_for = intent or (leg.opened_for if leg is not None else "")
        session.legs.append(
            Leg(
                channel=session.channel,
                channel_conversation_id=_REPLAY_CONVERSATION,
                provider=provider,
                opened_at=at,
                data={LEG_INTENT: opened_for} if opened_for else {},
            )
        )


def _follow(session: MidTierSession, decision: RouteDecision, at: datetime) -> None:
    """What the server does with the decision to the session's holder."""
    if decision.action == "move":  # offered once; the holder keeps it while the user stays
        offered = session.channel_state.setdefault(MOVES_OFFERED, [])
        offered.append(decision.provider)
    elif decision.provider != session.current_provider:
        _hold(session, decision.provider, at, decision.intent)


def _outside(
    session: MidTierSession, recorded: RouteDecision, then: str | None, at: datetime
) -> None:
    """A change of holder in the recording between two messages that no route decision
    made, followed when the replay's holder is the provider it came from."""
    held = recorded.previous if recorded.action == "move" else recorded.provider
    if then != held and session.current_provider == held:
        _hold(session, then, at)


def _expecting(session: MidTierSession, between: list[ExportedEntry]) -> None:
    """Whether the replay's holder asked a question in the recording since the message."""
    leg = session.current_leg
    if leg is not None:
        leg.data["expecting_input"] = any(
            e.provider == leg.provider and e.input_hint == EXPECTING_INPUT
            for e in between
            if e.speaker in ("bot", "agent")
        )


@dataclass
class Totals:
    """Sums over a replay; ``as_json`` gives the keys README.md documents."""

    sessions: int = 0
    sessions_changed: int = 0
    messages: int = 0
    changed: int = 0
    switches_added: int = 0
    switches_removed: int = 0
    unmatched: int = 0
    bad_lines: int = 0
    gained: Counter[str] = field(default_factory=Counter)
    lost: Counter[str] = field(default_factory=Counter)

    def add(self, found: SessionReplay) -> None:
        """Count one replayed session."""
        self.sessions += 1
        self.messages += len(found.steps)
        self.unmatched += found.unmatched
        changes = found.changes
        self.sessions_changed += bool(changes)
        self.changed += len(changes)
        for step in changes:
            before, after = is_switch(step.recorded), is_switch(step.replayed)
            self.switches_added += after and not before
            self.switches_removed += before and not after
            if step.recorded.provider != step.replayed.provider:
                if step.replayed.provider is not None:
                    self.gained[step.replayed.provider] += 1
                if step.recorded.provider is not None:
                    self.lost[step.recorded.provider] += 1

    def as_json(self) -> dict[str, Any]:
        """The final object of ``midtier replay --json``."""
        names = sorted({*self.gained, *self.lost})
        return {
            "type": "totals",
            "sessions": self.sessions,
            "sessions_changed": self.sessions_changed,
            "messages": self.messages,
            "changed": self.changed,
            "switches_added": self.switches_added,
            "switches_removed": self.switches_removed,
            "providers": {n: {"gained": self.gained[n], "lost": self.lost[n]} for n in names},
            "unmatched_messages": self.unmatched,
            "bad_lines": self.bad_lines,
        }


def decision_json(decision: RouteDecision) -> dict[str, Any]:
    """The parts of a decision a replay's output shows."""
    return decision.model_dump(
        mode="json",
        include={"action", "provider", "previous", "intent", "confidence", "summary", "reason"},
    )


def session_json(found: SessionReplay) -> dict[str, Any]:
    """One changed session, as ``midtier replay --json`` prints it."""
    return {
        "type": "session",
        "session": found.session.id,
        "channel": found.session.channel,
        "messages": len(found.steps),
        "changed": len(found.changes),
        "changes": [
            {
                "seq": s.entry.seq,
                "at": s.entry.at.isoformat(),
                "message_id": s.entry.message_id,
                "text": s.entry.text,
                "recorded": decision_json(s.recorded),
                "replayed": decision_json(s.replayed),
            }
            for s in found.changes
        ],
    }

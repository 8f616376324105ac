"""Circuit breakers: stop sending conversations to a provider that keeps failing.

Per provider: *closed* (normal) until ``failures`` consecutive failures, then *open* for
``cooldown_s`` (the router skips it, so conversations go to the next candidate at once instead
of waiting for another timeout), then *half-open*: one conversation may try it; a success
closes the circuit, a failure opens it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class _Circuit:
    failures: int = 0
    opened_at: float | None = None
    trial: bool = False  # half-open: one trial is under way


@dataclass
class Breakers:
    """The circuits of all providers."""

    failures: int = 3
    cooldown_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    _circuits: dict[str, _Circuit] = field(default_factory=dict)

    def state(self, provider: str) -> str:
        """``closed``, ``open`` or ``half-open``."""
        circuit = self._circuits.get(provider)
        if circuit is None or circuit.opened_at is None:
            return "closed"
        if self.clock() - circuit.opened_at < self.cooldown_s:
            return "open"
        return "half-open"

    def allows(self, provider: str) -> bool:
        """Whether a new conversation may be sent to ``provider`` now."""
        state = self.state(provider)
        if state == "closed":
            return True
        return state == "half-open" and not self._circuits[provider].trial

    def begin_trial(self, provider: str) -> None:
        """A half-open provider is being tried: let nobody else in until it answers."""
        if self.state(provider) == "half-open":
            self._circuits[provider].trial = True

    def success(self, provider: str) -> None:
        circuit = self._circuits.get(provider)
        if circuit is not None:
            circuit.failures, circuit.opened_at, circuit.trial = 0, None, False

    def failure(self, provider: str) -> bool:
        """Count a failure; True if this opened (or re-opened) the circuit."""
        circuit = self._circuits.setdefault(provider, _Circuit())
        circuit.failures += 1
        if circuit.trial or (circuit.opened_at is None and circuit.failures >= self.failures):
            circuit.opened_at, circuit.trial = self.clock(), False
            return True
        return False

    def snapshot(self) -> dict[str, str]:
        return {name: self.state(name) for name in self._circuits}

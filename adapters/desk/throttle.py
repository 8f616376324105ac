"""Slows down guessing of desk tokens, per client address.

Each wrong token from an address is answered a little later than the one before (the delay
doubles), and after ``max_failures`` within ``window_s`` the address is refused outright, even
with the right token, for ``cooldown_s``. Failures are counted when they happen, before the
delay, so parallel sockets from one address gain nothing. The clock is injectable so tests
can pass a cool-down without waiting for it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

MAX_DELAY_S = 8.0
MAX_ADDRESSES = 10_000  # bounded memory under a spray of addresses


class SignInThrottle:
    """Failed sign-ins per address: how long to delay the answer, and who is refused."""

    def __init__(
        self,
        *,
        max_failures: int,
        window_s: float,
        cooldown_s: float,
        delay_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.cooldown_s = cooldown_s
        self.delay_s = delay_s
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._blocked_until: dict[str, float] = {}

    def blocked(self, address: str) -> float | None:
        """Seconds until ``address`` may try again, or None if it may now."""
        until = self._blocked_until.get(address)
        if until is None:
            return None
        left = until - self.clock()
        if left > 0:
            return left
        del self._blocked_until[address]
        return None

    def failed(self, address: str) -> float:
        """Count a wrong token from ``address``; return how long to wait before answering."""
        now = self.clock()
        recent = self._failures.setdefault(address, deque())
        while recent and recent[0] <= now - self.window_s:
            recent.popleft()
        recent.append(now)
        count = len(recent)
        if count >= self.max_failures:
            self._blocked_until[address] = now + self.cooldown_s
            del self._failures[address]
        if len(self._failures) > MAX_ADDRESSES:
            self._forget(now)
        return min(self.delay_s * 2 ** (count - 1), MAX_DELAY_S) if self.delay_s else 0.0

    def _forget(self, now: float) -> None:
        """Drop addresses whose failures all left the window (the oldest first otherwise)."""
        for address in [a for a, f in self._failures.items() if f[-1] <= now - self.window_s]:
            del self._failures[address]
        while len(self._failures) > MAX_ADDRESSES:
            del self._failures[next(iter(self._failures))]
        for address in [a for a, t in self._blocked_until.items() if t <= now]:
            del self._blocked_until[address]

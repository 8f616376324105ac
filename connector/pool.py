"""The providers as the core keeps track of them: names, deadlines, health, circuits, legs.

Everything the engine's parts need to know about a provider besides talking to it: how it
is called to the user, how long it may take, whether it is healthy or its circuit open, how
many conversations it holds, and how to make a call whose failure nobody waits on.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Mapping

from connector.breaker import Breakers
from connector.config import Config
from connector.errors import ProviderError
from connector.interfaces import Provider, SessionStore, SpeaksForMidtier
from connector.sessions import Leg

log = logging.getLogger("midtier.engine")

DEFAULT_TIMEOUT_S = 10.0


class ProviderPool:
    """The configured providers, their health, circuit breakers and open legs."""

    def __init__(self, config: Config, providers: Mapping[str, Provider]) -> None:
        self._config = config
        self.providers = providers
        self.open_legs: Counter[str] = Counter()
        self.healthy: dict[str, bool] = {}
        circuit = config.routing.circuit
        self.breakers = Breakers(failures=circuit.failures, cooldown_s=circuit.cooldown_s)

    def title(self, provider: str) -> str:
        """How the provider is called to the user (its ``title``, else its name)."""
        cfg = self._config.providers.get(provider)
        return (cfg.title if cfg else "") or provider

    def timeout(self, provider: str) -> float:
        cfg = self._config.providers.get(provider)
        return cfg.timeout_s if cfg else DEFAULT_TIMEOUT_S

    def speaks_for_midtier(self, provider: str) -> bool:
        found = self.providers.get(provider)
        return isinstance(found, SpeaksForMidtier) and found.speaks_for_midtier

    def mark_failure(self, provider: str) -> None:
        if self.breakers.failure(provider):
            log.warning(
                "circuit of %s opened for %.0fs after repeated failures",
                provider,
                self.breakers.cooldown_s,
                extra={"event": "circuit_open", "provider": provider},
            )

    def unavailable(self, provider: str) -> str | None:
        """Why ``provider`` cannot take conversations now (None: it can)."""
        if not self.healthy.get(provider, True):
            return "unhealthy (health check failed)"
        if not self.breakers.allows(provider):
            return f"circuit {self.breakers.state(provider)} after repeated failures"
        return None

    def leg_opened(self, provider: str, closed: str | None) -> None:
        self.open_legs[provider] += 1
        if closed is not None:
            self.leg_closed(closed)

    def leg_closed(self, provider: str) -> None:
        if self.open_legs[provider] > 0:
            self.open_legs[provider] -= 1

    async def load_counts(self, store: SessionStore) -> None:
        """Count open legs per provider from the store (start-up)."""
        self.open_legs.clear()
        self.open_legs.update(await store.open_leg_counts())

    async def quietly(
        self, provider: str, call: Awaitable[object], what: str, level: int = logging.WARNING
    ) -> None:
        """Await a call to ``provider`` within its deadline; a failure is logged, not raised
        (for what nobody waits on: a closing leg, a status, a typing signal)."""
        try:
            async with asyncio.timeout(self.timeout(provider)):
                await call
        except (ProviderError, TimeoutError) as exc:
            log.log(level, "%s to %s failed: %s", what, provider, exc or "timed out")

    async def close_leg(self, leg: Leg, reason: str) -> None:
        """Tell the leg's provider it is over (a failure is logged)."""
        provider = self.providers.get(leg.provider)
        if provider is not None:
            await self.quietly(leg.provider, provider.close(leg, reason), "closing the leg")

"""The provider side of the core: every call to a provider, and what the core knows of them.

The pool owns the configured providers. Each call (open a leg, deliver an activity, close a
leg, tell a ``handoff.status``, pass a typing signal, probe health) goes through it, wrapped
once in the provider's deadline (``timeout_s``) and in error translation: whatever a provider
raises or however long it hangs, the caller gets a :class:`ProviderError` (a
:class:`ProviderTimeout` for the deadline) or, for calls nobody waits on, a line in the log.
The pool also keeps the circuit breakers (a message delivered closes the circuit, a failure
counts against it), health, and how many open legs each provider holds.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Mapping
from typing import TypeVar

from connector.activity import Activity, ActivityTypes, status_event
from connector.breaker import Breakers
from connector.config import Config
from connector.errors import MidtierError, ProviderError, ProviderTimeout
from connector.later import Deadline, Later
from connector.provider_protocol import HandoffContext, Provider
from connector.sessions import Leg, MidTierSession
from connector.store_protocol import SessionMap

log = logging.getLogger("midtier.pool")

DEFAULT_TIMEOUT_S = 10.0
T = TypeVar("T")


class ProviderPool:
    """The configured providers, each call to them, their health, circuits and open legs."""

    def __init__(self, config: Config, providers: Mapping[str, Provider]) -> None:
        self._config = config
        self.providers = providers  # filled once the adapters are built
        self.open_legs: Counter[str] = Counter()
        self.healthy: dict[str, bool] = {}
        circuit = config.routing.circuit
        self.breakers = Breakers(failures=circuit.failures, cooldown_s=circuit.cooldown_s)
        self._deadlines: dict[float, Later] = {}  # one timer per distinct deadline

    # ------------------------------------------------------------------ what it knows

    def __contains__(self, provider: object) -> bool:
        return provider in self.providers

    def title(self, provider: str) -> str:
        """How the provider is called to the user (its ``title``, else its name)."""
        cfg = self._config.providers.get(provider)
        return (cfg.title if cfg else "") or provider

    def timeout(self, provider: str) -> float:
        cfg = self._config.providers.get(provider)
        return cfg.timeout_s if cfg else DEFAULT_TIMEOUT_S

    # Both are asked per message: ``getattr`` rather than ``isinstance`` on the runtime
    # protocols (``SpeaksForMidtier``, ``RunsInProcess``), which costs 7 us on Python 3.11.
    def speaks_for_midtier(self, provider: str) -> bool:
        return getattr(self.providers.get(provider), "speaks_for_midtier", False) is True

    def runs_in_process(self, provider: str) -> bool:
        return getattr(self.providers.get(provider), "runs_in_process", False) is True

    def unavailable(self, provider: str) -> str | None:
        """Why ``provider`` cannot take conversations now (None: it can)."""
        if not self.healthy.get(provider, True):
            return "unhealthy (health check failed)"
        if not self.breakers.allows(provider):
            return f"circuit {self.breakers.state(provider)} after repeated failures"
        return None

    def mark_failure(self, provider: str) -> None:
        if self.breakers.failure(provider):
            log.warning(
                "circuit of %s opened for %.0fs after repeated failures",
                provider,
                self.breakers.cooldown_s,
                extra={"event": "circuit_open", "provider": provider},
            )

    def leg_opened(self, provider: str, closed: str | None) -> None:
        self.open_legs[provider] += 1
        if closed is not None:
            self.leg_closed(closed)

    def leg_closed(self, provider: str) -> None:
        if self.open_legs[provider] > 0:
            self.open_legs[provider] -= 1

    async def load_counts(self, sessions: SessionMap) -> None:
        """Count open legs per provider from the store (start-up)."""
        self.open_legs.clear()
        self.open_legs.update(await sessions.open_leg_counts())

    # ------------------------------------------------------------------ calls

    def _get(self, name: str) -> Provider:
        provider = self.providers.get(name)
        if provider is None:
            raise ProviderError(name, "is not configured")
        return provider

    async def _call(self, name: str, what: str, call: Awaitable[T]) -> T:
        """``call`` within ``name``'s deadline; anything it raises becomes a ProviderError."""
        limit = self.timeout(name)
        later = self._deadlines.get(limit)
        if later is None:
            later = self._deadlines[limit] = Later(limit)
        try:
            async with Deadline(later):
                return await call
        except ProviderError:
            raise
        except TimeoutError:
            raise ProviderTimeout(name, f"no answer to {what} within {limit:g}s") from None
        except MidtierError:
            raise  # the core's own (a closed session met inside a provider's callback)
        except Exception as exc:  # a provider's bug must not stop the conversation
            log.exception("provider %s raised on %s", name, what)
            raise ProviderError(name, f"failed on {what} ({type(exc).__name__})") from None

    async def open(
        self, name: str, session: MidTierSession, leg: Leg, context: HandoffContext
    ) -> str:
        """Open ``leg`` on provider ``name``; its conversation id. A failure counts against
        its circuit."""
        try:
            return await self._call(name, "open", self._get(name).open(session, leg, context))
        except ProviderError:
            self.mark_failure(name)
            raise

    async def deliver(self, leg: Leg, activity: Activity) -> list[Activity]:
        """Deliver ``activity`` to ``leg``'s provider; its inline replies. A message
        answered closes the circuit; a failure counts against it."""
        name = leg.provider
        what = activity.type or "activity"
        try:
            replies = await self._call(name, what, self._get(name).deliver(leg, activity))
        except ProviderError:
            self.mark_failure(name)
            raise
        if activity.type == ActivityTypes.MESSAGE:  # answering users is what counts
            self.breakers.success(name)
        return replies

    async def quietly(
        self, name: str, what: str, call: Awaitable[object], level: int = logging.WARNING
    ) -> None:
        """Await a call to ``name`` within its deadline; a failure is logged, not raised
        (for what nobody waits on: a closing leg, a status, a typing signal)."""
        try:
            await self._call(name, what, call)
        except ProviderError as exc:
            log.log(level, "%s to %s failed: %s", what, name, exc)

    async def close(self, leg: Leg, reason: str) -> None:
        """Tell the leg's provider it is over (a failure is logged)."""
        provider = self.providers.get(leg.provider)
        if provider is not None:
            await self.quietly(leg.provider, "closing the leg", provider.close(leg, reason))

    async def status(self, leg: Leg, state: str, message: str | None = None) -> None:
        """Tell the leg's provider the ``handoff.status`` of its conversation (logged if it
        fails)."""
        provider = self.providers.get(leg.provider)
        if provider is not None:
            event = status_event(state, message)
            await self.quietly(leg.provider, "handoff.status", provider.deliver(leg, event))

    async def signal(self, leg: Leg, activity: Activity) -> None:
        """Pass a transient activity (the user typing) to the leg's provider."""
        provider = self.providers.get(leg.provider)
        if provider is not None:
            call = provider.deliver(leg, activity)
            await self.quietly(leg.provider, "a typing signal", call, logging.INFO)

    async def probe(self) -> None:
        """Ask every provider whether it is healthy (a probe that fails counts as no)."""
        for name, provider in self.providers.items():
            try:
                self.healthy[name] = await self._call(name, "a health check", provider.health())
            except ProviderError as exc:
                log.warning("health check of %s failed: %s", name, exc)
                self.healthy[name] = False

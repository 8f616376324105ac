"""Circuit breakers: open after repeated failures, half-open after the cooldown."""

from __future__ import annotations

from pathlib import Path

from support.doubles import make_engine, user_message

from connector.breaker import Breakers


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_circuit_opens_after_consecutive_failures_and_recovers() -> None:
    clock = Clock()
    breakers = Breakers(failures=3, cooldown_s=30, clock=clock)
    assert breakers.allows("faq") and breakers.state("faq") == "closed"
    assert not breakers.failure("faq") and not breakers.failure("faq")
    breakers.success("faq")  # a success in between resets the count
    assert not breakers.failure("faq") and not breakers.failure("faq")
    assert breakers.failure("faq")  # third in a row
    assert breakers.state("faq") == "open" and not breakers.allows("faq")
    clock.t += 30
    assert breakers.state("faq") == "half-open" and breakers.allows("faq")
    breakers.begin_trial("faq")
    assert not breakers.allows("faq")  # one trial at a time
    assert breakers.failure("faq")  # the trial failed: open again
    assert breakers.state("faq") == "open"
    clock.t += 30
    breakers.begin_trial("faq")
    breakers.success("faq")
    assert breakers.state("faq") == "closed" and breakers.allows("faq")
    assert breakers.snapshot() == {"faq": "closed"}


async def test_router_skips_a_provider_whose_circuit_is_open(tmp_path: Path) -> None:
    engine, providers, _ = make_engine(tmp_path)
    providers["faq"].fail_deliver = True
    for n in range(3):  # three conversations, each failing over to the fallback
        session = await engine.receive("test", user_message("hello", conversation=f"c{n}"))
        assert session is not None and session.current_provider == "agents"
    assert engine.pool.breakers.state("faq") == "open"
    opened = len(providers["faq"].opened)
    session = await engine.receive("test", user_message("hello", conversation="c9"))
    assert session is not None and session.current_provider == "agents"
    assert len(providers["faq"].opened) == opened  # not even tried
    decision = (await engine.store.decisions(session.id))[0]
    assert decision.action == "fallback"
    assert [(c.provider, c.reason) for c in decision.alternatives] == [
        ("faq", "circuit open after repeated failures")
    ]

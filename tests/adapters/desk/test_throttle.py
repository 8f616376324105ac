"""Wrong desk tokens per address: a growing delay, then refused until the cool-down."""

from __future__ import annotations

from adapters.desk.throttle import MAX_DELAY_S, SignInThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _throttle(clock: Clock, **overrides: float) -> SignInThrottle:
    settings = {"max_failures": 4, "window_s": 60.0, "cooldown_s": 300.0, "delay_s": 0.5}
    settings.update(overrides)
    return SignInThrottle(
        max_failures=int(settings["max_failures"]),
        window_s=settings["window_s"],
        cooldown_s=settings["cooldown_s"],
        delay_s=settings["delay_s"],
        clock=clock,
    )


def test_each_wrong_token_waits_longer_than_the_one_before() -> None:
    throttle = _throttle(Clock(), max_failures=100)
    delays = [throttle.failed("10.0.0.1") for _ in range(7)]
    assert delays == [0.5, 1.0, 2.0, 4.0, MAX_DELAY_S, MAX_DELAY_S, MAX_DELAY_S]


def test_after_n_failures_the_address_is_refused_until_the_cool_down() -> None:
    clock = Clock()
    throttle = _throttle(clock)
    for _ in range(3):
        throttle.failed("10.0.0.1")
        assert throttle.blocked("10.0.0.1") is None
    throttle.failed("10.0.0.1")
    assert throttle.blocked("10.0.0.1") == 300.0
    clock.now += 299.5
    assert throttle.blocked("10.0.0.1") == 0.5
    clock.now += 0.5
    assert throttle.blocked("10.0.0.1") is None
    assert throttle.failed("10.0.0.1") == 0.5  # counting starts again


def test_addresses_are_counted_apart() -> None:
    throttle = _throttle(Clock())
    for _ in range(4):
        throttle.failed("10.0.0.1")
    assert throttle.blocked("10.0.0.1") is not None
    assert throttle.blocked("10.0.0.2") is None
    assert throttle.failed("10.0.0.2") == 0.5


def test_failures_older_than_the_window_are_forgotten() -> None:
    clock = Clock()
    throttle = _throttle(clock)
    for _ in range(3):
        throttle.failed("10.0.0.1")
    clock.now += 61
    assert throttle.failed("10.0.0.1") == 0.5
    assert throttle.blocked("10.0.0.1") is None


def test_no_delay_when_configured_off() -> None:
    throttle = _throttle(Clock(), delay_s=0)
    assert [throttle.failed("a") for _ in range(3)] == [0.0, 0.0, 0.0]

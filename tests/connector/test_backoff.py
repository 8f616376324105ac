"""When a reply is tried again, and when it is given up: the pure policy."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from connector import backoff
from connector.config import OutboxSettings
from connector.errors import ChannelError

SETTINGS = OutboxSettings(give_up_after_s=600, first_backoff_s=1, max_backoff_s=60)
ALL = 1.0 - 1e-12  # rand() at the top of its range: the jitter keeps all of the backoff


def test_our_backoff_doubles_up_to_its_cap_and_keeps_half_to_all_of_it() -> None:
    assert backoff.backoff(1, SETTINGS, lambda: 0.0) == 0.5
    assert backoff.backoff(1, SETTINGS, lambda: ALL) == pytest.approx(1.0)
    assert backoff.backoff(4, SETTINGS, lambda: ALL) == pytest.approx(8.0)
    assert backoff.backoff(7, SETTINGS, lambda: ALL) == pytest.approx(60.0)  # capped
    assert backoff.backoff(10_000, SETTINGS, lambda: 0.0) == 30.0  # no overflow


def test_a_wait_the_platform_asks_for_is_never_cut_short() -> None:
    asked = ChannelError("429", retry_after=30)
    assert backoff.wait_after(asked, 1, SETTINGS, lambda: 0.0) == 30.0
    assert backoff.wait_after(asked, 1, SETTINGS, lambda: ALL) == pytest.approx(33.0)
    assert backoff.wait_after(asked, 9, SETTINGS, lambda: ALL) == pytest.approx(60.0)  # ours
    for odd in (math.nan, -5.0, 0.0, None):
        error = ChannelError("429", retry_after=odd)
        assert backoff.wait_after(error, 1, SETTINGS, lambda: ALL) == pytest.approx(1.0)


def test_the_plan_tries_last_at_the_give_up_time_and_then_gives_up() -> None:
    t0 = datetime(2030, 1, 1, tzinfo=UTC)

    def plan(error: ChannelError, at_s: float) -> backoff.Retry | backoff.GiveUp:
        current = t0 + timedelta(seconds=at_s)
        return backoff.plan(
            error, attempts=6, created_at=t0, current=current, settings=SETTINGS, rand=lambda: ALL
        )

    ours = plan(ChannelError("503"), 500)  # 6th failure: 32 s
    assert isinstance(ours, backoff.Retry) and ours.delay_s == pytest.approx(32.0)
    assert plan(ChannelError("503"), 590) == backoff.Retry(t0 + timedelta(seconds=600), 10.0)
    given_up = plan(ChannelError("503"), 600)
    assert isinstance(given_up, backoff.GiveUp) and "not taken within 600 s" in given_up.reason
    for asked in (700.0, math.inf):  # asking to wait past the give-up time cannot help
        waited = plan(ChannelError("429", retry_after=asked), 10)
        assert isinstance(waited, backoff.GiveUp) and "the platform asked to wait" in waited.reason

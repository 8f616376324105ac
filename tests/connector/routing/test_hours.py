"""Business hours of a route: weekly spans in its time zone, holidays, and the router
passing a closed desk by for the next candidate."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from connector.config import Route, RoutingConfig
from connector.errors import ConfigErrors
from connector.interfaces import IntentResult
from connector.routing.hours import Hours
from connector.routing.policy import Router
from connector.sessions import MidTierSession

BERLIN = {"timezone": "Europe/Berlin", "open": {"mon-fri": ["09:00-18:00"], "sat": ["10:00-14:00"]}}


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_a_route_is_open_within_its_spans_in_its_own_time_zone() -> None:
    hours = Hours.model_validate(BERLIN)
    assert hours.closed(_at("2026-12-01T08:00:00+00:00")) is None  # Tue 09:00 in Berlin
    assert hours.closed(_at("2026-12-01T16:59:00+00:00")) is None  # Tue 17:59
    assert hours.closed(_at("2026-12-01T17:00:00+00:00")) == (
        "outside its hours at Tue 18:00 Europe/Berlin; opens Wed 09:00"
    )
    assert hours.closed(_at("2026-12-01T07:59:00+00:00")) == (
        "outside its hours at Tue 08:59 Europe/Berlin; opens Tue 09:00"
    )


def test_days_left_out_are_closed_and_the_next_opening_skips_them() -> None:
    hours = Hours.model_validate(BERLIN)
    assert hours.closed(_at("2026-12-05T10:30:00+01:00")) is None  # Saturday morning
    assert hours.closed(_at("2026-12-05T14:00:00+01:00")) == (
        "outside its hours at Sat 14:00 Europe/Berlin; opens Mon 09:00"
    )
    assert hours.closed(_at("2026-12-06T12:00:00+01:00")) == (
        "outside its hours at Sun 12:00 Europe/Berlin; opens Mon 09:00"
    )


def test_a_holiday_is_closed_all_day_and_is_not_the_next_opening() -> None:
    hours = Hours.model_validate({**BERLIN, "holidays": ["2026-12-24", "2026-12-25"]})
    assert hours.closed(_at("2026-12-24T11:00:00+01:00")) == (
        "closed on holiday 2026-12-24 (Europe/Berlin)"
    )
    assert hours.closed(_at("2026-12-23T19:00:00+01:00")) == (
        "outside its hours at Wed 19:00 Europe/Berlin; opens Sat 10:00"
    )


def test_daylight_saving_time_moves_the_hours_with_the_zone() -> None:
    hours = Hours.model_validate(
        {"timezone": "America/New_York", "open": {"mon-sun": ["09:00-17:00"]}}
    )
    # 13:30 UTC is 09:30 in New York in summer (EDT) but 08:30 in winter (EST).
    assert hours.closed(_at("2026-07-01T13:30:00+00:00")) is None
    assert hours.closed(_at("2026-12-01T13:30:00+00:00")) is not None


def test_day_ranges_wrap_round_the_week_and_spans_may_end_at_midnight() -> None:
    hours = Hours.model_validate({"timezone": "UTC", "open": {"fri-mon": ["20:00-24:00"]}})
    assert hours.closed(_at("2026-12-06T23:59:00+00:00")) is None  # Sunday
    assert hours.closed(_at("2026-12-08T21:00:00+00:00")) is not None  # Tuesday


@pytest.mark.parametrize(
    ("hours", "where", "says"),
    [
        (
            {"timezone": "Mars/Olympus", "open": {"mon": ["09:00-10:00"]}},
            "timezone",
            "unknown time zone",
        ),
        ({"timezone": "UTC", "open": {"funday": ["09:00-10:00"]}}, "open", "expected days"),
        ({"timezone": "UTC", "open": {"mon": ["9-5"]}}, "open", "expected a span"),
        ({"timezone": "UTC", "open": {"mon": ["22:00-02:00"]}}, "open", "across midnight"),
        ({"timezone": "UTC", "open": {"mon": ["09:00-24:30"]}}, "open", "at most 24:00"),
        ({"timezone": "UTC", "open": {}}, "open", "at least 1 item"),
        (
            {"timezone": "UTC", "open": {"mon": ["09:00-10:00"]}, "holidays": ["25.12."]},
            "holidays",
            "date",
        ),
    ],
)
def test_hours_that_cannot_be_read_are_refused_with_their_key(
    hours: dict[str, object], where: str, says: str
) -> None:
    with pytest.raises(ValidationError) as info:
        Hours.model_validate(hours)
    error = info.value.errors()[0]
    assert error["loc"][0] == where
    assert says in error["msg"]


def test_routing_yaml_names_file_and_key_of_bad_hours(tmp_path: Path) -> None:
    import shutil

    from support.server import DEFAULT_CONFIG

    from connector.config import load_config

    config = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG, config, ignore=shutil.ignore_patterns("__pycache__"))
    routing = (
        (config / "routing.yaml")
        .read_text()
        .replace(
            "    sticky: true ",
            "    hours: {timezone: Nowhere/Town, open: {mon: ['09:00-17:00']}}\n    sticky: true ",
            1,
        )
    )
    (config / "routing.yaml").write_text(routing)
    with pytest.raises(ConfigErrors) as info:
        load_config(config)
    [message] = [str(e) for e in info.value.errors]
    assert message.startswith("routing.yaml: routes.agents.hours.timezone: ")
    assert "unknown time zone 'Nowhere/Town'" in message


def _router(moment: datetime) -> Router:
    config = RoutingConfig(
        fallback="bot",
        routes={
            "desk": Route(intents=["talk_to_human"], hours=Hours.model_validate(BERLIN)),
            "night_desk": Route(intents=["talk_to_human"]),
            "bot": Route(intents=["greet"]),
        },
    )
    return Router(config, clock=lambda: moment)


def _ask(router: Router) -> tuple[str | None, dict[str, str]]:
    session = MidTierSession(user_id="u1", channel="webchat", channel_conversation_id="c1")
    decision = router.decide(session, IntentResult(name="talk_to_human", confidence=0.9))
    return decision.provider, {c.provider: c.reason for c in decision.alternatives}


def test_a_closed_desk_is_passed_by_for_the_next_candidate_and_says_why() -> None:
    assert _ask(_router(_at("2026-12-01T10:00:00+01:00"))) == (
        "desk",
        {"desk": "serves talk_to_human", "night_desk": "serves talk_to_human"},
    )
    assert _ask(_router(_at("2026-12-01T20:00:00+01:00"))) == (
        "night_desk",
        {
            "desk": "outside its hours at Tue 20:00 Europe/Berlin; opens Wed 09:00",
            "night_desk": "serves talk_to_human",
        },
    )


def test_conditions_lists_every_condition_with_its_result() -> None:
    config = RoutingConfig(
        fallback="bot",
        routes={
            "desk": Route(
                intents=["talk_to_human"],
                min_confidence=0.6,
                channels=["webchat"],
                max_open_legs=2,
                hours=Hours.model_validate(BERLIN),
            ),
            "bot": Route(intents=["greet"]),
        },
    )
    router = Router(
        config,
        clock=lambda: _at("2026-12-06T12:00:00+01:00"),
        open_legs={"desk": 2},
        unavailable=lambda name: "circuit open after 3 failures" if name == "desk" else None,
    )
    found = [(c.name, c.holds, c.detail) for c in router.conditions("desk", 0.7, "webchat")]
    assert found == [
        ("min_confidence", True, "confidence 0.70 at least 0.60"),
        ("channels", True, "serves channel 'webchat'"),
        ("hours", False, "outside its hours at Sun 12:00 Europe/Berlin; opens Mon 09:00"),
        ("capacity", False, "at capacity (2 open conversations)"),
        ("health", False, "circuit open after 3 failures"),
    ]
    assert router.check("desk", 0.7, "webchat") == found[2][2]  # the first that fails
    assert [c.name for c in router.conditions("bot", 0.1, "sms")] == ["health"]

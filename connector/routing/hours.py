"""Business hours of a route: when its provider (a desk of people, most often) takes
conversations, in its own time zone, with holidays.

``routing.yaml``::

    routes:
      agents:
        hours:
          timezone: Europe/Berlin
          open:
            mon-fri: ["09:00-18:00"]
            sat: ["10:00-14:00"]
          holidays: [2026-12-24, 2026-12-25]

Days are ``mon`` .. ``sun``, alone, as ranges (``mon-fri``) or comma lists (``sat,sun``);
a day left out is closed. Each span is ``HH:MM-HH:MM`` in local time, its end after its
start (``24:00`` ends at midnight); a span across midnight is written as two. A holiday is
closed all day. Daylight-saving changes are the time zone database's (``zoneinfo``).
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^(\d\d):(\d\d)-(\d\d):(\d\d)$")
_MINUTES_A_DAY = 24 * 60


class Hours(BaseModel):
    """When a route is open: weekly spans in ``timezone``, closed on ``holidays``."""

    model_config = ConfigDict(extra="forbid")

    timezone: str
    open: dict[str, list[str]] = Field(min_length=1)
    holidays: list[date] = Field(default_factory=list)
    # Per weekday (0 = Monday): (start, end) minutes after local midnight, sorted.
    _week: list[list[tuple[int, int]]] = PrivateAttr(default_factory=list)
    _zone: ZoneInfo | None = PrivateAttr(default=None)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
            raise ValueError(
                f"unknown time zone {value!r} (an IANA name such as 'Europe/Berlin')"
            ) from exc
        return value

    @field_validator("open")
    @classmethod
    def _readable(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        _week(value)  # raises ValueError naming the day key and span
        return value

    @model_validator(mode="after")
    def _compile(self) -> Hours:
        self._week = _week(self.open)
        self._zone = ZoneInfo(self.timezone)
        return self

    def local(self, moment: datetime) -> datetime:
        """``moment`` (aware) in the route's time zone."""
        assert self._zone is not None
        return moment.astimezone(self._zone)

    def closed(self, moment: datetime) -> str | None:
        """Why the route is closed at ``moment`` (aware), or None when it is open."""
        here = self.local(moment)
        if here.date() in self.holidays:
            return f"closed on holiday {here.date().isoformat()} ({self.timezone})"
        minute = here.hour * 60 + here.minute
        if any(start <= minute < end for start, end in self._week[here.weekday()]):
            return None
        return f"outside its hours at {here:%a %H:%M} {self.timezone}" + self._next(here)

    def _next(self, here: datetime) -> str:
        """``"; opens Mon 09:00"``: the next opening within a fortnight, if any."""
        minute = here.hour * 60 + here.minute
        for ahead in range(15):
            day = date.fromordinal(here.date().toordinal() + ahead)
            if day in self.holidays:
                continue
            for start, _end in self._week[day.weekday()]:
                if ahead or start > minute:
                    opening = time(start // 60, start % 60)
                    return f"; opens {DAYS[day.weekday()].title()} {opening:%H:%M}"
        return ""


def _week(open_: dict[str, list[str]]) -> list[list[tuple[int, int]]]:
    week: list[list[tuple[int, int]]] = [[] for _ in DAYS]
    for days, spans in open_.items():
        for day in _days(days):
            week[day].extend(_span(span, days) for span in spans)
    return [sorted(spans) for spans in week]


def _days(key: str) -> list[int]:
    """``"mon-fri"`` -> [0..4]; ``"sat,sun"`` -> [5, 6]; ``"fri-mon"`` wraps the weekend."""
    found: list[int] = []
    for part in key.lower().replace(" ", "").split(","):
        first, _, last = part.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise ValueError(f"{key!r}: expected days such as 'mon', 'mon-fri' or 'sat,sun'")
        a, b = DAYS.index(first), DAYS.index(last or first)
        found.extend(d % 7 for d in range(a, b + 1 if b >= a else b + 8))
    return found


def _span(text: str, days: str) -> tuple[int, int]:
    match = _SPAN.match(text.strip())
    if match is None:
        raise ValueError(f"{days}: {text!r}: expected a span such as '09:00-17:30'")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if h1 > 23 or m1 > 59 or m2 > 59 or end > _MINUTES_A_DAY or end <= start:
        raise ValueError(
            f"{days}: {text!r}: expected HH:MM-HH:MM with the end after the start, at most "
            "24:00 (write a span across midnight as two)"
        )
    return start, end

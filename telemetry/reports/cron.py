"""Cron schedules: the five fields (minute, hour, day of month, month, day of week) with `*`,
ranges `a-b`, steps `*/n` and `a-b/n`, lists `a,b`, month and day names (`jan`, `mon`), 7 for
Sunday as well as 0, and the shorthands `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`.
As in Vixie cron, when both the day of month and the day of week are restricted a day matching
either one matches.

A schedule reads in wall-clock time of its IANA time zone. Across a change of the clocks:

- a time the clocks skip (02:30 on a spring-forward night in Europe) runs once, when the clocks
  have jumped (03:00): a job is late, never lost;
- a time the clocks show twice (01:30 on an autumn night) runs once, the first time.

So each wall-clock time a schedule names runs exactly once. Our own small parser, not a
dependency: what is needed is a page of code, and the DST rules above are ours to decide.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SEARCH_YEARS: Final = 8
"""How far ahead a next run is looked for: long enough for 29 February on a given weekday."""

_MONTHS: Final = (
    "jan",
    "feb",
    "mar",
    "apr",
    "may",
    "jun",
    "jul",
    "aug",
    "sep",
    "oct",
    "nov",
    "dec",
)
_DAYS: Final = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_SHORTHANDS: Final = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}


class CronError(ValueError):
    """An expression that is not a schedule; the message says which part and why."""


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    names_from: int = 0


_FIELDS: Final = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day of month", 1, 31),
    _Field("month", 1, 12, _MONTHS, 1),
    _Field("day of week", 0, 7, _DAYS, 0),
)


def _number(text: str, field: _Field) -> int:
    lowered = text.lower()
    if lowered in field.names:
        return field.names.index(lowered) + field.names_from
    if not text.isdigit():
        raise CronError(f"{field.name}: {text!r} is not a number" + _names_hint(field))
    value = int(text)
    if not field.low <= value <= field.high:
        raise CronError(f"{field.name}: {value} is outside {field.low}-{field.high}")
    return value


def _names_hint(field: _Field) -> str:
    return f" or a name ({', '.join(field.names)})" if field.names else ""


def _part(text: str, field: _Field) -> set[int]:
    body, _, step_text = text.partition("/")
    step = 1
    if step_text:
        if not step_text.isdigit() or int(step_text) < 1:
            raise CronError(f"{field.name}: the step in {text!r} must be a whole number above 0")
        step = int(step_text)
    if body == "*":
        low, high = field.low, field.high
    elif "-" in body:
        first, _, last = body.partition("-")
        low, high = _number(first, field), _number(last, field)
        if low > high:
            raise CronError(f"{field.name}: the range {body!r} runs backwards")
    else:
        low = _number(body, field)
        high = field.high if step_text else low
    return set(range(low, high + 1, step))


def _parse_field(text: str, field: _Field) -> frozenset[int]:
    if not text:
        raise CronError(f"{field.name}: empty")
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise CronError(f"{field.name}: an empty item in {text!r}")
        values |= _part(part, field)
    return frozenset(values)


@dataclass(frozen=True, slots=True)
class Cron:
    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    """0 is Sunday (7 is folded into it)."""
    any_day: bool
    any_weekday: bool

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        weekday = (day.weekday() + 1) % 7
        by_day, by_weekday = day.day in self.days, weekday in self.weekdays
        if self.any_day or self.any_weekday:
            return by_day and by_weekday
        return by_day or by_weekday


def parse_cron(expression: str) -> Cron:
    """The schedule `expression` names; `CronError` says what is wrong."""
    text = " ".join(expression.split())
    text = _SHORTHANDS.get(text.lower(), text)
    if text.startswith("@"):
        raise CronError(f"unknown shorthand {text!r}; one of {', '.join(_SHORTHANDS)}")
    parts = text.split(" ")
    if len(parts) != len(_FIELDS):
        raise CronError(
            f"takes 5 fields (minute hour day-of-month month day-of-week), not {len(parts)}"
        )
    minutes, hours, days, months, weekdays = (
        _parse_field(part, field) for part, field in zip(parts, _FIELDS, strict=True)
    )
    cron = Cron(
        expression=text,
        minutes=minutes,
        hours=hours,
        days=days,
        months=months,
        weekdays=frozenset(day % 7 for day in weekdays),
        any_day=parts[2].startswith("*"),
        any_weekday=parts[4].startswith("*"),
    )
    if next_run(cron, datetime(2000, 1, 1, tzinfo=UTC), ZoneInfo("UTC")) is None:
        raise CronError("never matches a real date")
    return cron


def time_zone(name: str) -> ZoneInfo:
    """The IANA zone `name`; `CronError` when there is none of that name."""
    if not name or name != name.strip() or ".." in name or name.startswith("/"):
        raise CronError(f"{name[:64]!r} is not an IANA time zone such as Europe/Paris")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CronError(f"{name[:64]!r} is not an IANA time zone such as Europe/Paris") from None


def _wall_times(cron: Cron, first: datetime) -> Iterator[datetime]:
    """The naive wall-clock times the schedule names, from `first` on, in order."""
    day = first.date()
    last = day + timedelta(days=366 * SEARCH_YEARS)
    while day <= last:
        if cron.matches_day(day):
            for hour in sorted(cron.hours):
                for minute in sorted(cron.minutes):
                    wall = datetime.combine(day, time(hour, minute))
                    if wall >= first:
                        yield wall
        day += timedelta(days=1)


def exists(wall: datetime, zone: ZoneInfo) -> bool:
    """False for a wall-clock time the clocks skip in `zone`."""
    there = wall.replace(tzinfo=zone)
    return there.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall


def resolve(wall: datetime, zone: ZoneInfo) -> datetime:
    """The instant (UTC) a naive wall-clock time of `zone` stands for: its first occurrence,
    or for a time the clocks skip, the end of the skipped stretch."""
    while not exists(wall, zone):
        wall = (wall + timedelta(minutes=1)).replace(second=0, microsecond=0)
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def next_run(cron: Cron, after: datetime, zone: ZoneInfo) -> datetime | None:
    """The first run strictly after `after` (aware), in UTC; None when none comes within
    `SEARCH_YEARS`."""
    local = after.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0)
    for wall in _wall_times(cron, local):
        instant = resolve(wall, zone)
        if instant > after:
            return instant
    return None

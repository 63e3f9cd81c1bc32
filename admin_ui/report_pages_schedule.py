"""A report's cron schedule in words, for the simple ones people write: "Mondays at 07:00",
"Every day at 08:30", "Weekdays at 06:00", "On day 1 of every month at 09:00". Anything else
is shown as its expression (None here), which the page prints as code."""

from __future__ import annotations

from typing import Final

from telemetry.reports.cron import CronError, parse_cron

DAY_NAMES: Final = (
    "Sundays",
    "Mondays",
    "Tuesdays",
    "Wednesdays",
    "Thursdays",
    "Fridays",
    "Saturdays",
)
WEEKDAYS: Final = frozenset({1, 2, 3, 4, 5})
ALL_WEEK: Final = frozenset(range(7))
ALL_MONTHS: Final = frozenset(range(1, 13))
ALL_DAYS: Final = frozenset(range(1, 32))


def schedule_words(expression: str) -> str | None:
    try:
        cron = parse_cron(expression)
    except CronError:
        return None
    if len(cron.minutes) != 1 or len(cron.hours) != 1 or cron.months != ALL_MONTHS:
        return None
    at = f"at {min(cron.hours):02d}:{min(cron.minutes):02d}"
    if cron.any_day and cron.any_weekday:
        return f"Every day {at}"
    if cron.any_day and cron.days == ALL_DAYS:
        if cron.weekdays == WEEKDAYS:
            return f"Weekdays {at}"
        if cron.weekdays == ALL_WEEK:
            return f"Every day {at}"
        names = [DAY_NAMES[day] for day in sorted(cron.weekdays, key=lambda d: (d + 6) % 7)]
        return f"{_joined(names)} {at}"
    if cron.any_weekday and len(cron.days) == 1:
        return f"On day {min(cron.days)} of every month {at}"
    return None


def _joined(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"

"""The ranges a report definition may cover, each aligned to calendar units of the
definition's time zone and ending at the start of the day (or week, or month) a run falls in:

- `previous_day`: yesterday, midnight to midnight;
- `previous_week`: last week, Monday to Monday;
- `previous_month`: last month, the 1st to the 1st;
- `last_7d`, `last_30d`: the 7 (30) whole days before today.

A range's bounds are local midnights made into UTC instants, so a week holding a change of the
clocks is 167 or 169 hours long. A midnight the clocks skip stands for the end of the skipped
stretch (`cron.resolve`).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from telemetry.reports.cron import resolve

RANGES: Final = ("previous_day", "previous_week", "previous_month", "last_7d", "last_30d")
RANGE_TITLES: Final = {
    "previous_day": "Previous day",
    "previous_week": "Previous week",
    "previous_month": "Previous month",
    "last_7d": "Last 7 days",
    "last_30d": "Last 30 days",
}


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return resolve(datetime.combine(day, time()), zone)


def local_days(name: str, at: datetime, zone: ZoneInfo) -> tuple[date, date]:
    """The range `name` for a run at `at`, as local dates: [first, last)."""
    today = at.astimezone(zone).date()
    if name == "previous_day":
        return today - timedelta(days=1), today
    if name == "previous_week":
        monday = today - timedelta(days=today.weekday())
        return monday - timedelta(days=7), monday
    if name == "previous_month":
        first = today.replace(day=1)
        return (first - timedelta(days=1)).replace(day=1), first
    if name == "last_7d":
        return today - timedelta(days=7), today
    if name == "last_30d":
        return today - timedelta(days=30), today
    raise ValueError(f"unknown range {name!r}; one of {', '.join(RANGES)}")


def report_range(name: str, at: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The range `name` for a run at `at`, as UTC instants: [start, end)."""
    first, last = local_days(name, at, zone)
    return _midnight(first, zone), _midnight(last, zone)

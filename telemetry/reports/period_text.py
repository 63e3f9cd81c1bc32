"""A report's range and times as its readers see them: in the report's time zone, whole days
named by their first and last day (the range's end is excluded)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo


def local_time_text(moment: datetime, time_zone: str) -> str:
    """`2026-12-07 09:00 CET` in the report's zone."""
    local = moment.astimezone(ZoneInfo(time_zone))
    return f"{local:%Y-%m-%d %H:%M} {local.tzname() or time_zone}"


def range_text(start: datetime, end: datetime, time_zone: str) -> str:
    """Whole days as "2026-11-30 to 2026-12-06 (Europe/Berlin)" (both days included), one day
    as "2026-12-06 (UTC)", anything else with its times."""
    zone = ZoneInfo(time_zone)
    first, after = start.astimezone(zone), end.astimezone(zone)
    if all((t.hour, t.minute, t.second) == (0, 0, 0) for t in (first, after)):
        last = (after - timedelta(days=1)).date()
        if last == first.date():
            return f"{first:%Y-%m-%d} ({time_zone})"
        return f"{first:%Y-%m-%d} to {last:%Y-%m-%d} ({time_zone})"
    return f"{first:%Y-%m-%d %H:%M} to {after:%Y-%m-%d %H:%M} ({time_zone})"

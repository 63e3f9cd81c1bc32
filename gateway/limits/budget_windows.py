"""Budget windows: the calendar day, week (from Monday) or month in an IANA time zone, or all time.

A window is `[start, end)` in epoch seconds. Its start is the first instant of the local day
(midnight, or the first instant after a daylight-saving gap that swallows midnight), so a window
is 23, 24 or 25 hours long on days the clocks change. "total" starts at 0 and never ends.
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.keys.limits import WINDOWS

TOTAL_START = 0
# Longest a calendar window can last (a 31-day month plus a daylight-saving hour): what the
# expiry of a persisted window is bounded by when its time zone is unknown.
LONGEST: dict[str, int] = {
    "daily": 25 * 3600,
    "weekly": 7 * 86400 + 3600,
    "monthly": 31 * 86400 + 3600,
}


@functools.lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name`; ValueError when there is none by that name."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def _first_day(window: str, day: date) -> date:
    if window == "weekly":
        return day - timedelta(days=day.weekday())
    if window == "monthly":
        return day.replace(day=1)
    return day


def _next_first_day(window: str, first: date) -> date:
    if window == "daily":
        return first + timedelta(days=1)
    if window == "weekly":
        return first + timedelta(days=7)
    if first.month == 12:
        return first.replace(year=first.year + 1, month=1)
    return first.replace(month=first.month + 1)


def _start_of(day: date, tz: ZoneInfo) -> int:
    # fold=0 puts a midnight that falls in a gap at the first instant after the gap and an
    # ambiguous midnight at its first occurrence: the day's first instant either way.
    return int(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp())


def window_bounds(window: str, timezone: str, now: float) -> tuple[int, int | None]:
    """`(start, end)` in epoch seconds of the `window` holding `now`; end is None for "total"."""
    if window == "total":
        return TOTAL_START, None
    if window not in LONGEST:
        raise ValueError(f"unknown budget window {window!r}; expected one of {', '.join(WINDOWS)}")
    tz = zone(timezone)
    first = _first_day(window, datetime.fromtimestamp(now, tz).date())
    return _start_of(first, tz), _start_of(_next_first_day(window, first), tz)


class Windows:
    """`window_bounds` remembered per (window, time zone) while `now` stays inside the window."""

    __slots__ = ("_current",)

    def __init__(self) -> None:
        self._current: dict[tuple[str, str], tuple[int, int | None]] = {}

    def bounds(self, window: str, timezone: str, now: float) -> tuple[int, int | None]:
        known = self._current.get((window, timezone))
        if known is not None and known[0] <= now and (known[1] is None or now < known[1]):
            return known
        bounds = window_bounds(window, timezone, now)
        self._current[(window, timezone)] = bounds
        return bounds


def utc_datetime(epoch_seconds: float) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, UTC)

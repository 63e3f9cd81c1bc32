"""Budget windows: calendar day, week from Monday and month in a time zone, across DST changes."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from gateway.limits.budget_windows import Windows, window_bounds


def at(text: str, tz: str = "UTC") -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).timestamp()


def utc(seconds: float | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC).isoformat()


@pytest.mark.parametrize(
    ("window", "tz", "now", "start", "end"),
    [
        (
            "daily",
            "UTC",
            "2024-05-15T12:00",
            "2024-05-15T00:00:00+00:00",
            "2024-05-16T00:00:00+00:00",
        ),
        # Berlin is UTC+2 in May: the local day starts at 22:00 UTC the evening before.
        (
            "daily",
            "Europe/Berlin",
            "2024-05-15T00:30",
            "2024-05-14T22:00:00+00:00",
            "2024-05-15T22:00:00+00:00",
        ),
        (
            "daily",
            "Europe/Berlin",
            "2024-05-14T23:59:59",
            "2024-05-13T22:00:00+00:00",
            "2024-05-14T22:00:00+00:00",
        ),
        # 2024-05-15 is a Wednesday; the week is Monday 13th to Monday 20th.
        (
            "weekly",
            "UTC",
            "2024-05-15T08:00",
            "2024-05-13T00:00:00+00:00",
            "2024-05-20T00:00:00+00:00",
        ),
        (
            "weekly",
            "UTC",
            "2024-05-19T23:59:59",
            "2024-05-13T00:00:00+00:00",
            "2024-05-20T00:00:00+00:00",
        ),
        (
            "weekly",
            "UTC",
            "2024-05-20T00:00",
            "2024-05-20T00:00:00+00:00",
            "2024-05-27T00:00:00+00:00",
        ),
        (
            "monthly",
            "America/New_York",
            "2024-01-31T23:59:59",
            "2024-01-01T05:00:00+00:00",
            "2024-02-01T05:00:00+00:00",
        ),
        (
            "monthly",
            "America/New_York",
            "2024-02-01T00:00",
            "2024-02-01T05:00:00+00:00",
            "2024-03-01T05:00:00+00:00",
        ),
        (
            "monthly",
            "Asia/Tokyo",
            "2024-12-31T23:00",
            "2024-11-30T15:00:00+00:00",
            "2024-12-31T15:00:00+00:00",
        ),
        (
            "monthly",
            "UTC",
            "2024-12-31T23:00",
            "2024-12-01T00:00:00+00:00",
            "2025-01-01T00:00:00+00:00",
        ),
        # The day clocks spring forward in Berlin lasts 23 hours, the day they fall back 25.
        (
            "daily",
            "Europe/Berlin",
            "2024-03-31T12:00",
            "2024-03-30T23:00:00+00:00",
            "2024-03-31T22:00:00+00:00",
        ),
        (
            "daily",
            "Europe/Berlin",
            "2024-10-27T12:00",
            "2024-10-26T22:00:00+00:00",
            "2024-10-27T23:00:00+00:00",
        ),
    ],
)
def test_calendar_windows_in_a_time_zone(
    window: str, tz: str, now: str, start: str, end: str
) -> None:
    begins, ends = window_bounds(window, tz, at(now, tz))
    assert (utc(begins), utc(ends)) == (start, end)


def test_a_day_whose_midnight_is_skipped_starts_at_its_first_instant() -> None:
    # Clocks in Havana went from 00:00 to 01:00 on 2024-03-10: the day began at 01:00 local,
    # which is 05:00 UTC (UTC-4).
    begins, ends = window_bounds(
        "daily", "America/Havana", at("2024-03-10T12:00", "America/Havana")
    )
    assert utc(begins) == "2024-03-10T05:00:00+00:00"
    assert utc(ends) == "2024-03-11T04:00:00+00:00"


def test_the_total_window_never_ends() -> None:
    assert window_bounds("total", "Europe/Berlin", at("2024-05-15T12:00")) == (0, None)


def test_every_instant_lies_inside_its_window() -> None:
    windows = Windows()
    now = at("2024-01-01T00:00", "Pacific/Auckland")
    for _ in range(400):
        for window in ("daily", "weekly", "monthly"):
            begins, ends = windows.bounds(window, "Pacific/Auckland", now)
            assert ends is not None
            assert begins <= now < ends
            assert (begins, ends) == window_bounds(window, "Pacific/Auckland", now)
        now += 86400 * 0.97


def test_unknown_windows_and_zones_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown budget window"):
        window_bounds("hourly", "UTC", 0.0)
    with pytest.raises(ValueError, match="unknown time zone"):
        window_bounds("daily", "Mars/Olympus", 0.0)

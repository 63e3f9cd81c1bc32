"""Report ranges: calendar units of the definition's time zone, ending where the day (week,
month) of the run begins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from telemetry.reports.cron import time_zone
from telemetry.reports.ranges import RANGES, report_range

PARIS = time_zone("Europe/Paris")
RUN = datetime(2026, 12, 9, 15, tzinfo=UTC)  # a Wednesday


@pytest.mark.parametrize(
    ("name", "start", "end"),
    [
        ("previous_day", datetime(2026, 12, 8), datetime(2026, 12, 9)),
        ("previous_week", datetime(2026, 11, 30), datetime(2026, 12, 7)),
        ("previous_month", datetime(2026, 11, 1), datetime(2026, 12, 1)),
        ("last_7d", datetime(2026, 12, 2), datetime(2026, 12, 9)),
        ("last_30d", datetime(2026, 11, 9), datetime(2026, 12, 9)),
    ],
)
def test_each_range_in_utc(name: str, start: datetime, end: datetime) -> None:
    assert report_range(name, RUN, time_zone("UTC")) == (
        start.replace(tzinfo=UTC),
        end.replace(tzinfo=UTC),
    )


def test_ranges_are_local_midnights() -> None:
    start, end = report_range("previous_week", RUN, PARIS)
    assert (start, end) == (
        datetime(2026, 11, 29, 23, tzinfo=UTC),
        datetime(2026, 12, 6, 23, tzinfo=UTC),
    )
    # late on Sunday in UTC is already Monday in Tokyo: a new week there
    tokyo = time_zone("Asia/Tokyo")
    sunday_night = datetime(2026, 12, 6, 16, tzinfo=UTC)
    assert report_range("previous_week", sunday_night, tokyo)[1] == datetime(
        2026, 12, 6, 15, tzinfo=UTC
    )


def test_a_week_holding_a_change_of_the_clocks_is_an_hour_shorter_or_longer() -> None:
    spring = report_range("previous_week", datetime(2026, 3, 30, 8, tzinfo=UTC), PARIS)
    autumn = report_range("previous_week", datetime(2026, 10, 26, 8, tzinfo=UTC), PARIS)
    assert spring[1] - spring[0] == timedelta(hours=167)
    assert autumn[1] - autumn[0] == timedelta(hours=169)


def test_a_month_starting_on_the_first() -> None:
    start, end = report_range("previous_month", datetime(2026, 1, 1, 0, 30, tzinfo=UTC), PARIS)
    assert start == datetime(2025, 11, 30, 23, tzinfo=UTC)
    assert end == datetime(2025, 12, 31, 23, tzinfo=UTC)


def test_an_unknown_range_is_refused() -> None:
    assert "previous_year" not in RANGES
    with pytest.raises(ValueError, match="unknown range 'previous_year'"):
        report_range("previous_year", RUN, PARIS)

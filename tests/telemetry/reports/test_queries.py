"""The step a report reads totals at: one that divides the range's bounds, so the analytics do
not widen the range, and keeps within the analytics' points."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from telemetry.reports.cron import time_zone
from telemetry.reports.queries import change_pct, total_step
from telemetry.reports.ranges import report_range

RUN = datetime(2026, 12, 9, 15, tzinfo=UTC)


def test_whole_hour_zones_read_whole_hours() -> None:
    for zone in ("UTC", "Europe/Paris", "America/New_York"):
        start, end = report_range("previous_month", RUN, time_zone(zone))
        assert total_step(start, end) == 3600, zone


def test_half_and_quarter_hour_zones_read_finer_steps() -> None:
    start, end = report_range("previous_week", RUN, time_zone("Asia/Kolkata"))
    assert start.minute == 30 and total_step(start, end) == 1800
    start, end = report_range("previous_day", RUN, time_zone("Asia/Kathmandu"))
    assert start.minute == 15 and total_step(start, end) == 900
    # a month at quarter hours is more points than the analytics read: whole hours, widened
    start, end = report_range("previous_month", RUN, time_zone("Asia/Kathmandu"))
    assert total_step(start, end) == 3600


def test_hourly_dimensions_never_read_finer_than_an_hour() -> None:
    start = datetime(2026, 12, 1, 18, 30, tzinfo=UTC)
    assert total_step(start, start + timedelta(days=7), finest=3600) == 3600


def test_the_change_is_in_percent_and_none_without_a_base() -> None:
    assert change_pct(150, 100) == 50.0
    assert change_pct(0, 0) is None and change_pct(5, None) is None and change_pct(None, 5) is None

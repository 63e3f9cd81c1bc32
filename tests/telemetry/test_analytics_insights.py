"""The parts of forecasts and anomalies that need no database: a group's forecast at a month's
edge, the hours an anomaly report covers, and how much a count of errors or requests is worth."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from telemetry.analytics_anomalies import MAX_COUNT_SCORE, count_score, shown_range
from telemetry.analytics_forecast import DAY, group_forecast, next_month

NOW = datetime(2026, 3, 31, 18, 0, tzinfo=UTC)
TODAY = datetime(2026, 3, 31, tzinfo=UTC)


def days_back(values: list[float], today_so_far: float) -> list[tuple[datetime, float]]:
    first = TODAY - len(values) * DAY
    return [(first + n * DAY, value) for n, value in enumerate(values)] + [(TODAY, today_so_far)]


def test_on_a_months_last_evening_the_rest_of_today_is_all_that_is_left() -> None:
    days = days_back([0.0] * 5 + [10.0] * 40, today_so_far=7.5)
    found = group_forecast(
        "model-a",
        days,
        now=NOW,
        month_start=datetime(2026, 3, 1, tzinfo=UTC),
        month_end=next_month(TODAY),
        next_end=TODAY + 30 * DAY,
    )
    assert len(found.history) == 40  # the days before the first spend are not history
    assert found.spent_this_month == 30 * 10 + 7.5 and found.spent_today == 7.5
    assert found.month_end.expected == pytest.approx(307.5 + 0.25 * 10)
    assert found.month_end.lower <= found.month_end.expected <= found.month_end.upper
    assert found.next_days.expected == pytest.approx(7.5 + 0.25 * 10 + 29 * 10)
    assert found.method == "holt-winters" and found.backtest.wape == pytest.approx(0.0)
    assert found.daily.values[0] == pytest.approx(10.0) and len(found.daily.values) == 30


def test_a_group_without_spend_forecasts_nothing() -> None:
    found = group_forecast(
        "",
        days_back([0.0] * 10, today_so_far=0.0),
        now=NOW,
        month_start=datetime(2026, 3, 1, tzinfo=UTC),
        month_end=next_month(TODAY),
        next_end=TODAY + 30 * DAY,
    )
    assert found.history == [] and found.method == "none"
    assert found.month_end.expected == 0 and found.backtest.wape is None


def test_next_month_rolls_over_the_year() -> None:
    assert next_month(datetime(2026, 12, 5, tzinfo=UTC)) == datetime(2027, 1, 1, tzinfo=UTC)
    assert next_month(datetime(2026, 2, 28, tzinfo=UTC)) == datetime(2026, 3, 1, tzinfo=UTC)


def test_the_hour_in_progress_is_never_shown() -> None:
    now = datetime(2026, 5, 4, 13, 25, tzinfo=UTC)
    first, last = shown_range(now - timedelta(hours=24), now, now)
    assert first == datetime(2026, 5, 3, 13, tzinfo=UTC)
    assert last == datetime(2026, 5, 4, 13, tzinfo=UTC)
    earlier = shown_range(now - timedelta(days=3, minutes=30), now - timedelta(days=2), now)
    assert earlier == (datetime(2026, 5, 1, 12, tzinfo=UTC), datetime(2026, 5, 2, 14, tzinfo=UTC))
    assert shown_range(now, now, now) == (datetime(2026, 5, 4, 13, tzinfo=UTC),) * 2


def test_a_few_events_in_a_quiet_hour_are_worth_little() -> None:
    # one failure in 25 requests where 1 % fail: common, whatever the robust spread says
    assert count_score(1, 25 * 0.01) < 2
    assert count_score(3, 25 * 0.01) < 4  # rare, but such hours come along in weeks of them
    assert count_score(8, 25 * 0.01) > 4
    assert count_score(40, 400 * 0.01) > 4  # 10 % of a busy hour is an incident
    assert count_score(0, 0.25) == 0 and count_score(2, 2.0) == 0
    assert count_score(2, 0.0) == MAX_COUNT_SCORE
    # four requests where one is usual happen; 24 where five are do not
    assert count_score(4, 1.0) < 4 < count_score(24, 5.0)
    # far in the tail the worth keeps growing (no rounding to a tail of zero) up to its cap
    scores = [count_score(count, 200.0) for count in (240, 260, 280, 300, 340)]
    assert scores == sorted(scores) and scores[-1] < MAX_COUNT_SCORE
    assert count_score(1645, 470.0) == MAX_COUNT_SCORE

"""A budget's window projected from its subject's daily spend: the rest of today and the whole
days left, on top of what the window spent; linear where there is too little history."""

from __future__ import annotations

import pytest

from admin_ui.budget_projection import MIN_HISTORY_DAYS, forecast_window

DAY = 86_400.0


def test_the_days_left_are_forecast_on_top_of_the_spend() -> None:
    now = 10 * DAY + 0.5 * DAY  # noon
    end = 13 * DAY  # two and a half days on
    found = forecast_window(50_000_000, end, now, [10.0] * 21)
    assert found is not None and found.method == "holt-winters"
    assert found.expected_micros == pytest.approx(75_000_000, abs=1)
    assert found.lower_micros <= found.expected_micros <= found.upper_micros


def test_a_weekly_rhythm_is_followed() -> None:
    """Weekdays spend 10, weekends 1: a window's last two days, a weekend, add 2 (the average
    day would add 15), and the two weekdays after it add 20."""
    weeks = ([1.0] * 2 + [10.0] * 5) * 4  # four weeks ending on a Friday
    now = 100 * DAY  # Saturday's start
    found = forecast_window(0, now + 2 * DAY, now, weeks)
    assert found is not None
    assert found.expected_micros == pytest.approx(2_000_000, rel=0.05)
    found = forecast_window(0, now + 4 * DAY, now, weeks)
    assert found is not None
    assert found.expected_micros == pytest.approx(22_000_000, rel=0.05)


def test_too_little_history_or_no_end_stays_linear() -> None:
    assert forecast_window(1, 2 * DAY, DAY, [10.0] * (MIN_HISTORY_DAYS - 1)) is None
    assert forecast_window(1, None, DAY, [10.0] * 30) is None  # a total budget
    assert forecast_window(1, DAY, 2 * DAY, [10.0] * 30) is None  # a window already over
    assert forecast_window(1, 2 * DAY, DAY, None) is None

"""A report's cron schedule in words, for the simple ones; the expression itself otherwise."""

from __future__ import annotations

import pytest

from admin_ui.report_pages_schedule import schedule_words


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("0 7 * * 1", "Mondays at 07:00"),
        ("0 8 * * mon", "Mondays at 08:00"),
        ("30 8 * * *", "Every day at 08:30"),
        ("0 6 * * 1-5", "Weekdays at 06:00"),
        ("0 7 * * mon,fri", "Mondays and Fridays at 07:00"),
        ("0 7 * * sun,sat,wed", "Wednesdays, Saturdays and Sundays at 07:00"),
        ("0 9 1 * *", "On day 1 of every month at 09:00"),
        ("@weekly", "Sundays at 00:00"),
        ("@daily", "Every day at 00:00"),
        ("*/15 * * * *", None),
        ("0 8,17 * * *", None),
        ("0 0 1 1 *", None),
        ("0 7 1 * 1", None),
        ("not a schedule", None),
    ],
)
def test_schedule_words(expression: str, words: str | None) -> None:
    assert schedule_words(expression) == words

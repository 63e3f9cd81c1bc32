"""Cron expressions: the five fields with ranges, steps, lists and names; the next run in a
time zone, across the changes of the clocks (Europe/Paris: 29 March 2026 02:00 → 03:00,
25 October 2026 03:00 → 02:00; America/New_York: 8 March and 1 November 2026)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from telemetry.reports.cron import CronError, next_run, parse_cron, time_zone

PARIS = time_zone("Europe/Paris")
NEW_YORK = time_zone("America/New_York")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def runs(expression: str, after: datetime, zone: str, count: int) -> list[datetime]:
    cron, found, at = parse_cron(expression), [], after
    for _ in range(count):
        following = next_run(cron, at, time_zone(zone))
        assert following is not None
        found.append(following)
        at = following
    return found


def test_fields_take_ranges_steps_lists_and_names() -> None:
    cron = parse_cron("*/15 9-17/4 1,15 jan-mar,DEC mon-fri")
    assert cron.minutes == {0, 15, 30, 45}
    assert cron.hours == {9, 13, 17}
    assert cron.days == {1, 15}
    assert cron.months == {1, 2, 3, 12}
    assert cron.weekdays == {1, 2, 3, 4, 5}
    assert parse_cron("0 0 * * 7").weekdays == {0}  # 7 is Sunday too
    assert parse_cron("5/20 * * * *").minutes == {5, 25, 45}
    assert parse_cron("@weekly").expression == "0 0 * * 0"
    assert parse_cron("  0   8 *  * MON ").expression == "0 8 * * MON"


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("0 8 * *", "takes 5 fields"),
        ("0 8 * * * *", "takes 5 fields"),
        ("60 8 * * *", "minute: 60 is outside 0-59"),
        ("0 24 * * *", "hour: 24 is outside 0-23"),
        ("0 8 0 * *", "day of month: 0 is outside 1-31"),
        ("0 8 * 13 *", "month: 13 is outside 1-12"),
        ("0 8 * * 8", "day of week: 8 is outside 0-7"),
        ("0 8 * * funday", "day of week: 'funday' is not a number or a name"),
        ("*/0 * * * *", "minute: the step in '*/0' must be a whole number above 0"),
        ("0 17-9 * * *", "hour: the range '17-9' runs backwards"),
        ("0,,5 * * * *", "minute: an empty item"),
        ("0 0 30 feb *", "never matches a real date"),
        ("@fortnightly", "unknown shorthand"),
    ],
)
def test_a_bad_expression_says_which_field_and_why(expression: str, problem: str) -> None:
    with pytest.raises(CronError, match=problem.replace("(", r"\(").replace("*", r"\*")):
        parse_cron(expression)


def test_an_unknown_time_zone_is_refused() -> None:
    for name in ("Mars/Olympus", "", "../etc/passwd", "/etc/localtime"):
        with pytest.raises(CronError, match="not an IANA time zone"):
            time_zone(name)


def test_the_next_run_is_in_the_schedules_time_zone() -> None:
    # Monday 08:00 in Paris is 07:00 UTC in winter; Monday 7 December 2026.
    assert runs("0 8 * * mon", utc(2026, 12, 7, 1), "Europe/Paris", 2) == [
        utc(2026, 12, 7, 7),
        utc(2026, 12, 14, 7),
    ]
    # strictly after: a run due at this very instant is the following one
    assert runs("0 8 * * mon", utc(2026, 12, 7, 8), "UTC", 1) == [utc(2026, 12, 14, 8)]


def test_either_day_matches_when_both_day_fields_are_restricted() -> None:
    # the 1st of the month or a Friday: Fri 4, Fri 11 ... Tue 1 December 2026
    found = runs("0 0 1 * fri", utc(2026, 11, 27, 1), "UTC", 2)
    assert found == [utc(2026, 12, 1), utc(2026, 12, 4)]


def test_a_time_the_clocks_skip_runs_once_when_they_have_jumped() -> None:
    # 02:30 does not exist in Paris on 29 March 2026: the job runs at 03:00 CEST (01:00 UTC)
    found = runs("30 2 * * *", utc(2026, 3, 28, 12), "Europe/Paris", 3)
    assert found == [utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30), utc(2026, 3, 31, 0, 30)]
    # every 20 minutes through the skipped hour: the three skipped times make one run at 03:00
    found = runs("*/20 2-3 29 3 *", utc(2026, 3, 29, 0, 0), "Europe/Paris", 4)
    assert [moment.astimezone(PARIS).strftime("%H:%M %Z") for moment in found[:3]] == [
        "03:00 CEST",
        "03:20 CEST",
        "03:40 CEST",
    ]
    assert found[3] == utc(2027, 3, 29, 0, 0)  # 02:00 CEST: 2027 changed on 28 March


def test_a_time_the_clocks_show_twice_runs_once_the_first_time() -> None:
    # 02:30 happens twice in Paris on 25 October 2026: 00:30 UTC (CEST), then 01:30 UTC (CET)
    found = runs("30 2 * * *", utc(2026, 10, 24, 12), "Europe/Paris", 2)
    assert found == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]
    # asked during the second pass of the repeated hour, the next run is the next day's
    assert runs("30 2 * * *", utc(2026, 10, 25, 1, 0), "Europe/Paris", 1) == [
        utc(2026, 10, 26, 1, 30)
    ]
    # an hourly job runs 24 times on a 25-hour day: each wall-clock time once
    day = runs("0 * * * *", utc(2026, 10, 24, 22, 30), "Europe/Paris", 24)
    assert day[0] == utc(2026, 10, 24, 23) and day[-1] == utc(2026, 10, 25, 23)
    assert len({moment.astimezone(PARIS).hour for moment in day}) == 24


def test_new_york_changes_the_clocks_at_two_in_the_morning() -> None:
    spring = runs("15 2 * * *", utc(2026, 3, 7, 12), "America/New_York", 2)
    assert [moment.astimezone(NEW_YORK).strftime("%d %H:%M") for moment in spring] == [
        "08 03:00",
        "09 02:15",
    ]
    autumn = runs("15 1 * * *", utc(2026, 10, 31, 12), "America/New_York", 2)
    assert autumn == [utc(2026, 11, 1, 5, 15), utc(2026, 11, 2, 6, 15)]

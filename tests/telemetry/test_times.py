"""Times people give the gateway: read into UTC within the range every part can store and show."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from telemetry import times


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2030-01-31T00:00:00Z", datetime(2030, 1, 31, tzinfo=UTC)),
        ("2030-01-31T00:00:00", datetime(2030, 1, 31, tzinfo=UTC)),
        ("2030-01-31T02:00:00+02:00", datetime(2030, 1, 31, tzinfo=UTC)),
        ("1970-01-01T00:00:00Z", times.EARLIEST),
        ("9999-12-30T23:59:59.999999Z", times.LATEST),
        ("9999-12-31T10:00:00+12:00", datetime(9999, 12, 30, 22, tzinfo=UTC)),
        ("  2030-01-31  ", datetime(2030, 1, 31, tzinfo=UTC)),
    ],
)
def test_iso_times_are_read_as_utc(text: str, expected: datetime) -> None:
    parsed = times.parse_time(text)
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "9999-12-31T23:59:59-12:00",  # the year 10000 once in UTC: an OverflowError before
        "9999-12-31T00:00:00Z",
        "0001-01-01T00:00:00+01:00",  # the year 0 once in UTC
        "1969-12-31T23:59:59Z",
    ],
)
def test_times_outside_the_range_are_refused_with_the_range(text: str) -> None:
    with pytest.raises(times.InvalidTime) as refused:
        times.parse_time(text)
    assert str(refused.value) == (
        "out of range: the time must fall between 1970-01-01T00:00:00Z and 9999-12-30T23:59:59Z"
    )


@pytest.mark.parametrize(
    "text", ["", "tomorrow", "10000-01-01T00:00:00Z", "2030-02-30", "x" * 10_000]
)
def test_text_that_is_no_time_is_refused_shortly(text: str) -> None:
    with pytest.raises(times.InvalidTime) as refused:
        times.parse_time(text)
    assert str(refused.value).startswith("not an ISO 8601 time")
    assert len(str(refused.value)) < 200


def test_epoch_seconds_are_read_within_the_range() -> None:
    assert times.parse_time(0) == times.EARLIEST
    assert times.parse_time(1_900_000_000.5) == datetime.fromtimestamp(1_900_000_000.5, UTC)
    bad: list[Any] = [
        -1,
        1e308,
        10**30,
        float("nan"),
        float("inf"),
        253_402_300_800,
        True,
        None,
        [],
    ]
    for value in bad:
        with pytest.raises(times.InvalidTime):
            times.parse_time(value)


def test_every_time_in_the_range_can_be_shown_in_any_zone() -> None:
    for zone in (
        ZoneInfo("Pacific/Kiritimati"),
        ZoneInfo("Etc/GMT+12"),
        timezone(timedelta(hours=23, minutes=59)),
    ):
        assert times.LATEST.astimezone(zone).year == 9999
        assert times.EARLIEST.astimezone(zone).year in (1969, 1970)


def test_naive_and_aware_datetimes_are_checked_alike() -> None:
    assert times.within_range(datetime(2030, 1, 1)) == datetime(2030, 1, 1, tzinfo=UTC)
    with pytest.raises(times.InvalidTime):
        times.within_range(datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-12))))


def test_a_duration_past_the_range_is_refused() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert times.later_by(now, timedelta(days=30)) == datetime(2030, 1, 31, tzinfo=UTC)
    with pytest.raises(times.InvalidTime):
        times.later_by(now, timedelta(days=999_999_999))

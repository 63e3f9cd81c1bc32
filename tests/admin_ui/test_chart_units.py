"""Values in their units, round axis ticks and their labels, time ticks and time labels."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise

import pytest

from admin_ui.chart_units import (
    axis_ticks,
    format_value,
    moment_label,
    nice_step,
    tick_labels,
    time_label,
    time_ticks,
)

M = "\u2212"  # the minus sign
T0 = datetime(2026, 12, 6, 13, 7, 21, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (None, "count", "—"),
        (math.nan, "usd", "—"),
        (math.inf, "ms", "—"),
        (0, "count", "0"),
        (-0.0, "count", "0"),
        (7, "count", "7"),
        (1234, "count", "1,234"),
        (9999, "count", "9,999"),
        (12_345, "count", "12.3k"),
        (123_456, "count", "123k"),
        (999_999, "count", "1M"),
        (4_500_000, "count", "4.5M"),
        (2.5e9, "count", "2.5B"),
        (3e15, "count", "3,000T"),
        (0.25, "count", "0.25"),
        (12.34, "count", "12.3"),
        (-1234, "count", f"{M}1,234"),
        (-12_345, "tokens", f"{M}12.3k"),
        (1_500_000, "tokens", "1.5M"),
        (0, "usd", "$0"),
        (12.345, "usd", "$12.35"),
        (1, "usd", "$1.00"),
        (0.5, "usd", "$0.50"),
        (0.0012, "usd", "$0.0012"),
        (0.000_012_34, "usd", "$0.000012"),
        (3e-9, "usd", "$0.000000003"),
        (1e-15, "usd", "<$0.000000000001"),
        (1234.5, "usd", "$1.2k"),
        (2_500_000, "usd", "$2.5M"),
        (7e18, "usd", "$7,000,000T"),
        (-12.34, "usd", f"{M}$12.34"),
        (0, "ms", "0 ms"),
        (0.42, "ms", "0.42 ms"),
        (12.34, "ms", "12.3 ms"),
        (850, "ms", "850 ms"),
        (1250, "ms", "1.25 s"),
        (1500, "ms", "1.5 s"),
        (12_500, "ms", "12.5 s"),
        (150_000, "ms", "2.5 min"),
        (5_400_000, "ms", "1.5 h"),
        (-850, "ms", f"{M}850 ms"),
        (0, "percent", "0 %"),
        (0.125, "percent", "12.5 %"),
        (1, "percent", "100 %"),
        (0.0005, "percent", "0.05 %"),
        (-0.031, "percent", f"{M}3.1 %"),
        (12.5, "percent", "1,250 %"),
        (12.5, "per_second", "12.5/s"),
        (1234.5, "per_second", "1,234/s"),
        (45_000, "per_second", "45k/s"),
        (0.25, "per_second", "0.25/s"),
    ],
)
def test_format_value(value: float | None, unit: str, text: str) -> None:
    assert format_value(value, unit) == text


def test_no_value_is_ever_written_in_scientific_notation() -> None:
    for exponent in range(-20, 22):
        for unit in ("count", "usd", "ms", "tokens", "percent", "per_second"):
            text = format_value(10.0**exponent * 1.7, unit)
            assert "e" not in text.replace("min", ""), (exponent, unit, text)


def test_an_unknown_unit_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown unit 'bytes'"):
        format_value(1, "bytes")
    with pytest.raises(ValueError):
        tick_labels([0, 1], "bytes")


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (0, 97, [0, 20, 40, 60, 80, 100]),
        (0, 100, [0, 20, 40, 60, 80, 100]),
        (0, 0.0123, [0, 0.005, 0.01, 0.015]),
        (-3, 7, [-4, -2, 0, 2, 4, 6, 8]),
        (0, 0, [0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        (0, 1.3, [0, 0.5, 1.0, 1.5]),
        (0, 12_000, [0, 5000, 10_000, 15_000]),
    ],
)
def test_axis_ticks_are_round_and_cover_the_range(
    low: float, high: float, expected: list[float]
) -> None:
    ticks = axis_ticks(low, high)
    assert ticks == expected
    assert ticks[0] <= low and ticks[-1] >= high


def test_axis_ticks_of_whole_counts_take_whole_steps() -> None:
    assert axis_ticks(0, 4, ticks=8) == [0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4]
    assert axis_ticks(0, 4, ticks=8, whole=True) == [0, 1, 2, 3, 4]
    assert nice_step(0.3, whole=True) == pytest.approx(0.1)  # below one, fractions it is
    for largest in (0.7, 3, 17, 950, 12_345, 9e9):
        step = nice_step(largest)
        mantissa = step / 10 ** math.floor(math.log10(step))
        assert round(mantissa, 9) in (1, 2, 5)
        assert largest / step <= 5


def test_tick_labels_share_one_scale_and_say_the_unit() -> None:
    assert tick_labels([0, 2500, 5000, 7500, 10_000], "count") == [
        "0",
        "2.5k",
        "5.0k",
        "7.5k",
        "10.0k",
    ]
    assert tick_labels([0, 2000, 4000, 6000, 8000], "count") == [
        "0",
        "2,000",
        "4,000",
        "6,000",
        "8,000",
    ]
    assert tick_labels([0, 0.5, 1, 1.5], "usd") == ["$0", "$0.50", "$1.00", "$1.50"]
    assert tick_labels([0, 200, 400], "usd") == ["$0", "$200", "$400"]
    assert tick_labels([0, 0.0005, 0.001], "usd") == ["$0", "$0.0005", "$0.0010"]
    assert tick_labels([0, 500, 1000, 1500], "ms") == ["0 s", "0.5 s", "1.0 s", "1.5 s"]
    assert tick_labels([0, 10, 20], "ms") == ["0 ms", "10 ms", "20 ms"]
    assert tick_labels([0, 0.05, 0.1, 0.15], "percent") == ["0 %", "5 %", "10 %", "15 %"]
    assert tick_labels([0, 0.005, 0.01], "percent") == ["0 %", "0.5 %", "1.0 %"]
    assert tick_labels([-2, 0, 2], "per_second") == [f"{M}2/s", "0/s", "2/s"]
    assert tick_labels([], "count") == []


@pytest.mark.parametrize(
    ("span", "step"),
    [
        (timedelta(minutes=3), timedelta(seconds=30)),
        (timedelta(minutes=15), timedelta(minutes=5)),
        (timedelta(hours=1), timedelta(minutes=10)),
        (timedelta(hours=6), timedelta(hours=1)),
        (timedelta(days=1), timedelta(hours=6)),
        (timedelta(days=2), timedelta(hours=12)),
        (timedelta(days=7), timedelta(days=1)),
        (timedelta(days=30), timedelta(days=7)),
        (timedelta(days=90), timedelta(days=14)),
    ],
)
def test_time_ticks_fall_on_round_boundaries(span: timedelta, step: timedelta) -> None:
    ticks = time_ticks(T0, T0 + span)
    assert 2 <= len(ticks) <= 7
    assert all(T0 <= tick <= T0 + span for tick in ticks)
    assert all(tick.tzinfo is not None and tick.utcoffset() == timedelta(0) for tick in ticks)
    assert all(b - a == step for a, b in pairwise(ticks))
    seconds = int(step.total_seconds())
    for tick in ticks:
        since_midnight = tick.hour * 3600 + tick.minute * 60 + tick.second
        if seconds < 86_400:
            assert since_midnight % seconds == 0
        else:
            assert since_midnight == 0
        if seconds >= 7 * 86_400:
            assert tick.weekday() == 0  # weeks start on Monday


def test_time_ticks_of_long_ranges_are_first_days_of_months() -> None:
    ticks = time_ticks(T0, T0 + timedelta(days=400))
    assert len(ticks) <= 7
    assert all(tick.day == 1 and tick.hour == 0 for tick in ticks)
    assert [t.month for t in ticks] == [1, 3, 5, 7, 9, 11, 1]
    assert len(time_ticks(T0, T0 + timedelta(days=3000))) <= 7
    assert time_ticks(T0, T0 + timedelta(days=7), max_ticks=4) == [
        datetime(2026, 12, day, tzinfo=UTC) for day in (7, 9, 11, 13)
    ]
    assert time_ticks(T0, T0 + timedelta(days=7), max_ticks=3) == [
        datetime(2026, 12, 7, tzinfo=UTC)
    ]


def test_time_ticks_take_naive_times_as_utc_and_convert_others() -> None:
    naive = time_ticks(datetime(2026, 12, 6, 10), datetime(2026, 12, 6, 13))
    assert naive[0] == datetime(2026, 12, 6, 10, tzinfo=UTC)
    plus_two = timezone(timedelta(hours=2))
    shifted = time_ticks(
        datetime(2026, 12, 6, 12, tzinfo=plus_two), datetime(2026, 12, 6, 15, tzinfo=plus_two)
    )
    assert shifted == naive
    assert time_ticks(T0, T0) == [T0]


def test_time_labels() -> None:
    day = 86_400
    assert time_label(datetime(2026, 12, 6, 14, 0, tzinfo=UTC), 6 * 3600) == "14:00"
    assert time_label(datetime(2026, 12, 6, 14, 0, 30, tzinfo=UTC), 300) == "14:00:30"
    assert time_label(datetime(2026, 12, 6, 0, 0, tzinfo=UTC), day) == "Dec 6"
    assert time_label(datetime(2026, 12, 6, 0, 0, tzinfo=UTC), 1800) == "00:00"
    assert time_label(datetime(2026, 12, 6, 0, 0, tzinfo=UTC), 7 * day) == "Dec 6"
    assert time_label(datetime(2026, 12, 6, 14, 0, tzinfo=UTC), 2 * day) == "Dec 6 14:00"
    assert time_label(datetime(2027, 1, 1, tzinfo=UTC), 400 * day) == "Jan 2027"
    assert time_label(datetime(2027, 3, 1, tzinfo=UTC), 400 * day) == "Mar"
    # another zone's moment is told in UTC
    evening = datetime(2026, 12, 6, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert time_label(evening, 3600) == "04:30"
    assert moment_label(evening) == "Dec 7 04:30"

"""The console's number, money, id, time and status formatting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from admin_ui import formatting as f


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "—"),
        (0.0451, "0.05 ms"),
        (4.2, "4.20 ms"),
        (12.34, "12.3 ms"),
        (218.4, "218 ms"),
        (12345.6, "12,346 ms"),
        ("not a number", "—"),
        (True, "—"),
    ],
)
def test_milliseconds(value: object, text: str) -> None:
    assert f.ms(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(218.0, "218 ms"), (1234.0, "1.23 s"), (42_500.0, "42.5 s"), (125_000.0, "2 min 5 s")],
)
def test_durations_switch_to_seconds_above_one(value: float, text: str) -> None:
    assert f.duration(value) == text


def test_seconds_and_microseconds() -> None:
    assert f.seconds(3 * 3600 + 120) == "3 h 2 min"
    assert f.seconds(7200) == "2 h"
    assert f.microseconds(34.758) == "34.8 µs"
    assert f.microseconds(2500) == "2.50 ms"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("0.000123"), "$0.000123"),
        (Decimal("0.0000034"), "$0.0000034"),
        ("0.0000034000", "$0.0000034"),
        (Decimal("1.5"), "$1.50"),
        (Decimal("1234.5"), "$1,234.50"),
        (Decimal("1E+3"), "$1,000.00"),
        (Decimal("0"), "$0.00"),
        (Decimal("-0.25"), "-$0.25"),
        (Decimal("0.1234567891"), "$0.1234567891"),
        (None, "—"),
        (0.1, "—"),  # a float is not money: never shown as if it were exact
        ("NaN", "—"),
        ("x", "—"),
    ],
)
def test_dollars_are_exact(value: object, text: str) -> None:
    assert f.dollars(value) == text


def test_tokens_counts_and_rates() -> None:
    assert f.tokens(1234567) == "1,234,567"
    assert f.tokens(None) == "—"
    assert f.rate(3374.69) == "3,375 tok/s"
    assert f.rate(68.9) == "68.9 tok/s"
    assert f.number(1.0) == "1"
    assert f.number(0.25) == "0.25"


def test_short_ids_keep_the_end_where_time_ordered_ids_differ() -> None:
    first = "01a24ba30be3715d9043fbe01ff4cabd"
    second = "01a24ba30be3754abf982a84708a9e9f"
    assert f.short_id(first) == "…1ff4cabd"
    assert f.short_id(first) != f.short_id(second)
    assert f.short_id("master") == "master"
    assert f.short_id(None) == "—"


def test_absolute_and_relative_times() -> None:
    moment = datetime(2026, 12, 6, 13, 55, 6, 339_274, tzinfo=UTC)
    berlin = moment.astimezone(timezone(timedelta(hours=1)))
    assert f.utc_text(berlin) == "2026-12-06 13:55:06 UTC"
    assert f.utc_text(moment, precise=True) == "2026-12-06 13:55:06.339 UTC"
    assert f.iso_utc(berlin) == "2026-12-06T13:55:06.339Z"
    assert f.relative_time(moment, moment + timedelta(seconds=2)) == "just now"
    assert f.relative_time(moment, moment + timedelta(seconds=42)) == "42 s ago"
    assert f.relative_time(moment, moment + timedelta(minutes=5, seconds=59)) == "5 min ago"
    assert f.relative_time(moment, moment + timedelta(hours=3)) == "3 h ago"
    assert f.relative_time(moment, moment + timedelta(days=2)) == "2 d ago"
    assert f.relative_time(moment, moment - timedelta(minutes=10)) == "in 10 min"


def test_the_time_tag_carries_the_utc_instant_for_the_script() -> None:
    moment = datetime(2026, 12, 6, 13, 55, 6, 339_274, tzinfo=UTC)
    tag = str(f.time_tag(moment))
    assert tag == (
        '<time datetime="2026-12-06T13:55:06.339Z" title="2026-12-06 13:55:06.339 UTC" '
        'data-style="absolute">2026-12-06 13:55:06 UTC</time>'
    )
    assert str(f.time_tag(None)) == "—"


@pytest.mark.parametrize(
    ("value", "tone"),
    [
        ("ok", "ok"),
        ("error", "error"),
        ("denied", "warning"),
        ("cancelled", "neutral"),
        ("block", "error"),
        ("mask", "warning"),
        (200, "ok"),
        (429, "warning"),
        (499, "neutral"),
        (503, "error"),
        ("something else", "neutral"),
    ],
)
def test_status_tones(value: object, tone: str) -> None:
    assert f.status_tone(value) == tone


def test_markup_helpers_escape_what_they_are_given() -> None:
    badge = str(f.status_badge("<b>", label="<i>x</i>"))
    assert "<i>" not in badge and "&lt;i&gt;" in badge
    chip = str(f.id_chip('a"b<c>' + "x" * 20))
    assert '"b' not in chip.split('title="')[1].split('"')[0]
    assert "&lt;c&gt;" in chip and "hidden" in chip


def test_pretty_json_indents_json_and_leaves_text() -> None:
    assert f.pretty_json('{"a": [1, 2]}') == '{\n  "a": [\n    1,\n    2\n  ]\n}'
    assert f.pretty_json("plain words") == "plain words"
    assert f.pretty_json({"é": 1}) == '{\n  "é": 1\n}'


def test_short_times_for_lists() -> None:
    now = datetime(2026, 12, 6, 18, 0, tzinfo=UTC)
    assert f.short_utc_text(datetime(2026, 12, 6, 9, 5, 7, tzinfo=UTC), now) == "09:05:07 UTC"
    assert (
        f.short_utc_text(datetime(2026, 12, 5, 9, 5, 7, tzinfo=UTC), now) == "2026-12-05 09:05 UTC"
    )
    tag = str(f.time_tag(datetime(2026, 12, 5, 9, 5, 7, tzinfo=UTC), "short"))
    assert 'data-style="short"' in tag and 'datetime="2026-12-05T09:05:07.000Z"' in tag

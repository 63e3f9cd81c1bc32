"""Numbers and times as charts show them: values in their unit, round axis ticks, time ticks on
round boundaries, and their labels.

Units: `count` and `tokens` (1,234 / 12.3k / 4.5M), `usd` ($0.0012, $12.34, $1.2k; never in
scientific notation however small), `ms` (850 ms, 1.25 s), `percent` (a ratio, 0.125 reads
"12.5 %"), `per_second` (12.5/s) and `score` (an evaluation's 0-100 score: 87.5). A negative value takes a true minus sign (U+2212), as the
stat tiles' changes do; a missing value reads "—" as everywhere in the console. Times are UTC.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Final, Literal, cast, get_args

Unit = Literal["count", "usd", "ms", "tokens", "percent", "per_second", "score"]
UNITS: Final = frozenset(get_args(Unit))
ADDITIVE_UNITS: Final = frozenset({"count", "usd", "tokens"})
"""Units whose values add up over time, so a legend shows their total rather than the last."""

MISSING: Final = "—"
MINUS: Final = "\u2212"
MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
"""English month names, fixed: labels must not depend on the server's locale."""
DAY: Final = 86_400
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

_LARGE: Final = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k"))
_USD_DECIMALS: Final = 12
"""Beyond this many decimals a cost is shown as below the smallest one written out."""


# --- values ----------------------------------------------------------------------------------


def _strip(text: str, keep: int = 0) -> str:
    """Drop trailing zeros of a fixed-point number, keeping at least `keep` decimals."""
    if "." not in text:
        return text
    whole, fraction = text.split(".")
    fraction = fraction.rstrip("0").ljust(keep, "0")
    return f"{whole}.{fraction}" if fraction else whole


def _significant(magnitude: float, digits: int = 3, max_decimals: int = 6) -> str:
    """A non-negative number to `digits` significant digits, grouped, without trailing zeros."""
    if magnitude == 0:
        return "0"
    decimals = min(max(digits - 1 - math.floor(math.log10(magnitude)), 0), max_decimals)
    return _strip(f"{magnitude:,.{decimals}f}")


def _compact(magnitude: float) -> str:
    """12.3k, 123k, 4.5M: one decimal below a hundred of the suffix, none above."""
    index = next((i for i, (size, _) in enumerate(_LARGE) if magnitude >= size), len(_LARGE) - 1)
    size, suffix = _LARGE[index]
    scaled = magnitude / size
    text = _strip(f"{scaled:.1f}") if scaled < 99.95 else f"{scaled:,.0f}"
    if text == "1,000" and index > 0:
        return f"1{_LARGE[index - 1][1]}"
    return f"{text}{suffix}"


def _count(magnitude: float) -> str:
    if magnitude >= 10_000:
        return _compact(magnitude)
    if magnitude >= 100 or magnitude.is_integer():
        return f"{magnitude:,.0f}" if magnitude < 9_999.5 else _compact(magnitude)
    return _significant(magnitude)


def _usd(magnitude: float) -> str:
    if magnitude == 0:
        return "$0"
    if magnitude >= 999.995:
        return f"${_compact(max(magnitude, 1000.0))}"
    if magnitude >= 1:
        return f"${magnitude:,.2f}"
    smallest = 10.0**-_USD_DECIMALS
    if magnitude < smallest / 2:
        return f"<${smallest:.{_USD_DECIMALS}f}"
    decimals = min(max(2, 1 - math.floor(math.log10(magnitude))), _USD_DECIMALS)
    return "$" + _strip(f"{magnitude:.{decimals}f}", keep=2)


def _ms(magnitude: float) -> str:
    if magnitude < 9.995:
        return _strip(f"{magnitude:.2f}") + " ms"
    if magnitude < 99.95:
        return _strip(f"{magnitude:.1f}") + " ms"
    if magnitude < 999.5:
        return f"{magnitude:.0f} ms"
    seconds = magnitude / 1000
    if seconds < 9.995:
        return _strip(f"{seconds:.2f}") + " s"
    if seconds < 59.95:
        return _strip(f"{seconds:.1f}") + " s"
    if seconds < 3600:
        return _strip(f"{seconds / 60:.1f}") + " min"
    return _strip(f"{seconds / 3600:,.1f}") + " h"


def _percent(magnitude: float) -> str:
    points = magnitude * 100
    if points < 0.995:
        return _strip(f"{points:.2f}") + " %"
    if points < 999.5:
        return _strip(f"{points:.1f}") + " %"
    return f"{points:,.0f} %"


def _per_second(magnitude: float) -> str:
    return f"{_count(magnitude)}/s"


def _score(magnitude: float) -> str:
    return _strip(f"{magnitude:.1f}")


_FORMATS: Final = {
    "count": _count,
    "tokens": _count,
    "usd": _usd,
    "ms": _ms,
    "percent": _percent,
    "per_second": _per_second,
    "score": _score,
}


def check_unit(unit: str) -> Unit:
    if unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r}: one of {', '.join(sorted(UNITS))}")
    return cast(Unit, unit)


def format_value(value: float | None, unit: str) -> str:
    """`value` in `unit` for a legend, a hover or a tile; "—" when missing or not finite."""
    formatter = _FORMATS[check_unit(unit)]
    if value is None or not math.isfinite(value):
        return MISSING
    text = formatter(abs(float(value)))
    return f"{MINUS}{text}" if value < 0 and text != formatter(0.0) else text


# --- value axes ------------------------------------------------------------------------------


def nice_step(span: float, ticks: int = 5, *, whole: bool = False) -> float:
    """A round step (1, 2 or 5 times a power of ten) cutting `span` into at most about `ticks`
    intervals; with `whole`, never finer than 1 once the span reaches 1 (whole requests need no
    fractional ticks)."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / max(ticks, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(factor * magnitude for factor in (1, 2, 5, 10) if factor * magnitude >= raw)
    return float(max(step, 1) if whole and span >= 1 else step)


def _decimals(step: float) -> int:
    """How many decimals write every multiple of `step` exactly (0.25 → 2, 5 → 0)."""
    for decimals in range(12):
        scaled = step * 10**decimals
        if abs(scaled - round(scaled)) < 1e-6 * max(scaled, 1):
            return decimals
    return 12


def axis_ticks(low: float, high: float, ticks: int = 5, *, whole: bool = False) -> list[float]:
    """Round tick values covering [low, high]: the first at or below `low`, the last at or above
    `high`, a `nice_step` apart. The chart's value axis runs from the first to the last."""
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError("axis bounds must be finite numbers")
    low, high = min(low, high), max(low, high)
    if high == low:
        high = low + max(abs(low), 1.0)
    step = nice_step(high - low, ticks, whole=whole)
    first = math.floor(low / step + 1e-9)
    last = math.ceil(high / step - 1e-9)
    decimals = _decimals(step)
    return [round(index * step, decimals) + 0.0 for index in range(first, last + 1)]


def tick_labels(ticks: Sequence[float], unit: str) -> list[str]:
    """Labels for one axis's ticks, written alike: one scale (k, M, s...) and as many decimals as
    the step needs, so an axis reads 0, 2.5k, 5k, 7.5k rather than 0, 2,500, 5k, 7.5k."""
    check_unit(unit)
    if not ticks:
        return []
    step = min((b - a for a, b in pairwise(ticks)), default=0.0) or 1.0
    largest = max(abs(tick) for tick in ticks)
    prefix, size, suffix, after = "", 1.0, "", ""
    if unit == "percent":
        size, after = 0.01, " %"
    elif unit == "ms":
        size, after = (1000.0, " s") if largest >= 1000 else (1.0, " ms")
    else:
        prefix = "$" if unit == "usd" else ""
        after = "/s" if unit == "per_second" else ""
        if largest >= 10_000:
            size, suffix = next((s, x) for s, x in _LARGE if largest >= s)
    decimals = _decimals(step / size)
    if unit == "usd" and not suffix and decimals:
        decimals = max(decimals, 2)
    return [
        _signed(f"{prefix}{abs(t) / size:,.{decimals}f}{suffix}{after}", t)
        if t
        else f"{prefix}0{after}"
        for t in ticks
    ]


def _signed(text: str, value: float) -> str:
    return f"{MINUS}{text}" if value < 0 else text


# --- time axes -------------------------------------------------------------------------------


def utc(moment: datetime) -> datetime:
    """The moment in UTC; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def epoch_seconds(moment: datetime) -> float:
    return (utc(moment) - EPOCH).total_seconds()


def from_epoch(seconds: float) -> datetime:
    return EPOCH + timedelta(seconds=seconds)


_SECOND_STEPS: Final = (
    1, 2, 5, 10, 15, 30,
    60, 120, 300, 600, 900, 1800,
    3600, 7200, 10800, 21600, 43200,
    DAY, 2 * DAY, 7 * DAY, 14 * DAY,
)  # fmt: skip
_MONTH_STEPS: Final = (1, 2, 3, 6, 12)
_MONDAY_OFFSET: Final = 4 * DAY
"""1970-01-01 was a Thursday: weeks on the axis start on the Monday four days later."""


def _second_ticks(first: float, last: float, step: int) -> list[float]:
    offset = _MONDAY_OFFSET if step % (7 * DAY) == 0 else 0
    index = math.ceil((first - offset) / step)
    ticks = []
    while (moment := index * step + offset) <= last:
        ticks.append(float(moment))
        index += 1
    return ticks


def _month_ticks(start: datetime, end: datetime, months: int) -> list[datetime]:
    month_index = start.year * 12 + start.month - 1
    if start != datetime(start.year, start.month, 1, tzinfo=UTC):
        month_index += 1
    month_index = math.ceil(month_index / months) * months
    ticks = []
    while (tick := datetime(month_index // 12, month_index % 12 + 1, 1, tzinfo=UTC)) <= end:
        ticks.append(tick)
        month_index += months
    return ticks


def time_ticks(start: datetime, end: datetime, max_ticks: int = 7) -> list[datetime]:
    """Tick times within [start, end] on round UTC boundaries (whole seconds, minutes, hours,
    midnights, Mondays, first days of months), as many as fit in `max_ticks`."""
    start, end = utc(start), utc(end)
    if end <= start:
        return [start]
    max_ticks = max(max_ticks, 1)
    first, last = epoch_seconds(start), epoch_seconds(end)
    for step in _SECOND_STEPS:
        if (last - first) / step > max_ticks + 1:
            continue
        seconds = _second_ticks(first, last, step)
        if len(seconds) <= max_ticks:
            return [EPOCH + timedelta(seconds=moment) for moment in seconds]
    for months in _MONTH_STEPS:
        ticks = _month_ticks(start, end, months)
        if len(ticks) <= max_ticks:
            return ticks
    years = math.ceil((end.year - start.year + 1) / max_ticks)
    return _month_ticks(start, end, 12 * years)


def time_label(moment: datetime, span_seconds: float) -> str:
    """A tick's label on an axis spanning `span_seconds`: "14:00" within a day, "Dec 6" for a
    midnight (which names the new day), "Dec 6 14:00" for any other time on one, "Jan 2027" or "Feb" for
    the first of a month on an axis of many months."""
    moment = utc(moment)
    clock = f"{moment:%H:%M}" + (f":{moment:%S}" if moment.second else "")
    day = f"{MONTHS[moment.month - 1]} {moment.day}"
    midnight = (moment.hour, moment.minute, moment.second) == (0, 0, 0)
    if span_seconds <= DAY:
        return day if midnight and span_seconds > 3600 else clock
    if not midnight:
        return f"{day} {clock}"
    if span_seconds > 180 * DAY and moment.day == 1:
        return f"Jan {moment.year}" if moment.month == 1 else MONTHS[moment.month - 1]
    return day


def moment_label(moment: datetime) -> str:
    """A point in time for a hover, whole: "Dec 6 14:00" (UTC), seconds when it has them."""
    moment = utc(moment)
    seconds = f":{moment:%S}" if moment.second else ""
    return f"{MONTHS[moment.month - 1]} {moment.day} {moment:%H:%M}{seconds}"

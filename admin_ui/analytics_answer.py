"""An analytics result as `GET /admin/api/analytics/{metric}` sends it: JSON, one encoded chunk
per series, or CSV, one chunk of rows per series, so an answer is never held as one string.

Values follow the rest of the admin API: money (unit `usd`) as an exact decimal string, counts
and tokens as integers, milliseconds and ratios as numbers, and null (an empty CSV cell) where
there is nothing to measure, such as a percentile of no requests. Times are ISO 8601 UTC.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import AsyncIterator, Mapping
from decimal import Decimal
from typing import Any, Final

import msgspec

from admin_ui.serialise import iso_time, money
from telemetry.analytics import AnalyticsResult, Series
from telemetry.analytics_metrics import Metric

Value = int | float | str | None
Labels = Mapping[str, Mapping[str, str]]
"""Per dimension, a display name for some of its values (a key's id → its name)."""

FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")
"""A CSV cell beginning with one of these is read as a formula by spreadsheets."""

_encoder = msgspec.json.Encoder()


def value_of(metric: Metric, value: float | Decimal | None) -> Value:
    if value is None:
        return None
    if metric.unit == "usd":
        return money(Decimal(value))
    if metric.unit in ("count", "tokens"):
        return int(value)
    number = float(value)
    return number if math.isfinite(number) else None


def _series(metric: Metric, series: Series) -> dict[str, Any]:
    return {
        "group": series.group,
        "total": value_of(metric, series.total),
        "points": [[iso_time(moment), value_of(metric, value)] for moment, value in series.points],
    }


def head(result: AnalyticsResult, labels: Labels) -> dict[str, Any]:
    """Everything of the JSON answer but its series."""
    metric = result.metric
    return {
        "object": "analytics",
        "metric": metric.name,
        "unit": metric.unit,
        "from": iso_time(result.start),
        "to": iso_time(result.end),
        "step": result.step,
        "grain": result.grain,
        "group_by": list(result.group_by),
        "total": value_of(metric, result.total),
        "labels": {name: dict(values) for name, values in labels.items()},
    }


async def json_chunks(result: AnalyticsResult, labels: Labels) -> AsyncIterator[bytes]:
    opening = _encoder.encode(head(result, labels))
    yield opening[:-1] + b',"series":['
    for position, series in enumerate(result.series):
        encoded = _encoder.encode(_series(result.metric, series))
        yield encoded if position == 0 else b"," + encoded
    yield b"]}"


def csv_cell(text: str) -> str:
    """Text as a CSV cell a spreadsheet shows as text, never runs as a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _csv_number(value: Value) -> str:
    return "" if value is None else str(value)


def _rows(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode()


async def csv_chunks(result: AnalyticsResult) -> AsyncIterator[bytes]:
    """`time,<dimension>...,<metric>`, then a row per point of each series."""
    metric = result.metric
    yield _rows([["time", *result.group_by, metric.name]])
    for series in result.series:
        group = [csv_cell(series.group[name]) for name in result.group_by]
        yield _rows(
            [
                [iso_time(moment), *group, _csv_number(value_of(metric, value))]
                for moment, value in series.points
            ]
        )


def csv_filename(result: AnalyticsResult) -> str:
    """`steerway-<metric>-<from>-<to>.csv`, times as 20240301T120000Z."""
    moments = (result.start.strftime("%Y%m%dT%H%M%SZ"), result.end.strftime("%Y%m%dT%H%M%SZ"))
    return f"steerway-{result.metric.name}-{moments[0]}-{moments[1]}.csv"

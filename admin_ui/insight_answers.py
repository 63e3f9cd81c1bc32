"""Forecasts and anomalies as the analytics API sends them (`admin_ui.insights_api`).

Money follows the rest of the admin API: an exact decimal string, here to the micro-dollar
(forecasts are estimates: more digits would claim a precision they do not have). Times are ISO
8601 UTC. A group is an object of its dimension and value (`{"model": "gpt-4o"}`), `{}` for
everything in scope, as in every analytics answer.

The per-hour anomaly scores are an analytics answer of their own, metric `anomaly_score`, unit
`score` (a signed number of typical deviations from the hour's baseline, null where the hour has
no score), so whatever reads a metric's series (a chart, an alert) reads them the same way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

import msgspec

from admin_ui.analytics_answer import Labels, csv_cell
from admin_ui.serialise import iso_time, money
from telemetry.analytics_anomalies import (
    KIND_TITLES,
    KIND_UNITS,
    AnomalyReport,
    GroupAnomaly,
    GroupScores,
)
from telemetry.analytics_forecast import (
    BACKTEST_FOLDS,
    BACKTEST_HORIZON,
    HISTORY_DAYS,
    SEASON,
    GroupForecast,
    SpendForecast,
)
from telemetry.forecast import INTERVAL, Projection

SCORE_METRIC: Final = "anomaly_score"
SCORE_UNIT: Final = "score"
_MICRO: Final = Decimal("0.000001")
_encoder = msgspec.json.Encoder()


def usd(value: float) -> str:
    return money(Decimal(repr(value)).quantize(_MICRO))


def measured(value: float | None, unit: str) -> float | str | None:
    """A value of an anomaly's series in its unit: money as a decimal string."""
    if value is None:
        return None
    return usd(value) if unit == "usd" else round(value, 6)


def group_of(dimension: str | None, value: str) -> dict[str, str]:
    return {} if dimension is None else {dimension: value}


# --- forecasts -------------------------------------------------------------------------------


def _projection(projection: Projection) -> dict[str, Any]:
    return {
        "expected": usd(projection.expected),
        "lower": usd(projection.lower),
        "upper": usd(projection.upper),
    }


def _group_forecast(
    found: SpendForecast, group: GroupForecast, dimension: str | None
) -> dict[str, Any]:
    daily = group.daily
    return {
        "group": group_of(dimension, group.group),
        "spent_today": usd(group.spent_today),
        "spent_this_month": usd(group.spent_this_month),
        "month_end": _projection(group.month_end),
        "next_30_days": _projection(group.next_days),
        "method": group.method,
        "backtest": {
            "wape": group.backtest.wape,
            "mape": group.backtest.mape,
            "folds": group.backtest.folds,
            "horizon_days": BACKTEST_HORIZON,
        },
        "history": [[iso_time(day), usd(value)] for day, value in group.history],
        "forecast": [
            [iso_time(found.day(step)), usd(value), usd(low), usd(high)]
            for step, (value, low, high) in enumerate(
                zip(daily.values, daily.lower, daily.upper, strict=True)
            )
        ],
    }


def forecast_answer(found: SpendForecast, labels: Labels) -> dict[str, Any]:
    return {
        "object": "forecast",
        "now": iso_time(found.now),
        "today": iso_time(found.today),
        "month": {"from": iso_time(found.month_start), "to": iso_time(found.month_end)},
        "next_30_days": {"from": iso_time(found.today), "to": iso_time(found.next_end)},
        "group_by": [] if found.dimension is None else [found.dimension],
        "history_days": HISTORY_DAYS,
        "season_days": SEASON,
        "interval": INTERVAL,
        "backtest": {"horizon_days": BACKTEST_HORIZON, "folds": BACKTEST_FOLDS},
        "labels": {name: dict(values) for name, values in labels.items()},
        "total": _group_forecast(found, found.total, None),
        "groups": [_group_forecast(found, group, found.dimension) for group in found.groups],
    }


# --- anomalies -------------------------------------------------------------------------------


def anomaly_item(found: GroupAnomaly) -> dict[str, Any]:
    anomaly = found.anomaly
    return {
        "kind": found.kind,
        "unit": found.unit,
        "group": group_of(found.dimension, found.group),
        "start": iso_time(anomaly.start),
        "end": iso_time(anomaly.end),
        "hours": anomaly.hours,
        "peak_at": iso_time(anomaly.peak_at),
        "score": round(anomaly.score, 3),
        "direction": anomaly.direction,
        "expected": measured(anomaly.expected, found.unit),
        "actual": measured(anomaly.actual, found.unit),
    }


def latest_item(scores: GroupScores) -> dict[str, Any]:
    latest = scores.latest
    return {
        "kind": scores.kind,
        "unit": scores.unit,
        "group": group_of(scores.dimension, scores.group),
        "at": None if latest is None else iso_time(latest.at),
        "score": None if latest is None or latest.score is None else round(latest.score, 3),
        "expected": None if latest is None else measured(latest.expected, scores.unit),
        "actual": None if latest is None else measured(latest.value, scores.unit),
    }


def anomalies_answer(report: AnomalyReport, labels: Labels) -> dict[str, Any]:
    return {
        "object": "anomalies",
        "from": iso_time(report.start),
        "to": iso_time(report.end),
        "step": 3600,
        "kinds": list(report.kinds),
        "group_by": [d for d in report.dimensions if d is not None],
        "threshold": report.options.threshold,
        "labels": {name: dict(values) for name, values in labels.items()},
        "anomalies": [anomaly_item(found) for found in report.anomalies],
        "scores": [latest_item(scores) for scores in report.series],
    }


def _score(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _score_points(
    report: AnomalyReport, scores: GroupScores
) -> list[tuple[datetime, float | None]]:
    return [(hour.at, _score(hour.score)) for hour in scores.between(report.start, report.end)]


def score_head(report: AnomalyReport, kind: str, labels: Labels) -> dict[str, Any]:
    return {
        "object": "analytics",
        "metric": SCORE_METRIC,
        "kind": kind,
        "title": f"{KIND_TITLES[kind]} anomaly score",
        "unit": SCORE_UNIT,
        "measured_in": KIND_UNITS[kind],
        "from": iso_time(report.start),
        "to": iso_time(report.end),
        "step": 3600,
        "grain": "hour",
        "group_by": [d for d in report.dimensions if d is not None],
        "threshold": report.options.threshold,
        "total": None,
        "labels": {name: dict(values) for name, values in labels.items()},
    }


async def score_json_chunks(
    report: AnomalyReport, kind: str, labels: Labels
) -> AsyncIterator[bytes]:
    """The analytics answer's shape: a series per group, a point per hour."""
    opening = _encoder.encode(score_head(report, kind, labels))
    yield opening[:-1] + b',"series":['
    for position, scores in enumerate(report.series):
        encoded = _encoder.encode(
            {
                "group": group_of(scores.dimension, scores.group),
                "total": None,
                "points": [[iso_time(at), value] for at, value in _score_points(report, scores)],
            }
        )
        yield encoded if position == 0 else b"," + encoded
    yield b"]}"


def _csv_rows(rows: Iterable[list[str]]) -> bytes:
    return "".join(",".join(row) + "\r\n" for row in rows).encode()


async def score_csv_chunks(report: AnomalyReport) -> AsyncIterator[bytes]:
    """`time,<group_by>,anomaly_score`, a row per hour of each series."""
    dimensions = [d for d in report.dimensions if d is not None]
    yield _csv_rows([["time", *dimensions, SCORE_METRIC]])
    for scores in report.series:
        group = [_quoted(csv_cell(scores.group))] if scores.dimension is not None else []
        yield _csv_rows(
            [iso_time(at), *group, "" if value is None else repr(value)]
            for at, value in _score_points(report, scores)
        )


def _quoted(text: str) -> str:
    if any(mark in text for mark in (",", '"', "\r", "\n")):
        return '"' + text.replace('"', '""') + '"'
    return text


def score_csv_filename(report: AnomalyReport, kind: str) -> str:
    moments = (report.start.strftime("%Y%m%dT%H%M%SZ"), report.end.strftime("%Y%m%dT%H%M%SZ"))
    return f"steerway-{SCORE_METRIC}-{kind}-{moments[0]}-{moments[1]}.csv"


def shown_labels(labels: Labels, groups: Iterable[Mapping[str, str]]) -> Labels:
    """Only the labels of values the answer holds."""
    present: dict[str, set[str]] = {}
    for group in groups:
        for name, value in group.items():
            present.setdefault(name, set()).add(value)
    return {
        name: {value: text for value, text in values.items() if value in present.get(name, ())}
        for name, values in labels.items()
        if name in present
    }

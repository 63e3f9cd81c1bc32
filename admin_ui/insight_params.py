"""Query parameters of the forecast and anomaly endpoints (`admin_ui.insights_api`), read into
what `telemetry.analytics_forecast` and `telemetry.analytics_anomalies` take. Every problem is a
400 in OpenAI's error shape naming the parameter, as for the rest of the analytics API.

- `GET /admin/api/analytics/forecast`: `group_by` (workspace, key or model; none: the scope as
  a whole), `top`, filters, `workspace`.
- `GET /admin/api/analytics/anomalies`: `kind` (cost, requests, error_rate, latency; several,
  comma-separated or repeated; default all), `group_by` (workspace and/or model; default both),
  the range (`from`/`to` or `last`, default the last 7 days), `top`, `threshold`, filters,
  `workspace`.
- `GET /admin/api/analytics/anomaly_score`: one `kind`, at most one `group_by` (none: the scope
  as one series), the range, `top`, `threshold`, filters, `workspace`, `format`.

Filters are dimensions of the hourly roll-ups (`model=gpt-4o`), each value or several; a `key`
filter takes ids or names, resolved by the endpoint.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from admin_ui.analytics_params import (
    FILTERS,
    first_value,
    grouped_parameters,
    read_filter,
    read_format,
    read_range,
)
from admin_ui.openapi import JsonSchema, Query, text
from admin_ui.search_params import MAX_TEXT, MAX_VALUES, bad, read_integer, read_text
from telemetry import analytics_anomalies, analytics_forecast
from telemetry.analytics import ROLLUP_DIMENSIONS
from telemetry.anomalies import DEFAULT_OPTIONS

SCOPE: Final = "workspace"
INSIGHT_FILTERS: Final = tuple(name for name in FILTERS if name in ROLLUP_DIMENSIONS)
"""Filters the forecasts and anomaly scores take: the roll-ups' dimensions (a tag or an end
user is kept per hour in other tables, without latencies)."""
DEFAULT_ANOMALY_RANGE: Final = timedelta(days=7)
MIN_THRESHOLD: Final = 1.0
MAX_THRESHOLD: Final = 100.0
KINDS: Final = tuple(analytics_anomalies.KIND_METRICS)


@dataclass(frozen=True, slots=True)
class ForecastRequest:
    dimension: str | None
    top: int
    filters: dict[str, tuple[str, ...]]
    workspace: str | None


@dataclass(frozen=True, slots=True)
class AnomalyRequest:
    kinds: tuple[str, ...]
    dimensions: tuple[str | None, ...]
    start: datetime
    end: datetime
    top: int
    threshold: float
    filters: dict[str, tuple[str, ...]]
    workspace: str | None
    format: str = "json"


def _grouped(
    items: Iterable[tuple[str, str]], single: tuple[str, ...], repeatable: tuple[str, ...]
) -> dict[str, list[str]]:
    return grouped_parameters(
        items,
        single=single,
        repeatable=repeatable,
        filters=INSIGHT_FILTERS,
        taker="this endpoint takes",
    )


def _names(grouped: dict[str, list[str]], name: str) -> tuple[str, ...]:
    """A comma-separated or repeated list, in order, each name once."""
    names = [part.strip() for value in grouped.get(name, []) for part in value.split(",")]
    if any(not part for part in names):
        raise bad(name, "must not have an empty name")
    return tuple(dict.fromkeys(names))


def _choices(grouped: dict[str, list[str]], name: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    names = _names(grouped, name)
    for value in names:
        if value not in allowed:
            raise bad(name, f"names {value[:64]!r}; one of {', '.join(allowed)}")
    return names


def _filters(
    grouped: dict[str, list[str]], exclude: tuple[str, ...] = ()
) -> dict[str, tuple[str, ...]]:
    filters = {}
    for name in INSIGHT_FILTERS:
        if name in grouped and name not in exclude:
            filters[name] = tuple(dict.fromkeys(read_filter(name, v) for v in grouped[name]))
    return filters


def _workspace(grouped: dict[str, list[str]]) -> str | None:
    workspace = first_value(grouped, SCOPE)
    if workspace is not None:
        read_text(SCOPE, workspace)
    return workspace


def _top(grouped: dict[str, list[str]], default: int, most: int) -> int:
    raw = first_value(grouped, "top")
    return default if raw is None else int(read_integer(1, most)("top", raw))


def _threshold(grouped: dict[str, list[str]]) -> float:
    raw = first_value(grouped, "threshold")
    if raw is None:
        return DEFAULT_OPTIONS.threshold
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not MIN_THRESHOLD <= value <= MAX_THRESHOLD:
        raise bad("threshold", f"must be a number from {MIN_THRESHOLD:g} to {MAX_THRESHOLD:g}")
    return value


def parse_forecast_request(items: Iterable[tuple[str, str]]) -> ForecastRequest:
    grouped = _grouped(items, ("group_by", "top", SCOPE), ())
    dimension = first_value(grouped, "group_by")
    if dimension is not None and dimension not in analytics_forecast.DIMENSIONS:
        raise bad("group_by", f"must be one of {', '.join(analytics_forecast.DIMENSIONS)}")
    return ForecastRequest(
        dimension=dimension,
        top=_top(grouped, analytics_forecast.DEFAULT_TOP, analytics_forecast.MAX_TOP),
        filters=_filters(grouped),
        workspace=_workspace(grouped),
    )


def _range(grouped: dict[str, list[str]], now: datetime) -> tuple[datetime, datetime]:
    if not any(name in grouped for name in ("from", "to", "last")):
        return now - DEFAULT_ANOMALY_RANGE, now
    start, end = read_range(grouped, now)
    if end - start > analytics_anomalies.MAX_RANGE:
        raise bad(
            "last" if "last" in grouped else "from",
            f"may span at most {analytics_anomalies.MAX_RANGE.days} days",
        )
    return start, end


_RANGE_AND_MORE: Final = ("from", "to", "last", "top", "threshold", SCOPE)


def parse_anomaly_request(items: Iterable[tuple[str, str]], *, now: datetime) -> AnomalyRequest:
    grouped = _grouped(items, _RANGE_AND_MORE, ("kind", "group_by"))
    kinds = _choices(grouped, "kind", KINDS) or KINDS
    dimensions = (
        _choices(grouped, "group_by", analytics_anomalies.GROUP_DIMENSIONS)
        or analytics_anomalies.GROUP_DIMENSIONS
    )
    start, end = _range(grouped, now)
    return AnomalyRequest(
        kinds=kinds,
        dimensions=dimensions,
        start=start,
        end=end,
        top=_top(grouped, analytics_anomalies.DEFAULT_TOP, analytics_anomalies.MAX_TOP),
        threshold=_threshold(grouped),
        filters=_filters(grouped),
        workspace=_workspace(grouped),
    )


def parse_score_request(
    items: Iterable[tuple[str, str]], *, now: datetime, accept: str | None
) -> AnomalyRequest:
    grouped = _grouped(items, (*_RANGE_AND_MORE, "kind", "group_by", "format"), ())
    kind = first_value(grouped, "kind")
    if kind is None:
        raise bad("kind", f"is needed: one of {', '.join(KINDS)}")
    if kind not in KINDS:
        raise bad("kind", f"must be one of {', '.join(KINDS)}")
    dimension = first_value(grouped, "group_by")
    if dimension is not None and dimension not in analytics_anomalies.GROUP_DIMENSIONS:
        raise bad("group_by", f"must be one of {', '.join(analytics_anomalies.GROUP_DIMENSIONS)}")
    start, end = _range(grouped, now)
    return AnomalyRequest(
        kinds=(kind,),
        dimensions=(dimension,),
        start=start,
        end=end,
        top=_top(grouped, analytics_anomalies.DEFAULT_TOP, analytics_anomalies.MAX_TOP),
        threshold=_threshold(grouped),
        filters=_filters(grouped),
        workspace=_workspace(grouped),
        format=read_format(first_value(grouped, "format"), accept),
    )


def _array(schema: JsonSchema) -> JsonSchema:
    return {"type": "array", "items": schema, "maxItems": MAX_VALUES}


_FILTER_QUERY: Final = tuple(
    Query(name, "Only these (repeatable).", _array(text(MAX_TEXT))) for name in INSIGHT_FILTERS
)
_RANGE_QUERY: Final = (
    Query("from", "From this time on: ISO 8601 or epoch seconds.", text(64)),
    Query("to", "Before this time: ISO 8601 or epoch seconds (default: now).", text(64)),
    Query(
        "last",
        "A range up to now instead: 6h, 7d or 2w (default 7d).",
        text(8, pattern=r"^[0-9]+[smhdw]$"),
    ),
    Query(
        "threshold",
        f"The score that flags an hour (default {DEFAULT_OPTIONS.threshold:g}).",
        {"type": "number", "minimum": MIN_THRESHOLD, "maximum": MAX_THRESHOLD},
    ),
    Query(
        "top",
        f"Groups read per dimension, the busiest by requests (default "
        f"{analytics_anomalies.DEFAULT_TOP}).",
        {"type": "integer", "minimum": 1, "maximum": analytics_anomalies.MAX_TOP},
    ),
    Query(SCOPE, "Only this workspace (id or slug).", text(MAX_TEXT)),
)
FORECAST_QUERY: Final = (
    Query(
        "group_by",
        "workspace, key or model; without it, everything in scope only.",
        {"enum": list(analytics_forecast.DIMENSIONS)},
    ),
    Query(
        "top",
        f"The groups forecast, the largest by spend (default {analytics_forecast.DEFAULT_TOP}).",
        {"type": "integer", "minimum": 1, "maximum": analytics_forecast.MAX_TOP},
    ),
    Query(SCOPE, "Only this workspace (id or slug).", text(MAX_TEXT)),
    *_FILTER_QUERY,
)
ANOMALY_QUERY: Final = (
    Query(
        "kind", "cost, requests, error_rate or latency (default: all).", _array({"type": "string"})
    ),
    Query("group_by", "workspace and/or model (default: both).", _array({"type": "string"})),
    *_RANGE_QUERY,
    *_FILTER_QUERY,
)
SCORE_QUERY: Final = (
    Query("kind", "cost, requests, error_rate or latency.", {"enum": list(KINDS)}),
    Query(
        "group_by",
        "workspace or model; without it, everything in scope as one series.",
        {"enum": list(analytics_anomalies.GROUP_DIMENSIONS)},
    ),
    Query(
        "format", "json (default) or csv; or send `Accept: text/csv`.", {"enum": ["json", "csv"]}
    ),
    *_RANGE_QUERY,
    *_FILTER_QUERY,
)

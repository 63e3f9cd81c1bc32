"""Query parameters of `GET /admin/api/analytics/{metric}` read into an `AnalyticsQuery`. Every
problem is a 400 in OpenAI's error shape naming the parameter.

The range is `from`/`to` (ISO 8601, no zone meaning UTC, or epoch seconds) or `last` (`15m`,
`6h`, `7d`, `2w`), 24 hours up to now by default; `to` alone reaches 24 hours back, `from` alone
up to now. A filter is a dimension's name: `model=gpt-4o&model=gpt-4o-mini` keeps either;
`group_by` takes one or two dimensions, comma-separated or repeated. The query is planned here
(`telemetry.analytics.plan`), so a step the range cannot take is refused before anything is read.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from admin_ui.openapi import JsonSchema, Query, text
from admin_ui.search_params import (
    MAX_TEXT,
    MAX_VALUES,
    bad,
    read_boolean,
    read_choice,
    read_duration,
    read_integer,
    read_text,
    read_time,
    relative_start,
)
from gateway.errors import invalid_request
from telemetry import times
from telemetry.analytics import (
    MAX_GROUP_BY,
    STEPS,
    TARGET_POINTS,
    AnalyticsQuery,
    InvalidQuery,
    plan,
)
from telemetry.analytics_dimensions import DIMENSIONS, dimensions_of
from telemetry.analytics_metrics import Metric
from telemetry.summary import TRACE_STATUSES

DEFAULT_RANGE: Final = timedelta(hours=24)
DEFAULT_TOP: Final = 10
MAX_TOP: Final = 100
MAX_STEP: Final = 366 * 86400
FORMATS: Final = ("json", "csv")
CSV: Final = "text/csv"
SCOPE_PARAMETER: Final = "workspace"
"""The workspace to read (id or slug): a scope resolved against the caller's, not a filter."""
FILTERS: Final = tuple(name for name in DIMENSIONS if name != SCOPE_PARAMETER)
"""The dimensions a query may filter by (each metric takes some of them)."""
_SINGLE: Final = ("from", "to", "last", "step", "top", "format", SCOPE_PARAMETER)
_REPEATABLE: Final = ("group_by",)
_TIME_EXAMPLES: Final = "15m, 6h, 7d or 2w"
_STEP_EXAMPLES: Final = "60, 1m, 5m, 15m, 1h, 6h or 1d"


@dataclass(frozen=True, slots=True)
class AnalyticsRequest:
    query: AnalyticsQuery
    workspace: str | None
    """The `workspace` asked for (id or slug), for the caller to resolve within its scope."""
    format: str
    """json or csv."""


def grouped_parameters(
    items: Iterable[tuple[str, str]],
    *,
    single: Sequence[str],
    repeatable: Sequence[str],
    filters: Sequence[str],
    taker: str,
) -> dict[str, list[str]]:
    """The query's values by name; an unknown name, a `single` one given twice or too many
    values of one name is a 400 (`taker` begins the list of what is known: "analytics take")."""
    known = (*single, *repeatable, *filters)
    grouped: dict[str, list[str]] = {}
    for name, value in items:
        if name not in known:
            shown = name[:100]
            raise invalid_request(
                f"Unknown parameter '{shown}'; {taker} " + ", ".join(known) + ".",
                param=shown,
                code="unknown_parameter",
            )
        grouped.setdefault(name, []).append(value)
    for name, values in grouped.items():
        if len(values) > 1 and name in single:
            raise bad(name, "is given more than once")
        if len(values) > MAX_VALUES:
            raise bad(name, f"takes at most {MAX_VALUES} values")
    return grouped


def _grouped(items: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    return grouped_parameters(
        items, single=_SINGLE, repeatable=_REPEATABLE, filters=FILTERS, taker="analytics take"
    )


def first_value(grouped: dict[str, list[str]], name: str) -> str | None:
    values = grouped.get(name)
    return values[0] if values else None


def read_range(grouped: dict[str, list[str]], now: datetime) -> tuple[datetime, datetime]:
    """(start, end) from `from`/`to` or `last`, 24 hours up to `now` by default."""
    start_text, end_text, last = (first_value(grouped, n) for n in ("from", "to", "last"))
    if last is not None:
        if start_text is not None or end_text is not None:
            raise bad("last", "cannot be combined with 'from' or 'to'")
        return relative_start("last", last, now), now
    end = now if end_text is None else read_time("to", end_text)
    if start_text is not None:
        start = read_time("from", start_text)
    else:
        try:
            start = times.within_range(end - DEFAULT_RANGE)
        except (times.InvalidTime, OverflowError):
            start = times.EARLIEST
    if end <= start:
        if end_text is None:
            raise bad("from", "must be earlier than 'to', which is now when not given")
        raise bad("to", "must be later than 'from'")
    return start, end


def long_range_step(start: datetime, end: datetime) -> int | None:
    """A step for a range too long for the steps `plan` chooses from: whole multiples of the
    longest, about `TARGET_POINTS` of them; None when `plan` has one."""
    span = (end - start).total_seconds()
    longest = STEPS[-1]
    if span / longest <= TARGET_POINTS:
        return None
    return math.ceil(span / TARGET_POINTS / longest) * longest


def read_step(param: str, raw: str) -> int:
    """Seconds, as a whole number or an amount and a unit (`5m`, `1h`, `1d`)."""
    if raw.isascii() and raw.isdigit():
        seconds = read_integer(1, MAX_STEP)(param, raw)
    else:
        seconds = read_duration(param, raw, _STEP_EXAMPLES)
    if seconds % 60:
        raise bad(param, f"must be whole minutes: {_STEP_EXAMPLES}")
    if seconds > MAX_STEP:
        raise bad(param, f"must be at most {MAX_STEP} seconds (366 days)")
    return seconds


def read_group_by(metric: Metric, values: list[str]) -> tuple[str, ...]:
    names = tuple(name.strip() for value in values for name in value.split(","))
    if not names or any(not name for name in names):
        raise bad("group_by", "must name one or two dimensions, such as model or model,key")
    if len(names) > MAX_GROUP_BY:
        raise bad("group_by", f"takes at most {MAX_GROUP_BY} dimensions")
    allowed = dimensions_of(metric)
    for name in names:
        if name not in DIMENSIONS:
            raise bad("group_by", f"names {name[:64]!r}, not a dimension: {', '.join(DIMENSIONS)}")
        if name not in allowed:
            raise bad("group_by", f"{metric.name} cannot be split by {name}: {', '.join(allowed)}")
    return names


def read_filter(name: str, raw: str) -> str:
    if name == "cache_hit":
        return "true" if read_boolean(name, raw) else "false"
    if name == "status":
        return str(read_choice(TRACE_STATUSES)(name, raw))
    return read_text(name, raw)


def read_format(raw: str | None, accept: str | None) -> str:
    if raw is not None:
        return str(read_choice(FORMATS)("format", raw))
    media_types = {part.split(";", 1)[0].strip().lower() for part in (accept or "").split(",")}
    return "csv" if CSV in media_types else "json"


def parse_analytics_request(
    metric: Metric,
    items: Iterable[tuple[str, str]],
    *,
    now: datetime,
    accept: str | None = None,
) -> AnalyticsRequest:
    """Read `items` (the query string's name/value pairs, repeats included) for `metric`;
    `now` ends a relative or default range, `accept` (the Accept header) chooses CSV when
    `format` is not given."""
    grouped = _grouped(items)
    start, end = read_range(grouped, now)
    raw_step = first_value(grouped, "step")
    step = long_range_step(start, end) if raw_step is None else read_step("step", raw_step)
    group_by = () if "group_by" not in grouped else read_group_by(metric, grouped["group_by"])
    allowed = dimensions_of(metric)
    filters: dict[str, tuple[str, ...]] = {}
    for name in FILTERS:
        if name not in grouped:
            continue
        if name not in allowed:
            raise bad(name, f"is not a dimension of {metric.name}; it has: {', '.join(allowed)}")
        filters[name] = tuple(dict.fromkeys(read_filter(name, v) for v in grouped[name]))
    raw_top = first_value(grouped, "top")
    top = None if raw_top is None else read_integer(1, MAX_TOP)("top", raw_top)
    if top is None and group_by:
        top = DEFAULT_TOP
    workspace = first_value(grouped, SCOPE_PARAMETER)
    if workspace is not None:
        read_text(SCOPE_PARAMETER, workspace)
    query = AnalyticsQuery(
        metric=metric.name,
        start=start,
        end=end,
        step=step,
        group_by=group_by,
        filters=filters,
        top=top,
    )
    check_plan(query)
    return AnalyticsRequest(
        query=query, workspace=workspace, format=read_format(first_value(grouped, "format"), accept)
    )


def check_plan(query: AnalyticsQuery) -> None:
    """Plan the query as `run_query` will, turning every refusal into a 400."""
    try:
        plan(query)
    except InvalidQuery as error:
        parameter = error.parameter
        if parameter == "group_by" and not query.group_by:
            parameter = next((n for n in ("tag", "end_user") if n in query.filters), parameter)
        raise bad(parameter, str(error)) from None
    except (OverflowError, ValueError, OSError):  # whole steps reach past the last date
        raise bad(
            "to", f"is too late for this step: the range must fall {times.RANGE_TEXT}"
        ) from None


def _array(schema: JsonSchema) -> JsonSchema:
    return {"type": "array", "items": schema, "maxItems": MAX_VALUES}


QUERY: Final = (
    Query("from", "From this time on: ISO 8601 or epoch seconds.", text(64)),
    Query("to", "Before this time: ISO 8601 or epoch seconds (default: now).", text(64)),
    Query(
        "last",
        f"A range up to now instead: {_TIME_EXAMPLES} (default 24h).",
        text(8, pattern=r"^[0-9]+[smhdw]$"),
    ),
    Query(
        "step",
        f"Seconds a point covers, {_STEP_EXAMPLES}; chosen from the range when absent.",
        text(12, pattern=r"^[0-9]+[smhdw]?$"),
    ),
    Query(
        "group_by",
        "One or two dimensions, comma-separated or repeated (see GET /admin/api/analytics).",
        _array(text(64)),
    ),
    Query(
        "top",
        f"With group_by: the groups kept, the rest summed as (other) (default {DEFAULT_TOP}).",
        {"type": "integer", "minimum": 1, "maximum": MAX_TOP},
    ),
    Query("format", "json (default) or csv; or send `Accept: text/csv`.", {"enum": list(FORMATS)}),
    Query(SCOPE_PARAMETER, "Only this workspace (id or slug).", text(MAX_TEXT)),
    *(
        Query(name, f"Only these (repeatable). {DIMENSIONS[name]}", _array(text(MAX_TEXT)))
        for name in FILTERS
    ),
)
"""The query parameters, for `described(query=...)`."""

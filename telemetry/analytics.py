"""Analytics over the roll-ups: a metric over a time range, per step, by up to two dimensions.

`run_query` reads `usage_rollups` (or `usage_breakdowns` for tags, end users, rules and
guardrails) at the coarsest grain that divides the step, sums the metric's columns per bucket and
group in SQL, and folds the buckets into steps in Python. The range is widened to whole steps
(aligned to the Unix epoch, so day steps start at midnight UTC). With `top`, the groups beyond
the first `top` (by the metric's volume over the range) are folded into one `(other)` group:
their sums are added, so even percentiles of "other" are right.

The cost of a query grows with the number of buckets and groups in the range, never with the
number of requests.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from telemetry.analytics_metrics import BREAKDOWN_METRICS, METRICS, Metric
from telemetry.schema import Money, usage_breakdowns, usage_rollups

ROLLUP_DIMENSIONS: Final = {
    "workspace": "workspace_id",
    "key": "api_key_id",
    "source": "source",
    "provider": "provider",
    "model": "model",
    "served_model": "served_model",
    "deployment": "deployment",
    "status": "status",
    "error_type": "error_type",
    "cache_hit": "cache_hit",
}
BREAKDOWN_DIMENSIONS: Final = {
    "tag": {"tag": "name"},
    "end_user": {"end_user": "name"},
    "rule": {"rule": "name"},
    "guardrail": {"guardrail": "name", "action": "detail"},
    "entity": {"guardrail": "name", "entity_type": "detail"},
}
"""Per breakdown kind, the dimensions it adds to `workspace` and `key`."""
SHARED_BREAKDOWN_DIMENSIONS: Final = {"workspace": "workspace_id", "key": "api_key_id"}
GRAIN_SECONDS: Final = {"minute": 60, "hour": 3600, "day": 86400}
STEPS: Final = (60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86400, 7 * 86400)
"""The steps chosen when none is asked for: the smallest giving at most `TARGET_POINTS`."""
TARGET_POINTS: Final = 200
MAX_POINTS: Final = 2000
MAX_GROUP_BY: Final = 2
OTHER: Final = "(other)"


class InvalidQuery(ValueError):
    """A query the analytics cannot answer; `parameter` names what to change."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


@dataclass(frozen=True, slots=True)
class AnalyticsQuery:
    metric: str
    start: datetime
    end: datetime
    step: int | None = None
    """Seconds, a multiple of 60; None: chosen from the range."""
    group_by: tuple[str, ...] = ()
    filters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Dimension → the values kept (any of them)."""
    top: int | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    metric: Metric
    table: sa.Table
    kind: str | None
    columns: tuple[str, ...]
    dimensions: dict[str, str]
    """Dimension name → column, for `group_by` and `filters`."""
    grain: str
    step: int
    start: datetime
    end: datetime

    @property
    def steps(self) -> int:
        return int((self.end - self.start).total_seconds()) // self.step


@dataclass(slots=True)
class Series:
    group: dict[str, str]
    points: list[tuple[datetime, float | Decimal | None]]
    total: float | Decimal | None


@dataclass(slots=True)
class AnalyticsResult:
    metric: Metric
    start: datetime
    end: datetime
    step: int
    grain: str
    group_by: tuple[str, ...]
    series: list[Series]
    total: float | Decimal | None
    """The metric over the whole range and every group."""


def _epoch(moment: datetime) -> int:
    return math.floor(moment.timestamp())


def choose_step(start: datetime, end: datetime, minimum: int = 60) -> int:
    span = max(_epoch(end) - _epoch(start), 1)
    for step in STEPS:
        if step >= minimum and span / step <= TARGET_POINTS:
            return step
    return STEPS[-1]


def _kind_and_dimensions(
    metric: Metric, named: set[str]
) -> tuple[sa.Table, str | None, tuple[str, ...], dict[str, str]]:
    if metric.table == "breakdowns":
        assert metric.kind is not None
        dimensions = SHARED_BREAKDOWN_DIMENSIONS | BREAKDOWN_DIMENSIONS[metric.kind]
        return usage_breakdowns, metric.kind, metric.columns, dimensions
    by_breakdown = named & {"tag", "end_user"}
    if not by_breakdown:
        return usage_rollups, None, metric.columns, dict(ROLLUP_DIMENSIONS)
    if len(by_breakdown) > 1:
        raise InvalidQuery("group_by", "tags and end users cannot be combined in one query")
    if metric.name not in BREAKDOWN_METRICS:
        raise InvalidQuery(
            "group_by",
            f"{metric.name} is not kept by tag or end user; these are: "
            + ", ".join(BREAKDOWN_METRICS),
        )
    (kind,) = by_breakdown
    dimensions = SHARED_BREAKDOWN_DIMENSIONS | BREAKDOWN_DIMENSIONS[kind]
    return usage_breakdowns, kind, BREAKDOWN_METRICS[metric.name], dimensions


def plan(query: AnalyticsQuery) -> Plan:
    """Check the query and decide how to read it; `InvalidQuery` says what is wrong."""
    metric = METRICS.get(query.metric)
    if metric is None:
        raise InvalidQuery("metric", f"unknown metric {query.metric!r}; see /admin/api/analytics")
    if query.end <= query.start:
        raise InvalidQuery("to", "must be later than 'from'")
    if len(query.group_by) > MAX_GROUP_BY:
        raise InvalidQuery("group_by", f"takes at most {MAX_GROUP_BY} dimensions")
    if len(set(query.group_by)) != len(query.group_by):
        raise InvalidQuery("group_by", "names a dimension twice")
    if query.top is not None and query.top < 1:
        raise InvalidQuery("top", "must be at least 1")
    named = set(query.group_by) | set(query.filters)
    table, kind, columns, dimensions = _kind_and_dimensions(metric, named)
    for name in sorted(named):
        if name not in dimensions:
            parameter = "group_by" if name in query.group_by else name
            raise InvalidQuery(
                parameter,
                f"{metric.name} cannot be split by {name!r}; it can be by: "
                + ", ".join(sorted(dimensions)),
            )
    finest = 60 if table is usage_rollups else 3600
    step = query.step if query.step is not None else choose_step(query.start, query.end, finest)
    if step < finest or step % finest:
        unit = "60 (a minute)" if finest == 60 else "3600 (an hour)"
        raise InvalidQuery("step", f"must be a multiple of {unit} seconds for {metric.name}")
    start = datetime.fromtimestamp(_epoch(query.start) // step * step, UTC)
    end = datetime.fromtimestamp(-(-math.ceil(query.end.timestamp()) // step) * step, UTC)
    plan_ = Plan(
        metric=metric,
        table=table,
        kind=kind,
        columns=columns,
        dimensions=dimensions,
        grain=max((g for g, s in GRAIN_SECONDS.items() if step % s == 0), key=GRAIN_SECONDS.get),  # type: ignore[arg-type]
        step=step,
        start=start,
        end=end,
    )
    if plan_.steps > MAX_POINTS:
        raise InvalidQuery(
            "step",
            f"gives {plan_.steps} points for this range; at most {MAX_POINTS}: "
            "take a larger step or a shorter range",
        )
    return plan_


def _sum(table: sa.Table, column: str) -> sa.ColumnElement[Any]:
    total = sa.func.sum(table.c[column])
    if isinstance(table.c[column].type, Money):
        return sa.type_coerce(total, Money())
    return total


def statement(plan_: Plan, query: AnalyticsQuery, scope: str | None) -> sa.Select[Any]:
    table = plan_.table
    grouped = [table.c[plan_.dimensions[name]] for name in query.group_by]
    conditions = [
        table.c.grain == plan_.grain,
        table.c.bucket_start >= plan_.start,
        table.c.bucket_start < plan_.end,
    ]
    if scope is not None:
        conditions.append(table.c.workspace_id == scope)
    if plan_.kind is not None:
        conditions.append(table.c.kind == plan_.kind)
    for name, values in sorted(query.filters.items()):
        column = table.c[plan_.dimensions[name]]
        if name == "cache_hit":
            wanted = [value.lower() in ("true", "1", "yes") for value in values]
            conditions.append(column.in_(wanted))
        else:
            conditions.append(column.in_(values))
    return (
        sa.select(
            table.c.bucket_start,
            *grouped,
            *(_sum(table, column).label(f"sum_{column}") for column in plan_.columns),
        )
        .where(*conditions)
        .group_by(table.c.bucket_start, *grouped)
    )


def _group_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _zero(plan_: Plan) -> list[Any]:
    return list(_zero_template(plan_.table.name, plan_.columns))


@functools.cache
def _zero_template(table: str, columns: tuple[str, ...]) -> tuple[Any, ...]:
    """Zero sums of `columns` (Decimal for money): looked up once, not per bucket and group."""
    found = usage_breakdowns if table == usage_breakdowns.name else usage_rollups
    return tuple(Decimal(0) if isinstance(found.c[c].type, Money) else 0 for c in columns)


def _add(into: list[Any], values: Sequence[Any]) -> None:
    for position, value in enumerate(values):
        if value:
            into[position] += value


class _Accumulator:
    """Sums per group and step."""

    def __init__(self, plan_: Plan) -> None:
        self.plan = plan_
        self.groups: dict[tuple[str, ...], dict[int, list[Any]]] = {}
        self._start = _epoch(plan_.start)
        self._boolean_groups = False

    def add(self, bucket_start: datetime, group: tuple[str, ...], values: Sequence[Any]) -> None:
        if bucket_start.tzinfo is None:
            bucket_start = bucket_start.replace(tzinfo=UTC)
        index = (_epoch(bucket_start) - self._start) // self.plan.step
        steps = self.groups.setdefault(group, {})
        sums = steps.get(index)
        if sums is None:
            sums = steps[index] = _zero(self.plan)
        _add(sums, values)

    def totals(self) -> dict[tuple[str, ...], list[Any]]:
        found = {}
        for group, steps in self.groups.items():
            total = _zero(self.plan)
            for sums in steps.values():
                _add(total, sums)
            found[group] = total
        return found


def _volume(metric: Metric, sums: Sequence[Any]) -> float:
    """How much of the metric a group has, to rank groups for `top`."""
    if metric.additive or len(sums) == 2:
        return float(sums[0] or 0)
    return float(sum(float(value or 0) for value in sums))


def _fold_top(accumulator: _Accumulator, top: int, width: int) -> None:
    totals = accumulator.totals()
    if len(totals) <= top:
        return
    metric = accumulator.plan.metric
    ranked = sorted(totals, key=lambda group: (-_volume(metric, totals[group]), group))
    other_key = (OTHER,) * width
    other: dict[int, list[Any]] = accumulator.groups.pop(other_key, {})
    for group in ranked[top:]:
        if group == other_key:
            continue
        for index, sums in accumulator.groups.pop(group).items():
            into = other.get(index)
            if into is None:
                into = other[index] = _zero(accumulator.plan)
            _add(into, sums)
    accumulator.groups[other_key] = other


def _value(metric: Metric, sums: Sequence[Any]) -> float | Decimal | None:
    return metric.value(sums)


def _result(accumulator: _Accumulator, query: AnalyticsQuery) -> AnalyticsResult:
    plan_ = accumulator.plan
    metric = plan_.metric
    times = [
        datetime.fromtimestamp(_epoch(plan_.start) + n * plan_.step, UTC)
        for n in range(plan_.steps)
    ]
    totals = accumulator.totals()
    overall = _zero(plan_)
    for sums in totals.values():
        _add(overall, sums)
    empty = _zero(plan_)
    series = []
    for group in sorted(
        accumulator.groups,
        key=lambda g: (g == (OTHER,) * len(g) and len(g) > 0, -_volume(metric, totals[g]), g),
    ):
        steps = accumulator.groups[group]
        series.append(
            Series(
                group=dict(zip(query.group_by, group, strict=True)),
                points=[
                    (moment, _value(metric, steps.get(n, empty))) for n, moment in enumerate(times)
                ],
                total=_value(metric, totals[group]),
            )
        )
    if not series and not query.group_by:
        series.append(
            Series(
                group={},
                points=[(moment, _value(metric, empty)) for moment in times],
                total=_value(metric, empty),
            )
        )
    return AnalyticsResult(
        metric=metric,
        start=plan_.start,
        end=plan_.end,
        step=plan_.step,
        grain=plan_.grain,
        group_by=query.group_by,
        series=series,
        total=_value(metric, overall),
    )


async def run_query(
    connection: AsyncConnection | AsyncEngine, query: AnalyticsQuery, *, scope: str | None
) -> AnalyticsResult:
    """The query's answer, within `scope` (one workspace id, or None for every workspace)."""
    plan_ = plan(query)
    select = statement(plan_, query, scope)
    accumulator = _Accumulator(plan_)
    width = len(query.group_by)
    if isinstance(connection, AsyncEngine):
        async with connection.connect() as opened:
            rows = (await opened.execute(select)).all()
    else:
        rows = (await connection.execute(select)).all()
    for row in rows:
        group = tuple(_group_text(value) for value in row[1 : 1 + width])
        accumulator.add(row[0], group, row[1 + width :])
    if query.top is not None and width:
        _fold_top(accumulator, query.top, width)
    return _result(accumulator, query)

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

import asyncio
import functools
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from telemetry.analytics_metrics import BREAKDOWN_METRICS, METRICS, Metric
from telemetry.rollups import TOTAL_KINDS
from telemetry.schema import Money, usage_breakdowns, usage_pending, usage_rollups

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
"""The steps chosen when none is asked for: the smallest giving at most `TARGET_POINTS`, and
whole hours once the range is longer than `MINUTE_STEPS_UP_TO` (read from hour rows, far fewer
than minute rows)."""
MINUTE_STEPS_UP_TO: Final = 12 * 3600
TARGET_POINTS: Final = 100
MAX_POINTS: Final = 2000
MAX_GROUP_BY: Final = 2
OTHER: Final = "(other)"
FEW_VALUES: Final = frozenset(
    {
        "source",
        "provider",
        "model",
        "served_model",
        "deployment",
        "status",
        "error_type",
        "cache_hit",
        "guardrail",
        "action",
        "entity_type",
    }
)
"""Dimensions of tens of values, not thousands (unlike keys, workspaces, tags, end users and
rules): a top-N by them reads every group per step and ranks them from that one scan."""


WORK_MEM: Final = "32MB"
"""What one sort or hash of an analytics statement may take on Postgres. The server's default
(4 MB) is too little to hash a week of hour rows by step and model with a hundred sums each
(the planner expects a group a row), so it sorts them instead, in parallel: measured, 65-75 ms
over three processes where the hash takes 43 ms in one."""


async def tune(connection: AsyncConnection) -> None:
    """Settings for the analytics statements of the connection's transaction (which the
    connection's return to the pool ends)."""
    if connection.dialect.name == "postgresql":
        await connection.execute(sa.text(f"SET LOCAL work_mem = '{WORK_MEM}'"))


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
    points: bool = True
    """False: totals only (per group and over everything), read in one scan of the range's
    coarsest rows (`range_pieces`), and every series' `points` is empty: what a chart without a
    time axis (bars, a tile's previous period, a ranking) needs."""
    other_points: bool = True
    """False: the `(other)` group of a `top` gets its total but no points, which saves the
    scan of every group per step it takes by keys, workspaces, tags and end users (a table
    draws no sparkline for it)."""


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
    pending: tuple[int, ...] = ()
    """Hours (epoch seconds) in the range whose hour and day rows are not summed yet
    (`pending_hours`): read from finer rows."""

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
    if span > MINUTE_STEPS_UP_TO:
        minimum = max(minimum, 3600)
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
    if isinstance(table.c[column].type, sa.BigInteger):
        # Postgres sums bigints as numeric, which arrives as Decimal: slow to decode and to add
        # (a page reads a hundred histogram sums per row). Counts fit a bigint.
        return sa.cast(total, sa.BigInteger)
    return total


def _step_of(plan_: Plan, dialect: str) -> sa.ColumnElement[int]:
    """The step a roll-up row falls in (0 for the first), computed by the database."""
    column = plan_.table.c.bucket_start
    # Bound as a 64-bit integer: epoch seconds pass 2**31 in 2038.
    offset = sa.literal(_epoch(plan_.start), sa.BigInteger)
    if dialect == "postgresql":
        # date_part gives a double (exact for whole seconds), where extract gives a numeric:
        # the arithmetic on every row of a week of hour rows takes half the time.
        epoch = sa.func.date_part("epoch", column)
        return sa.cast(sa.func.floor((epoch - offset) / plan_.step), sa.Integer)
    # SQLite keeps the time as text; whole seconds divide as integers.
    seconds: sa.ColumnElement[int] = sa.cast(sa.func.strftime("%s", column), sa.Integer)
    return (seconds - offset) // plan_.step


Piece = tuple[str, datetime, datetime]
"""Rows of one grain over [start, end)."""


def range_pieces(plan_: Plan, *, whole_range: bool = True) -> list[Piece]:
    """Which rows to read for the plan's range.

    `whole_range` (a sum over the range, no steps): the fewest rows that cover it, whole days
    from day rows, whole hours from hour rows, the rest from rows of the plan's grain (a week at
    hour steps: six days' day rows and a day's hour rows, not 168 hours'). Otherwise rows of the
    plan's grain.

    The plan's `pending` hours, whose hour and day rows are not summed yet
    (`telemetry.rollup_folding`), and their days are read from finer rows instead."""
    grains = [g for g in GRAIN_SECONDS if GRAIN_SECONDS[g] >= GRAIN_SECONDS[plan_.grain]]
    finest = "hour" if plan_.table is usage_breakdowns else "minute"
    if finest == "hour":
        grains = [g for g in grains if g != "minute"]
    start, end = _epoch(plan_.start), _epoch(plan_.end)
    pieces: list[tuple[str, int, int]] = []
    for finer, coarser in zip(grains, [*grains[1:], None], strict=True):
        if coarser is None or not whole_range:
            pieces.append((finer, start, end))
            break
        size = GRAIN_SECONDS[coarser]
        inner_start, inner_end = -(-start // size) * size, end // size * size
        if inner_start >= inner_end:
            pieces.append((finer, start, end))
            break
        pieces += [(finer, start, inner_start), (finer, inner_end, end)]
        start, end = inner_start, inner_end
    if plan_.pending:
        pieces = [
            fresh
            for grain, lo, hi in pieces
            for fresh in _without_pending(grain, lo, hi, sorted(plan_.pending), finest)
        ]
    return [
        (grain, datetime.fromtimestamp(lo, UTC), datetime.fromtimestamp(hi, UTC))
        for grain, lo, hi in pieces
        if lo < hi
    ]


_FINER: Final = {"day": "hour", "hour": "minute"}


def _without_pending(
    grain: str, start: int, end: int, pending: list[int], finest: str
) -> list[tuple[str, int, int]]:
    """[start, end) at `grain`, except its buckets holding a pending hour, read a grain finer."""
    if grain == finest:
        return [(grain, start, end)]
    size = GRAIN_SECONDS[grain]
    found: list[tuple[str, int, int]] = []
    clean_from = start
    for hour in pending:
        if not start <= hour < end:
            continue
        bucket = hour // size * size
        if bucket < clean_from:
            continue  # its bucket is already read finer
        found.append((grain, clean_from, bucket))
        found += _without_pending(_FINER[grain], bucket, bucket + size, pending, finest)
        clean_from = bucket + size
    found.append((grain, clean_from, end))
    return [piece for piece in found if piece[1] < piece[2]]


def _conditions(
    plan_: Plan, query: AnalyticsQuery, scope: str | None, *, whole_range: bool = False
) -> list[sa.ColumnElement[bool]]:
    table = plan_.table
    conditions = [
        sa.or_(
            *(
                sa.and_(
                    table.c.grain == grain, table.c.bucket_start >= lo, table.c.bucket_start < hi
                )
                for grain, lo, hi in range_pieces(plan_, whole_range=whole_range)
            )
        )
    ]
    if scope is not None:
        conditions.append(table.c.workspace_id == scope)
    if plan_.kind is not None:
        conditions.append(table.c.kind == plan_.kind)
    for name, values in sorted(query.filters.items()):
        conditions.append(_in(plan_, name, values))
    return conditions


def _in(plan_: Plan, name: str, values: Sequence[str]) -> sa.ColumnElement[bool]:
    column = plan_.table.c[plan_.dimensions[name]]
    if name == "cache_hit":
        return column.in_([value.lower() in ("true", "1", "yes") for value in values])
    return column.in_(values)


def statement(
    plan_: Plan,
    query: AnalyticsQuery,
    scope: str | None,
    dialect: str,
    *,
    by_step: bool = True,
    by_group: bool = True,
    only: Sequence[tuple[str, ...]] = (),
) -> sa.Select[Any]:
    """Sums per step and group (either can be left out); `only` keeps those groups (a
    superset: each dimension's values are matched separately). The plan's `pending` hours are
    read from finer rows (`range_pieces`)."""
    table = plan_.table
    grouped: list[sa.ColumnElement[Any]] = []
    if by_step:
        grouped.append(_step_of(plan_, dialect).label("step"))
    if by_group:
        grouped += [table.c[plan_.dimensions[name]] for name in query.group_by]
    conditions = _conditions(plan_, query, scope, whole_range=not by_step)
    for position, name in enumerate(query.group_by if only else ()):
        conditions.append(_in(plan_, name, sorted({group[position] for group in only})))
    sums = [_sum(table, column).label(f"sum_{column}") for column in plan_.columns]
    select = sa.select(*grouped, *sums).where(*conditions)
    keys = list(grouped)
    if by_step and plan_.step == GRAIN_SECONDS[plan_.grain] and not plan_.pending:
        # A step is one bucket: grouped by the bucket's start, the step is worked out once a
        # group rather than once a row, and SQLite need not sort the rows by a computed step.
        keys[0] = table.c.bucket_start
    return select.group_by(*keys) if keys else select


def group_text(value: Any) -> str:
    """A group's value as the answer names it (a boolean as "true" or "false", NULL as "")."""
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


def add_sums(into: list[Any], values: Sequence[Any], sign: int = 1) -> None:
    """Add (or with `sign` -1, take away) partial sums of the same columns, in place."""
    for position, value in enumerate(values):
        if value:
            into[position] += value if sign > 0 else -value


def _volume(metric: Metric, sums: Sequence[Any]) -> float:
    """How much of the metric a group has, to rank groups for `top`."""
    if metric.additive or len(sums) == 2:
        return float(sums[0] or 0)
    return float(sum(float(value or 0) for value in sums))


StepSums = dict[tuple[str, ...], dict[int, list[Any]]]
GroupSums = dict[tuple[str, ...], list[Any]]
"""Sums per group and step, and per group over the range."""


async def pending_hours(connection: AsyncConnection, plan_: Plan) -> tuple[int, ...]:
    """The hours of the plan's range whose hour and day rows are not summed yet (only Postgres
    has any: `telemetry.rollup_folding`)."""
    if connection.dialect.name != "postgresql":
        return ()
    column = usage_pending.c.hour_start
    found = await connection.execute(
        sa.select(column).where(column >= plan_.start, column < plan_.end)
    )
    return tuple(sorted(_epoch(hour) for (hour,) in found))


class RowSource(Protocol):
    """Where a reader's statements run: one connection (`Direct`), or a page's shared scans
    (`telemetry.analytics_scans.SharedScans`)."""

    async def pending(self, plan_: Plan) -> tuple[int, ...]:
        """`pending_hours` of the plan, as this source sees them."""
        ...

    async def rows(
        self,
        plan_: Plan,
        query: AnalyticsQuery,
        scope: str | None,
        *,
        by_step: bool = True,
        by_group: bool = True,
        only: Sequence[tuple[str, ...]] = (),
    ) -> Sequence[Sequence[Any]]:
        """The rows of `statement(plan_, query, scope, ..., **shape)`: the step (when by
        step), the groups (when by group), then the sums of `plan_.columns` in their order.
        A step and group may come in several rows (partial sums, for the reader to add)."""
        ...


class Direct:
    """Runs each statement on one connection."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def pending(self, plan_: Plan) -> tuple[int, ...]:
        return await pending_hours(self.connection, plan_)

    async def rows(
        self,
        plan_: Plan,
        query: AnalyticsQuery,
        scope: str | None,
        *,
        by_step: bool = True,
        by_group: bool = True,
        only: Sequence[tuple[str, ...]] = (),
    ) -> Sequence[Sequence[Any]]:
        dialect = self.connection.dialect.name
        select = statement(
            plan_, query, scope, dialect, by_step=by_step, by_group=by_group, only=only
        )
        return list((await self.connection.execute(select)).all())


class _Reader:
    """Runs a plan's statements and gathers sums per group and step (or per group only)."""

    def __init__(self, source: RowSource, plan_: Plan, query: AnalyticsQuery) -> None:
        self.source = source
        self.plan = plan_
        self.query = query
        self.width = len(query.group_by)

    async def rows(self, scope: str | None, **shape: Any) -> Sequence[Sequence[Any]]:
        return await self.source.rows(self.plan, self.query, scope, **shape)

    def group_of(self, row: Sequence[Any], first: int) -> tuple[str, ...]:
        return tuple(group_text(value) for value in row[first : first + self.width])

    def ranked(self, totals: GroupSums) -> list[tuple[str, ...]]:
        """The groups, the most of the metric first (ties by name)."""
        metric = self.plan.metric
        return sorted(totals, key=lambda group: (-_volume(metric, totals[group]), group))

    async def totals(self, scope: str | None) -> tuple[StepSums, GroupSums]:
        """Sums per group over the range, without steps: one scan; with `top`, the groups past
        it summed into one `(other)` group."""
        totals: GroupSums = {}
        for row in await self.rows(scope, by_step=False):
            add_sums(totals.setdefault(self.group_of(row, 0), _zero(self.plan)), row[self.width :])
        top = self.query.top if self.width else None
        if top is not None and len(totals) > top:
            ranked = self.ranked(totals)
            other = self._sum_of(totals[group] for group in ranked[top:])
            totals = {group: totals[group] for group in ranked[:top]}
            totals[(OTHER,) * self.width] = other
        return {group: {} for group in totals}, totals

    def fold(self, rows: Sequence[Sequence[Any]], kept: Sequence[tuple[str, ...]]) -> StepSums:
        """Rows by step and group as sums per group and step (only `kept` groups, if any)."""
        steps: StepSums = {}
        for row in rows:
            group = self.group_of(row, 1)
            if kept and group not in kept:
                continue
            by_step = steps.setdefault(group, {})
            index = int(row[0])
            if index in by_step:
                add_sums(by_step[index], row[1 + self.width :])
            else:
                by_step[index] = list(row[1 + self.width :])
        return steps

    async def series(self, scope: str | None) -> tuple[StepSums, GroupSums]:
        """Sums per group and step, and per group over the range; with `top`, the groups past
        it are one `(other)` group (without steps, unless `other_points`).

        By dimensions of few values (`FEW_VALUES`), or without `top`, every group is read per
        step in one scan, and ranked from it. By others (keys, end users: thousands), the
        groups are ranked first (one scan of the range's coarsest rows), the kept ones read
        per step, and `(other)` is the whole per step less them."""
        top = self.query.top if self.width else None
        if top is None or set(self.query.group_by) <= FEW_VALUES:
            steps = self.fold(await self.rows(scope), ())
            totals = {group: self._sum_of(by_step.values()) for group, by_step in steps.items()}
            if top is None or len(steps) <= top:
                return steps, totals
            ranked = self.ranked(totals)
            other: dict[int, list[Any]] = {}
            for group in ranked[top:] if self.query.other_points else ():
                for index, sums in steps[group].items():
                    add_sums(other.setdefault(index, _zero(self.plan)), sums)
            return self._with_other(steps, totals, ranked[:top], other)
        totals = {}
        for row in await self.rows(scope, by_step=False):
            add_sums(totals.setdefault(self.group_of(row, 0), _zero(self.plan)), row[self.width :])
        ranked = self.ranked(totals)
        if len(ranked) <= top:
            return self.fold(await self.rows(scope), ()), totals
        kept = ranked[:top]
        steps = self.fold(await self.rows(scope, only=kept), kept)
        other = {}
        for row in await self.whole_per_step(scope) if self.query.other_points else ():
            add_sums(other.setdefault(int(row[0]), _zero(self.plan)), row[1:])
        for index, sums in other.items():
            for group in kept:
                found = steps.get(group, {}).get(index)
                if found is not None:
                    add_sums(sums, found, sign=-1)
        return self._with_other(steps, totals, kept, other)

    async def whole_per_step(self, scope: str | None) -> Sequence[Sequence[Any]]:
        """Every group's sums per step. By tag or end user, unless the query picks some by
        name, from their kind's rows summed over every name (`rollups.TOTAL_KINDS`): a week
        is a row per key and hour, not a row per end user and hour."""
        total_kind = TOTAL_KINDS.get(self.plan.kind or "")
        if total_kind is None or not set(self.query.filters) <= SHARED_BREAKDOWN_DIMENSIONS.keys():
            return await self.rows(scope, by_group=False)
        whole = replace(self.plan, kind=total_kind)
        return await self.source.rows(whole, self.query, scope, by_group=False)

    def _with_other(
        self,
        steps: StepSums,
        totals: GroupSums,
        kept: Sequence[tuple[str, ...]],
        other: dict[int, list[Any]],
    ) -> tuple[StepSums, GroupSums]:
        """The kept groups and `(other)`: `other` per step, the rest of `totals` in all."""
        other_key = (OTHER,) * self.width
        kept_steps = {group: steps.get(group, {}) for group in kept}
        kept_totals = {group: totals[group] for group in kept}
        kept_steps[other_key] = other
        kept_totals[other_key] = self._sum_of(
            totals[group] for group in totals if group not in kept
        )
        return kept_steps, kept_totals

    def _sum_of(self, many: Any) -> list[Any]:
        total = _zero(self.plan)
        for sums in many:
            add_sums(total, sums)
        return total


def _value(metric: Metric, sums: Sequence[Any]) -> float | Decimal | None:
    return metric.value(sums)


def _result(
    plan_: Plan,
    query: AnalyticsQuery,
    steps: dict[tuple[str, ...], dict[int, list[Any]]],
    totals: dict[tuple[str, ...], list[Any]],
) -> AnalyticsResult:
    metric = plan_.metric
    times = [
        datetime.fromtimestamp(_epoch(plan_.start) + n * plan_.step, UTC)
        for n in range(plan_.steps if query.points else 0)
    ]
    overall = _zero(plan_)
    for sums in totals.values():
        add_sums(overall, sums)
    empty = _zero(plan_)
    other_key = (OTHER,) * len(query.group_by)
    series = []
    for group in sorted(
        steps, key=lambda g: (bool(g) and g == other_key, -_volume(metric, totals[g]), g)
    ):
        by_step = steps[group]
        pointless = not query.other_points and bool(group) and group == other_key
        series.append(
            Series(
                group=dict(zip(query.group_by, group, strict=True)),
                points=[
                    (moment, _value(metric, by_step.get(n, empty)))
                    for n, moment in enumerate([] if pointless else times)
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


SumsMemo = dict[Hashable, "asyncio.Task[tuple[StepSums, GroupSums]]"]
"""Sums already read (or being read), shared by the queries of one page: the percentiles of one
histogram (p50, p95 ...) read the same sums, and are read once."""


def _sums_key(plan_: Plan, query: AnalyticsQuery, scope: str | None) -> Hashable:
    ranking = "first" if plan_.metric.additive or len(plan_.columns) == 2 else "volume"
    return (
        plan_.table.name,
        plan_.kind,
        plan_.columns,
        plan_.grain,
        plan_.step,
        plan_.start,
        plan_.end,
        query.group_by,
        tuple(sorted((name, tuple(values)) for name, values in query.filters.items())),
        query.top,
        query.points,
        query.other_points,
        ranking,
        scope,
    )


async def _read(
    connection: AsyncConnection | AsyncEngine,
    plan_: Plan,
    query: AnalyticsQuery,
    scope: str | None,
    scans: RowSource | None = None,
) -> tuple[StepSums, GroupSums]:
    if scans is None:
        if isinstance(connection, AsyncEngine):
            async with connection.connect() as opened:
                await tune(opened)
                return await _read(opened, plan_, query, scope)
        scans = Direct(connection)
    reader = _Reader(scans, replace(plan_, pending=await scans.pending(plan_)), query)
    return await (reader.series(scope) if query.points else reader.totals(scope))


async def run_query(
    connection: AsyncConnection | AsyncEngine,
    query: AnalyticsQuery,
    *,
    scope: str | None,
    memo: SumsMemo | None = None,
    scans: RowSource | None = None,
) -> AnalyticsResult:
    """The query's answer, within `scope` (one workspace id, or None for every workspace).
    With `memo`, sums another query of the same page already read are not read again; with
    `scans` (`telemetry.analytics_scans.SharedScans`), the statements run there, shared with
    the page's other queries, instead of on `connection`."""
    plan_ = plan(query)
    if memo is None:
        steps, totals = await _read(connection, plan_, query, scope, scans)
    else:
        key = _sums_key(plan_, query, scope)
        task = memo.get(key)
        if task is None:
            task = memo[key] = asyncio.ensure_future(_read(connection, plan_, query, scope, scans))
        steps, totals = await asyncio.shield(task)
    return _result(plan_, query, steps, totals)

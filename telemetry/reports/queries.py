"""The analytics a report reads, through the same query functions as
`GET /admin/api/analytics/{metric}` (`telemetry.analytics.run_query`), so a report's numbers
are the API's for the same range.

Totals are read at a step that divides the range's bounds (whole hours, or a fraction of an
hour for zones whose offset is not whole hours), so the analytics do not widen the range; only
the hourly dimensions (tags, end users, rules, guardrails) are kept per hour, and a range of
such a zone is widened to whole hours for them (the section says so).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.analytics import MAX_POINTS, OTHER, AnalyticsQuery, SumsMemo, choose_step, run_query
from telemetry.analytics_dimensions import HOUR, finest_step
from telemetry.analytics_metrics import METRICS
from telemetry.reports.document import Point, Series, Unit
from telemetry.schema import api_keys, workspaces

TOTAL_STEPS: Final = (3600, 1800, 900, 300, 60)
UNITS: Final[Mapping[str, Unit]] = {
    "usd": "USD",
    "ms": "ms",
    "percent": "ratio",
    "tokens": "tokens",
    "count": "",
}
NO_KEY: Final = "(no key)"

Number = Decimal | float | int | None


def unit_of(metric: str) -> Unit:
    if metric in ("requests", "errors", "cache_hits"):
        return "requests"
    return UNITS[METRICS[metric].unit]


def plain(value: Decimal | float | None) -> Number:
    """A value as a document keeps it: money a Decimal, counts whole numbers."""
    if value is None or isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return value
    if not math.isfinite(value):
        return None
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def total_step(start: datetime, end: datetime, finest: int = 60) -> int:
    """The largest step that divides both bounds and keeps the range within the analytics'
    points; whole hours when none does."""
    span = (end - start).total_seconds()
    for step in TOTAL_STEPS:
        if step < finest:
            break
        if (
            start.timestamp() % step == 0
            and end.timestamp() % step == 0
            and span / step <= MAX_POINTS
        ):
            return step
    return HOUR


@dataclass(slots=True)
class Reader:
    """Reads the analytics of one report: one scope, one range."""

    engine: AsyncEngine
    scope: str | None
    start: datetime
    end: datetime
    memo: SumsMemo = field(default_factory=dict)
    widened: bool = False
    """True once an hourly dimension's totals were read over a range widened to whole hours."""

    def _step(self, metric: str, named: set[str], start: datetime, end: datetime) -> int:
        finest = finest_step(METRICS[metric], named)
        step = total_step(start, end, finest)
        if step % finest or start.timestamp() % step or end.timestamp() % step:
            self.widened = True
            return HOUR
        return step

    async def total(
        self,
        metric: str,
        *,
        filters: Mapping[str, tuple[str, ...]] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> Number:
        first, last = start or self.start, end or self.end
        wanted = dict(filters or {})
        query = AnalyticsQuery(
            metric=metric,
            start=first,
            end=last,
            step=self._step(metric, set(wanted), first, last),
            filters=wanted,
            points=False,
        )
        result = await run_query(self.engine, query, scope=self.scope, memo=self.memo)
        return plain(result.total)

    async def by_group(
        self,
        metric: str,
        dimension: str,
        *,
        filters: Mapping[str, tuple[str, ...]] | None = None,
    ) -> dict[str, Number]:
        """The metric's total per value of `dimension` (every value), largest first."""
        wanted = dict(filters or {})
        query = AnalyticsQuery(
            metric=metric,
            start=self.start,
            end=self.end,
            step=self._step(metric, {dimension, *wanted}, self.start, self.end),
            group_by=(dimension,),
            filters=wanted,
            points=False,
        )
        result = await run_query(self.engine, query, scope=self.scope, memo=self.memo)
        return {series.group[dimension]: plain(series.total) for series in result.series}

    async def series(
        self,
        metric: str,
        *,
        group_by: str | None = None,
        top: int | None = None,
        **filters: tuple[str, ...],
    ) -> tuple[Series, ...]:
        """The metric over the range at a step a chart reads well (about a hundred points at
        most), one series per group (the `top` groups and `(other)`)."""
        named = {group_by, *filters} - {None}
        finest = finest_step(METRICS[metric], {name for name in named if name})
        query = AnalyticsQuery(
            metric=metric,
            start=self.start,
            end=self.end,
            step=choose_step(self.start, self.end, finest),
            group_by=(group_by,) if group_by else (),
            filters=dict(filters),
            top=top if group_by else None,
        )
        result = await run_query(self.engine, query, scope=self.scope, memo=self.memo)
        return tuple(
            Series(
                name=(series.group[group_by] or "(none)") if group_by else METRICS[metric].title,
                points=tuple(
                    Point(at, None if value is None else _point(value))
                    for at, value in series.points
                ),
            )
            for series in result.series
        )

    async def key_names(self) -> dict[str, str]:
        select = sa.select(api_keys.c.key_id, api_keys.c.name)
        if self.scope is not None:
            select = select.where(api_keys.c.workspace_id == self.scope)
        async with self.engine.connect() as connection:
            names = {row.key_id: row.name for row in await connection.execute(select)}
        return {"": NO_KEY, OTHER: OTHER, "master": "master key", **names}

    async def workspace_names(self) -> dict[str, str]:
        async with self.engine.connect() as connection:
            rows = await connection.execute(sa.select(workspaces.c.workspace_id, workspaces.c.name))
            return {row.workspace_id: row.name for row in rows}


def _point(value: Decimal | float) -> Decimal | float:
    return value if isinstance(value, Decimal) else float(value)


def change_pct(value: Number, previous: Number) -> float | None:
    """The change from `previous` to `value` in percent; None when there is nothing to compare
    (no previous value, or zero)."""
    if value is None or previous is None or not previous:
        return None
    return round((float(value) - float(previous)) / float(previous) * 100.0, 2)

"""Counts beside the console's lists: decisions by type and outcome, guardrail findings by
guardrail and action.

Each count reads the rows its list shows, through the list's own conditions
(`telemetry.search`), so the two agree. It reads the newest `sample` of them at most, through the
time index: a range of a month on a busy gateway costs a bounded read, and `capped` says that the
count stopped there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.schema import decisions, guardrail_violations
from telemetry.search import (
    DecisionFilter,
    ViolationFilter,
    decision_conditions,
    violation_conditions,
)

COUNT_SAMPLE: Final = 200_000
"""Rows a count reads at most, newest first."""
UNKNOWN: Final = "unknown"
"""What a missing value is counted as (decisions recorded before outcomes were)."""


@dataclass(frozen=True, slots=True)
class CountGroup:
    name: str
    total: int
    parts: list[tuple[str, int]]
    """(value, rows), most first."""

    def rows_with(self, value: str) -> int:
        return next((rows for name, rows in self.parts if name == value), 0)


@dataclass(frozen=True, slots=True)
class GroupedCounts:
    groups: list[CountGroup]
    """Most rows first."""
    values: list[str]
    """Every value of the second column, most rows first."""
    total: int
    capped: bool
    """The rows counted are the newest `sample` of more."""


async def _grouped(
    engine: AsyncEngine,
    time: sa.Column[Any],
    first: sa.Column[Any],
    second: sa.Column[Any],
    conditions: list[sa.ColumnElement[bool]],
    sample: int,
) -> GroupedCounts:
    recent = (
        sa.select(first, second).where(*conditions).order_by(time.desc()).limit(sample).subquery()
    )
    rows = sa.func.count().label("rows")
    statement = sa.select(recent.c[first.key], recent.c[second.key], rows).group_by(
        recent.c[first.key], recent.c[second.key]
    )
    async with engine.connect() as conn:
        found = (await conn.execute(statement)).all()
    by_group: dict[str, dict[str, int]] = {}
    by_value: dict[str, int] = {}
    for group, value, count in found:
        name = UNKNOWN if value is None else str(value)
        parts = by_group.setdefault(str(group), {})
        parts[name] = parts.get(name, 0) + int(count)
        by_value[name] = by_value.get(name, 0) + int(count)
    groups = [
        CountGroup(
            name=name,
            total=sum(parts.values()),
            parts=sorted(parts.items(), key=lambda item: (-item[1], item[0])),
        )
        for name, parts in by_group.items()
    ]
    groups.sort(key=lambda group: (-group.total, group.name))
    total = sum(group.total for group in groups)
    return GroupedCounts(
        groups=groups,
        values=sorted(by_value, key=lambda name: (-by_value[name], name)),
        total=total,
        capped=total >= sample,
    )


async def decision_counts(
    engine: AsyncEngine,
    filters: DecisionFilter,
    *,
    scope: str | None,
    sample: int = COUNT_SAMPLE,
) -> GroupedCounts:
    """The decisions `search_decisions` lists for `filters`, counted by type and outcome."""
    return await _grouped(
        engine,
        decisions.c.created_at,
        decisions.c.type,
        decisions.c.outcome,
        decision_conditions(filters, scope),
        sample,
    )


async def violation_counts(
    engine: AsyncEngine,
    filters: ViolationFilter,
    *,
    scope: str | None,
    sample: int = COUNT_SAMPLE,
) -> GroupedCounts:
    """The findings `search_violations` lists for `filters`, counted by guardrail and action."""
    table = guardrail_violations
    return await _grouped(
        engine,
        table.c.created_at,
        table.c.guardrail,
        table.c.action,
        violation_conditions(filters, scope, engine.dialect.name),
        sample,
    )

"""The roll-up sums a rule's preview replays: one metric's columns per group and evaluation
step over the whole preview range, read in one statement (the analytics' own, at the step's
grain), however many steps the range has."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.alerts.rule import AlertRule, RuleError
from telemetry.alerts.window import Group
from telemetry.analytics import (
    AnalyticsQuery,
    InvalidQuery,
    add_sums,
    group_text,
    pending_hours,
    plan,
    statement,
    tune,
)
from telemetry.analytics_metrics import Metric

StepSums = dict[Group, dict[int, list[Any]]]
"""Per group, per step index (0: the range's first step), the sums of the metric's columns."""


async def read_step_sums(
    engine: AsyncEngine, rule: AlertRule, metric: str, start: datetime, end: datetime, step: int
) -> tuple[Metric, StepSums]:
    """The metric's sums of [start, end) by `step` seconds and the rule's groups, within the
    rule's workspace and filters. `start` and `end` are whole steps."""
    query = AnalyticsQuery(
        metric=metric,
        start=start,
        end=start + timedelta(seconds=step),
        step=step,
        group_by=tuple(rule.group_by),
        filters={name: tuple(values) for name, values in rule.filters.items()},
    )
    try:
        checked = plan(query)
    except InvalidQuery as error:
        raise RuleError(error.parameter, str(error)) from None
    whole = replace(checked, start=start, end=end)
    width = len(rule.group_by)
    found: StepSums = {}
    async with engine.connect() as connection:
        await tune(connection)
        whole = replace(whole, pending=await pending_hours(connection, whole))
        select = statement(whole, query, rule.workspace_id, connection.dialect.name)
        rows = (await connection.execute(select)).all()
    for row in rows:
        group: Group = tuple(
            sorted(
                zip(rule.group_by, (group_text(value) for value in row[1 : 1 + width]), strict=True)
            )
        )
        by_step = found.setdefault(group, {})
        index, sums = int(row[0]), list(row[1 + width :])
        if index in by_step:
            add_sums(by_step[index], sums)
        else:
            by_step[index] = sums
    return checked.metric, found

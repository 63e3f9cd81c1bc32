"""The rows of the alert rules list: each rule as people read it (the metric's title, the
condition and thresholds in the metric's unit, durations as `5 min`), its channels by name, and
its open alerts."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from admin_ui.page_views import WorkspaceLabel
from telemetry.alerts.evaluation import metric_title, shown, span
from telemetry.alerts.notification import format_number
from telemetry.alerts.rule import AlertRule
from telemetry.schema import alert_instances

CONDITION_WORDS = {"above": "above", "below": "below", "change_pct": "changes by"}


@dataclass(frozen=True, slots=True)
class RuleRow:
    id: str
    name: str
    metric: str
    metric_name: str
    condition: str
    thresholds: list[tuple[str, str]]
    """(severity, threshold with its unit), the most severe first."""
    window: str
    for_: str
    group_by: list[str]
    channels: list[str]
    firing: int
    pending: int
    muted: bool
    built_in: str | None
    workspace: str
    can_write: bool


async def open_counts(engine: AsyncEngine, rule_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    """Per rule, how many of its alerts are firing and pending now."""
    if not rule_ids:
        return {}
    table = alert_instances
    select = (
        sa.select(table.c.rule_id, table.c.state, sa.func.count())
        .where(table.c.rule_id.in_(sorted(set(rule_ids))))
        .where(table.c.state.in_(("pending", "firing")))
        .group_by(table.c.rule_id, table.c.state)
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(select)).all()
    found: dict[str, dict[str, int]] = {}
    for rule_id, state, count in rows:
        found.setdefault(rule_id, {})[state] = int(count)
    return found


def threshold_texts(rule: AlertRule) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for severity, value in rule.thresholds:
        number, unit = shown(rule, value)
        found.append((severity, format_number(number, unit)))
    return found


def list_rows(
    rules: Sequence[AlertRule],
    counts: Mapping[str, Mapping[str, int]],
    channel_names: Mapping[str, str],
    workspaces: Mapping[str, WorkspaceLabel],
    writable: Callable[[str], bool],
) -> list[RuleRow]:
    rows = []
    for rule in rules:
        label = workspaces.get(rule.workspace_id)
        open_ = counts.get(rule.id, {})
        rows.append(
            RuleRow(
                id=rule.id,
                name=rule.name,
                metric=metric_title(rule),
                metric_name=rule.metric + (f" ({rule.anomaly_kind})" if rule.anomaly_kind else ""),
                condition=CONDITION_WORDS[rule.condition],
                thresholds=threshold_texts(rule),
                window=span(rule.window_s),
                for_=span(rule.for_s) if rule.for_s else "at once",
                group_by=list(rule.group_by),
                channels=[channel_names.get(id_, f"missing {id_[:8]}") for id_ in rule.channel_ids],
                firing=open_.get("firing", 0),
                pending=open_.get("pending", 0),
                muted=rule.muted,
                built_in=rule.built_in,
                workspace=label.name if label else rule.workspace_id,
                can_write=writable(rule.workspace_id),
            )
        )
    return rows

"""The value of a gauge rule per group at an evaluation: each budget's or deployment's value,
kept by the rule's filters and folded into its groups by the largest (a group of budgets is as
used as its most used budget; a group of deployments is down when any of them is)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.alerts.budget_usage import budget_uses
from telemetry.alerts.gauge_metrics import BUDGET_USED_PCT, DEPLOYMENT_DOWN, GaugeSources
from telemetry.alerts.rule import AlertRule

Labels = Mapping[str, str]
Group = tuple[tuple[str, str], ...]


async def gauge_values(
    engine: AsyncEngine, rule: AlertRule, now: datetime, sources: GaugeSources | None
) -> dict[Group, float]:
    """The rule's value per group; no group when its source was not given."""
    found: list[tuple[Labels, float]] = []
    if rule.metric == BUDGET_USED_PCT and sources is not None and sources.budgets is not None:
        budgets = await sources.budgets(rule.workspace_id, now)
        of_soft = rule.anomaly_kind == "soft_limit"
        for use in await budget_uses(engine, rule.workspace_id, budgets):
            percent = use.percent(of_soft)
            if percent is not None:
                labels = {"budget": use.scope, "subject": use.subject, "window": use.window}
                found.append((labels, percent))
    elif rule.metric == DEPLOYMENT_DOWN and sources is not None and sources.deployments:
        for state in sources.deployments():
            labels = {
                "provider": state.provider,
                "model": state.model,
                "deployment": state.deployment,
            }
            found.append((labels, 1.0 if state.down else 0.0))
    return _grouped(rule, found)


def _grouped(rule: AlertRule, values: Iterable[tuple[Labels, float]]) -> dict[Group, float]:
    groups: dict[Group, float] = {}
    for labels, value in values:
        if any(labels.get(name) not in kept for name, kept in rule.filters.items()):
            continue
        group = tuple(sorted((name, labels[name]) for name in rule.group_by))
        groups[group] = max(value, groups.get(group, value))
    return groups

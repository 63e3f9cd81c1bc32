"""The built-in alert rules every workspace is given once: on by default, editable, notifying
no channel until a user picks some.

A workspace gets them when it is made (`gateway.keys.store.KeyStore.create_workspace`) and, for the
workspaces that existed before, when a gateway or worker starts (`install_builtins`). Each one
given is recorded in `alert_builtin_installs`, so a built-in rule a user deleted is never made
again; muting one keeps it evaluated and recorded without notifying.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.alerts.rule import AlertRule, check_rule
from telemetry.alerts.rule_store import insert_rule
from telemetry.ids import uuid7_hex
from telemetry.schema import alert_builtin_installs, alert_rules, workspaces

BUILTIN_RULES: Final = {
    "budget_soft_limit": AlertRule(
        name="Budget soft limit reached",
        metric="budget_used_pct",
        anomaly_kind="soft_limit",
        group_by=["budget", "subject", "window"],
        condition="above",
        warning=100.0,
        message="{rule}: the {labels[window]} {labels[budget]} budget of {labels[subject]} "
        "has spent {value} of its soft limit",
    ),
    "deployment_cooldown": AlertRule(
        name="Deployment in cooldown",
        metric="deployment_down",
        group_by=["provider", "model", "deployment"],
        condition="above",
        warning=0.0,
        message="{rule}: {labels[deployment]} (model {labels[model]}) is out of rotation",
    ),
    "error_rate": AlertRule(
        name="Error rate above 5 %",
        metric="error_rate",
        group_by=["model"],
        window_s=300,
        condition="above",
        warning=0.05,
        critical=0.25,
        min_requests=20,
        message="{rule}: {value} of requests failed over {window}{group}",
    ),
    "latency_last_week": AlertRule(
        name="p95 latency above the same hour last week",
        metric="latency_p95",
        group_by=["model"],
        window_s=3600,
        condition="change_pct",
        compare_to="last_week",
        warning=50.0,
        critical=100.0,
        min_requests=50,
        message="{rule}: p95 latency {value} against the same hour last week{group}",
    ),
}
"""Built-in name (`alert_rules.built_in`) → the rule as it is made."""


def builtin_rule(name: str, workspace_id: str) -> AlertRule:
    """The built-in rule `name` for a workspace, with a new id."""
    template = BUILTIN_RULES[name]
    return AlertRule(
        **{
            field: getattr(template, field)
            for field in template.__struct_fields__
            if field not in ("id", "workspace_id", "built_in")
        },
        id=uuid7_hex(),
        workspace_id=workspace_id,
        built_in=name,
    )


async def install_builtins(
    engine: AsyncEngine, workspace_ids: Iterable[str] | None = None, *, now: datetime | None = None
) -> int:
    """Give each workspace (of `workspace_ids`, or every one) the built-in rules it was never
    given; the number of rules made. A rule of the same name that the workspace already has is
    left as it is (the built-in counts as given). Safe to run from several processes at once."""
    at = now or datetime.now(UTC)
    given = sa.select(alert_builtin_installs.c.workspace_id, alert_builtin_installs.c.built_in)
    wanted = sa.select(workspaces.c.workspace_id)
    if workspace_ids is not None:
        wanted = wanted.where(workspaces.c.workspace_id.in_(sorted(set(workspace_ids))))
    async with engine.connect() as connection:
        done = {(row[0], row[1]) for row in await connection.execute(given)}
        targets = list((await connection.execute(wanted)).scalars())
    made = 0
    for workspace_id in targets:
        for name in BUILTIN_RULES:
            if (workspace_id, name) not in done:
                made += await _install(engine, workspace_id, name, at)
    return made


async def _install(engine: AsyncEngine, workspace_id: str, name: str, at: datetime) -> int:
    rule = builtin_rule(name, workspace_id)
    check_rule(rule)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                alert_builtin_installs.insert().values(
                    workspace_id=workspace_id, built_in=name, installed_at=at
                )
            )
            taken = await connection.scalar(
                sa.select(sa.func.count()).where(
                    alert_rules.c.workspace_id == workspace_id,
                    sa.or_(alert_rules.c.name == rule.name, alert_rules.c.built_in == name),
                )
            )
            if taken:
                return 0
            await insert_rule(connection, rule, at)
    except sa.exc.IntegrityError:
        return 0  # given meanwhile by another process
    return 1

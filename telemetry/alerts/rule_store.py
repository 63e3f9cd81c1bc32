"""Alert rules and notification channels in the database, per workspace.

Rules are checked (`check_rule`) before they are written, and channels are `ChannelConfig`s,
whose secrets are references or sealed values: what is stored can always be used as it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from telemetry.alerts.channel_config import ChannelConfig
from telemetry.alerts.rule import AlertRule, RuleError, check_rule
from telemetry.ids import uuid7_hex
from telemetry.schema import (
    alert_deliveries,
    alert_events,
    alert_instances,
    alert_rules,
    notification_channels,
)


class RuleNameTaken(RuleError):
    """Another rule of the workspace has this name."""

    def __init__(self, name: str) -> None:
        super().__init__("name", f"a rule named {name!r} exists in this workspace")


def _rule_row(rule: AlertRule) -> dict[str, Any]:
    return {
        "rule_id": rule.id,
        "workspace_id": rule.workspace_id,
        "name": rule.name,
        "metric": rule.metric,
        "anomaly_kind": rule.anomaly_kind,
        "filters": rule.filters,
        "group_by": rule.group_by,
        "window_s": rule.window_s,
        "condition": rule.condition,
        "warning_threshold": rule.warning,
        "critical_threshold": rule.critical,
        "for_s": rule.for_s,
        "min_requests": rule.min_requests,
        "no_data": rule.no_data,
        "labels": rule.labels,
        "message": rule.message,
        "channel_ids": rule.channel_ids,
        "renotify_s": rule.renotify_s,
        "notify_on_resolve": rule.notify_on_resolve,
        "muted": rule.muted,
        "built_in": rule.built_in,
        "compare_to": rule.compare_to,
        "managed_by": rule.managed_by,
    }


def _rule_of(row: sa.RowMapping) -> AlertRule:
    return AlertRule(
        id=row["rule_id"],
        workspace_id=row["workspace_id"],
        name=row["name"],
        metric=row["metric"],
        anomaly_kind=row["anomaly_kind"],
        filters={name: list(values) for name, values in row["filters"].items()},
        group_by=list(row["group_by"]),
        window_s=row["window_s"],
        condition=row["condition"],
        warning=row["warning_threshold"],
        critical=row["critical_threshold"],
        for_s=row["for_s"],
        min_requests=row["min_requests"],
        no_data=row["no_data"],
        labels=dict(row["labels"]),
        message=row["message"],
        channel_ids=list(row["channel_ids"]),
        renotify_s=row["renotify_s"],
        notify_on_resolve=row["notify_on_resolve"],
        muted=row["muted"],
        built_in=row["built_in"],
        compare_to=row["compare_to"],
        managed_by=row["managed_by"],
    )


async def create_rule(
    engine: AsyncEngine, rule: AlertRule, *, now: datetime | None = None
) -> AlertRule:
    """Store a new rule; the stored rule, with its id. `RuleError` for a rule that fails its
    checks, names a channel its workspace does not have, or takes a name already used there."""
    await _check_with_channels(engine, rule)
    stored = msgspec.structs.replace(rule, id=rule.id or uuid7_hex())
    try:
        async with engine.begin() as connection:
            await insert_rule(connection, stored, now or datetime.now(UTC))
    except sa.exc.IntegrityError:
        raise RuleNameTaken(rule.name) from None
    return stored


async def insert_rule(connection: AsyncConnection, rule: AlertRule, at: datetime) -> None:
    """Write a checked rule with its id, in the caller's transaction."""
    await connection.execute(
        alert_rules.insert().values(**_rule_row(rule), created_at=at, updated_at=at)
    )


async def _check_with_channels(engine: AsyncEngine, rule: AlertRule) -> None:
    check_rule(rule)
    known = await load_channels(engine, rule.workspace_id, rule.channel_ids)
    missing = [channel for channel in rule.channel_ids if channel not in known]
    if missing:
        raise RuleError("channels", f"no channel {missing[0]} in this workspace")


async def get_rule(engine: AsyncEngine, rule_id: str) -> AlertRule | None:
    select = sa.select(alert_rules).where(alert_rules.c.rule_id == rule_id)
    async with engine.connect() as connection:
        row = (await connection.execute(select)).mappings().first()
    return None if row is None else _rule_of(row)


async def update_rule(
    engine: AsyncEngine, rule: AlertRule, *, now: datetime | None = None
) -> AlertRule:
    """Replace the stored rule of `rule.id` (its workspace, `built_in` and `managed_by` kept);
    the same errors as `create_rule`."""
    await _check_with_channels(engine, rule)
    row = _rule_row(rule)
    for kept in ("rule_id", "workspace_id", "built_in", "managed_by"):
        del row[kept]
    try:
        async with engine.begin() as connection:
            await connection.execute(
                alert_rules.update()
                .where(alert_rules.c.rule_id == rule.id)
                .values(**row, updated_at=now or datetime.now(UTC))
            )
    except sa.exc.IntegrityError:
        raise RuleNameTaken(rule.name) from None
    return rule


async def delete_rule(engine: AsyncEngine, rule_id: str) -> None:
    """The rule and its alerts' history (instances, their events and deliveries)."""
    instances = sa.select(alert_instances.c.instance_id).where(alert_instances.c.rule_id == rule_id)
    async with engine.begin() as connection:
        for table in (alert_events, alert_deliveries):
            await connection.execute(table.delete().where(table.c.instance_id.in_(instances)))
        await connection.execute(
            alert_instances.delete().where(alert_instances.c.rule_id == rule_id)
        )
        await connection.execute(alert_rules.delete().where(alert_rules.c.rule_id == rule_id))


async def set_muted(engine: AsyncEngine, rule_id: str, muted: bool) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            alert_rules.update()
            .where(alert_rules.c.rule_id == rule_id)
            .values(muted=muted, updated_at=datetime.now(UTC))
        )


async def load_rules(
    engine: AsyncEngine,
    workspace_id: str | None = None,
    *,
    workspace_ids: Iterable[str] | None = None,
) -> list[AlertRule]:
    """Every rule (of one workspace, of some, or of all), oldest first."""
    select = sa.select(alert_rules).order_by(alert_rules.c.rule_id)
    if workspace_id is not None:
        select = select.where(alert_rules.c.workspace_id == workspace_id)
    if workspace_ids is not None:
        select = select.where(alert_rules.c.workspace_id.in_(sorted(workspace_ids)))
    async with engine.connect() as connection:
        rows = (await connection.execute(select)).mappings().all()
    return [_rule_of(row) for row in rows]


async def create_channel(
    engine: AsyncEngine,
    channel: ChannelConfig,
    *,
    workspace_id: str,
    now: datetime | None = None,
    managed_by: str | None = None,
) -> ChannelConfig:
    """Store a channel (already checked by `ChannelConfig`); the stored one, with its id."""
    stored = ChannelConfig(
        id=channel.id or uuid7_hex(),
        kind=channel.kind,
        name=channel.name,
        settings=channel.settings,
        secrets=channel.secrets,
    )
    at = now or datetime.now(UTC)
    async with engine.begin() as connection:
        await connection.execute(
            notification_channels.insert().values(
                channel_id=stored.id,
                workspace_id=workspace_id,
                kind=stored.kind,
                name=stored.name,
                settings=stored.settings,
                secrets=stored.secrets,
                created_at=at,
                updated_at=at,
                managed_by=managed_by,
            )
        )
    return stored


async def load_channels(
    engine: AsyncEngine, workspace_id: str, channel_ids: Iterable[str]
) -> dict[str, ChannelConfig]:
    """The workspace's channels of these ids (another workspace's never)."""
    wanted = sorted(set(channel_ids))
    if not wanted:
        return {}
    table = notification_channels
    select = sa.select(table).where(
        table.c.workspace_id == workspace_id, table.c.channel_id.in_(wanted)
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(select)).mappings().all()
    return {
        row["channel_id"]: ChannelConfig(
            id=row["channel_id"],
            kind=row["kind"],
            name=row["name"],
            settings=dict(row["settings"]),
            secrets=dict(row["secrets"]),
        )
        for row in rows
    }

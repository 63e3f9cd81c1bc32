"""Alert instances as operators read and handle them: listed newest first a page at a time,
one with its events and deliveries, acknowledged, resolved by hand. Each handling writes an
event to the instance's timeline in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.db import as_utc
from telemetry.ids import uuid7_hex
from telemetry.schema import alert_deliveries, alert_events, alert_instances

OPEN_STATES = ("pending", "firing")
STATES = (*OPEN_STATES, "resolved", "inactive")


class NotOpen(Exception):
    """The instance has already ended."""


@dataclass(frozen=True, slots=True)
class InstanceFilter:
    workspace_ids: frozenset[str] | None
    """None: every workspace."""
    state: str | None = None
    rule_id: str | None = None
    severity: str | None = None
    since: datetime | None = None
    """Instances started at or after this time."""
    cursor: str | None = None
    """The last instance id of the previous page."""
    limit: int = 50


def _plain(row: sa.RowMapping) -> dict[str, Any]:
    return {
        name: as_utc(value) if isinstance(value, datetime) else value for name, value in row.items()
    }


async def list_instances(
    engine: AsyncEngine, query: InstanceFilter
) -> tuple[list[dict[str, Any]], bool]:
    """A page of instances, newest first, and whether more follow."""
    table = alert_instances
    select = sa.select(table).order_by(table.c.instance_id.desc()).limit(query.limit + 1)
    if query.workspace_ids is not None:
        select = select.where(table.c.workspace_id.in_(sorted(query.workspace_ids)))
    if query.state is not None:
        select = select.where(table.c.state == query.state)
    if query.rule_id is not None:
        select = select.where(table.c.rule_id == query.rule_id)
    if query.severity is not None:
        select = select.where(table.c.severity == query.severity)
    if query.since is not None:
        select = select.where(table.c.started_at >= query.since)
    if query.cursor is not None:
        select = select.where(table.c.instance_id < query.cursor)
    async with engine.connect() as connection:
        rows = (await connection.execute(select)).mappings().all()
    return [_plain(row) for row in rows[: query.limit]], len(rows) > query.limit


async def get_instance(engine: AsyncEngine, instance_id: str) -> dict[str, Any] | None:
    select = sa.select(alert_instances).where(alert_instances.c.instance_id == instance_id)
    async with engine.connect() as connection:
        row = (await connection.execute(select)).mappings().first()
    return None if row is None else _plain(row)


async def history_of(
    engine: AsyncEngine, instance_id: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The instance's events and deliveries, oldest first."""
    found: list[list[dict[str, Any]]] = []
    async with engine.connect() as connection:
        for table, order in ((alert_events, "event_id"), (alert_deliveries, "delivery_id")):
            select = (
                sa.select(table).where(table.c.instance_id == instance_id).order_by(table.c[order])
            )
            found.append([_plain(row) for row in (await connection.execute(select)).mappings()])
    return found[0], found[1]


async def acknowledge(engine: AsyncEngine, instance: dict[str, Any], by: str) -> None:
    now = datetime.now(UTC)
    async with engine.begin() as connection:
        await connection.execute(
            alert_instances.update()
            .where(alert_instances.c.instance_id == instance["instance_id"])
            .values(acknowledged_at=now, acknowledged_by=by[:320])
        )
        await connection.execute(
            alert_events.insert().values(
                **_event(instance, now, instance["state"]), note=f"acknowledged by {by}"
            )
        )


async def resolve_by_hand(engine: AsyncEngine, instance: dict[str, Any], by: str) -> None:
    """End an open instance as `resolved`; `NotOpen` when it has already ended (the check and
    the change are one statement, so an evaluation in between cannot be overwritten)."""
    now = datetime.now(UTC)
    table = alert_instances
    async with engine.begin() as connection:
        changed = await connection.execute(
            table.update()
            .where(table.c.instance_id == instance["instance_id"], table.c.state.in_(OPEN_STATES))
            .values(state="resolved", resolved_at=now)
        )
        if changed.rowcount != 1:
            raise NotOpen(instance["instance_id"])
        await connection.execute(
            alert_events.insert().values(
                **_event(instance, now, "resolved"), note=f"resolved by hand by {by}"
            )
        )


def _event(instance: dict[str, Any], now: datetime, to_state: str) -> dict[str, Any]:
    return {
        "event_id": uuid7_hex(),
        "instance_id": instance["instance_id"],
        "workspace_id": instance["workspace_id"],
        "at": now,
        "from_state": instance["state"],
        "to_state": to_state,
        "severity": instance["severity"],
        "value": instance["value"],
    }

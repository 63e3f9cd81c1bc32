"""Alert instances, their events and their deliveries in the database.

An instance is one episode of a rule's group (its fingerprint): a row from the condition first
holding until it clears, kept afterwards as history. At most one per rule and fingerprint is
open (`pending` or `firing`): a partial unique index guards it, so two evaluators that ever ran
at once could not open the same alert twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from telemetry.alerts.delivery import DeliveryResult
from telemetry.alerts.state_machine import OpenInstance, Step
from telemetry.db import as_utc
from telemetry.ids import uuid7_hex
from telemetry.schema import alert_deliveries, alert_events, alert_instances


@dataclass(frozen=True, slots=True)
class Stored:
    """An open instance and its labels."""

    instance: OpenInstance
    labels: dict[str, str]


@dataclass(frozen=True, slots=True)
class Change:
    """What one evaluation does to one group's instance."""

    fingerprint: str
    labels: dict[str, str]
    current: OpenInstance | None
    step: Step
    value: float | None
    silenced_by: str | None = None
    """The active silence matching the alert: its notifications are held back."""


async def open_instances(engine: AsyncEngine, rule_id: str) -> dict[str, Stored]:
    """The rule's open instances by fingerprint."""
    table = alert_instances
    select = sa.select(table).where(
        table.c.rule_id == rule_id, table.c.state.in_(("pending", "firing"))
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(select)).mappings().all()
    return {
        row["fingerprint"]: Stored(
            OpenInstance(
                instance_id=row["instance_id"],
                state=row["state"],
                severity=row["severity"],
                started_at=_utc(row["started_at"]),
                last_notified_at=as_utc(row["last_notified_at"]),
                silenced_by=row["silenced_by"],
            ),
            dict(row["labels"]),
        )
        for row in rows
    }


def _utc(value: datetime) -> datetime:
    found = as_utc(value)
    assert found is not None
    return found


async def apply(
    engine: AsyncEngine, rule_id: str, workspace_id: str, changes: Sequence[Change], now: datetime
) -> dict[str, str]:
    """Write the changes and their events in one transaction; the instance id of each change
    by fingerprint. A change to an instance that left the state the round read (resolved by
    hand meanwhile) is not written and has no id: the round must not reopen it, and the next
    one opens a new instance if the condition still holds."""
    ids: dict[str, str] = {}
    async with engine.begin() as connection:
        for change in changes:
            instance_id = await _apply(connection, rule_id, workspace_id, change, now)
            if instance_id is not None:
                ids[change.fingerprint] = instance_id
    return ids


async def _apply(
    connection: AsyncConnection, rule_id: str, workspace_id: str, change: Change, now: datetime
) -> str | None:
    step, current = change.step, change.current
    assert step.state is not None
    values: dict[str, Any] = {
        "state": step.state,
        "last_evaluated_at": now,
        "silenced_by": change.silenced_by,
    }
    if step.severity is not None:
        values["severity"] = step.severity
    if change.value is not None:
        values["value"] = change.value  # without data, the last value measured stays
    if step.threshold is not None:
        values["threshold"] = step.threshold
    if step.state == "firing" and (current is None or current.state == "pending"):
        values["fired_at"] = now
    if step.state in ("resolved", "inactive"):
        values["resolved_at"] = now
    if current is None:
        instance_id = uuid7_hex()
        await connection.execute(
            alert_instances.insert().values(
                instance_id=instance_id,
                rule_id=rule_id,
                workspace_id=workspace_id,
                fingerprint=change.fingerprint,
                labels=change.labels,
                started_at=now,
                **values,
            )
        )
    else:
        instance_id = current.instance_id
        table = alert_instances
        changed = await connection.execute(
            table.update()
            .where(table.c.instance_id == instance_id, table.c.state == current.state)
            .values(**values)
        )
        if changed.rowcount != 1:
            return None
    event = _with_silence(step, current, change.silenced_by)
    if event is not None:
        from_state, to_state, note = event
        await connection.execute(
            alert_events.insert().values(
                event_id=uuid7_hex(),
                instance_id=instance_id,
                workspace_id=workspace_id,
                at=now,
                from_state=from_state,
                to_state=to_state,
                severity=step.severity,
                value=change.value,
                note=note,
            )
        )
    return instance_id


def _with_silence(
    step: Step, current: OpenInstance | None, silenced_by: str | None
) -> tuple[str, str, str | None] | None:
    """The step's event, with a note when a silence begins or stops holding the alert back (an
    event of its own when the state stays)."""
    before = None if current is None else current.silenced_by
    if silenced_by == before:
        return step.event
    if silenced_by is not None:
        note = f"silenced by {silenced_by}"
    else:
        note = f"no longer silenced by {before}"
    if step.event is None:
        assert step.state is not None and current is not None
        return current.state, step.state, note
    from_state, to_state, already = step.event
    return from_state, to_state, f"{already}; {note}" if already else note


async def record_deliveries(
    engine: AsyncEngine,
    instance_id: str,
    workspace_id: str,
    event: str,
    results: Sequence[DeliveryResult],
    now: datetime,
) -> None:
    """The delivery log rows of one notification, and the instance marked notified at `now`."""
    async with engine.begin() as connection:
        if results:
            await connection.execute(
                alert_deliveries.insert(),
                [
                    {
                        "delivery_id": uuid7_hex(),
                        "instance_id": instance_id,
                        "channel_id": result.channel_id,
                        "workspace_id": workspace_id,
                        "at": result.started_at,
                        "event": event,
                        "status": result.status,
                        "attempts": result.attempts,
                        "duration_ms": result.duration_ms,
                        "http_status": result.http_status,
                        "smtp_reply": result.smtp_reply,
                        "error": result.error,
                    }
                    for result in results
                ],
            )
        await connection.execute(
            alert_instances.update()
            .where(alert_instances.c.instance_id == instance_id)
            .values(last_notified_at=now)
        )

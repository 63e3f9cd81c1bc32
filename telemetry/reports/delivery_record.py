"""How a report's delivery went, kept on its instance (`report_instances.deliveries`): one entry
per recipient with the channel, the status, the attempts, the time taken and the reason of a
failure (secrets already masked by the delivery). None until a delivery was made."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.alerts.delivery import DeliveryResult
from telemetry.schema import report_instances


class RecipientOutcome(msgspec.Struct, frozen=True, kw_only=True):
    channel_id: str
    channel_name: str
    kind: str
    status: str
    """sent | failed"""
    attempts: int
    started_at: datetime
    duration_ms: float
    http_status: int | None = None
    smtp_reply: str | None = None
    error: str | None = None


def outcome(result: DeliveryResult) -> RecipientOutcome:
    return RecipientOutcome(
        channel_id=result.channel_id,
        channel_name=result.channel_name,
        kind=result.kind,
        status=result.status,
        attempts=result.attempts,
        started_at=result.started_at,
        duration_ms=result.duration_ms,
        http_status=result.http_status,
        smtp_reply=result.smtp_reply,
        error=result.error,
    )


async def record_deliveries(
    engine: AsyncEngine, instance_id: str, results: Sequence[DeliveryResult]
) -> None:
    rows = msgspec.to_builtins([outcome(result) for result in results])
    async with engine.begin() as connection:
        await connection.execute(
            report_instances.update()
            .where(report_instances.c.instance_id == instance_id)
            .values(deliveries=rows)
        )


async def deliveries_of(
    engine: AsyncEngine, instance_ids: Iterable[str]
) -> dict[str, tuple[RecipientOutcome, ...] | None]:
    """Each instance's recipients' outcomes; None for an instance not delivered (yet)."""
    ids = sorted(set(instance_ids))
    if not ids:
        return {}
    table = report_instances
    select = sa.select(table.c.instance_id, table.c.deliveries).where(table.c.instance_id.in_(ids))
    async with engine.connect() as connection:
        rows = (await connection.execute(select)).all()
    return {
        instance_id: None
        if stored is None
        else msgspec.convert(stored, tuple[RecipientOutcome, ...], strict=False)
        for instance_id, stored in rows
    }


def as_json(outcomes: Sequence[RecipientOutcome] | None) -> list[dict[str, Any]] | None:
    return None if outcomes is None else msgspec.to_builtins(list(outcomes))

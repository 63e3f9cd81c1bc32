"""How a report's delivery went, kept on its instance (`report_instances.deliveries`): one entry
per recipient with the channel, the status, the attempts, the time taken and the reason of a
failure (secrets already masked by the delivery). None until a delivery was made; the store
reads it with the instance (`ReportInstance.deliveries`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec
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


def outcomes(stored: Any) -> tuple[RecipientOutcome, ...] | None:
    """The outcomes as stored in `report_instances.deliveries` (None: not delivered)."""
    if stored is None:
        return None
    return msgspec.convert(stored, tuple[RecipientOutcome, ...], strict=False)


def as_json(found: Sequence[RecipientOutcome] | None) -> list[dict[str, Any]] | None:
    return None if found is None else msgspec.to_builtins(list(found))

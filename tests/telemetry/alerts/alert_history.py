"""Helpers of the alert evaluation tests: traffic planted through the real writer, a webhook
channel pointing at a real receiver, and readers of the alert tables."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.alerts import ChannelConfig
from telemetry.alerts.evaluation import Delivery
from telemetry.alerts.rule_store import create_channel
from telemetry.ids import uuid7_hex
from telemetry.schema import (
    DEFAULT_WORKSPACE_ID,
    alert_deliveries,
    alert_events,
    alert_instances,
    workspaces,
)
from telemetry.writers import BatchWriter
from tests.telemetry import make_bundle

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
"""A whole minute: windows evaluated at T0 + whole minutes are exactly [now - window, now)."""
OTHER_WORKSPACE = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
SECRET = "hook-signing-secret"
DELIVERY = Delivery(console_url="https://steerway.example", environ={"HOOK_SECRET": SECRET})


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


async def plant(
    engine: AsyncEngine,
    *,
    start: datetime,
    minutes_: int,
    per_minute: int,
    errors_per_minute: int = 0,
    model: str = "gpt-4o-mini",
    workspace_id: str = DEFAULT_WORKSPACE_ID,
    latency_ms: float = 120.0,
) -> None:
    """`per_minute` requests in each of `minutes_` minutes from `start`, the first
    `errors_per_minute` of each minute errors."""
    bundles = [
        make_bundle(
            started_at=(start + minutes(minute)).timestamp() + 1 + index * 0.5,
            status="error" if index < errors_per_minute else "ok",
            model=model,
            workspace_id=workspace_id,
            latency_ms=latency_ms,
        )
        for minute in range(minutes_)
        for index in range(per_minute)
    ]
    await BatchWriter(engine).write(bundles)


async def webhook_channel(
    engine: AsyncEngine, url: str, *, workspace_id: str = DEFAULT_WORKSPACE_ID
) -> str:
    channel = await create_channel(
        engine,
        ChannelConfig(
            kind="webhook",
            name=f"hook {uuid7_hex()[-8:]}",
            settings={"url": url, "max_attempts": 1, "timeout_s": 5},
            secrets={"signing_secret": "${HOOK_SECRET}"},
        ),
        workspace_id=workspace_id,
    )
    return channel.id


async def add_workspace(engine: AsyncEngine, workspace_id: str = OTHER_WORKSPACE) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            workspaces.insert().values(
                workspace_id=workspace_id,
                name="Other",
                slug="other",
                settings={},
                created_at=T0 - timedelta(days=1),
            )
        )


async def rows(engine: AsyncEngine, table: sa.Table, order: str) -> list[dict[str, Any]]:
    async with engine.connect() as connection:
        found = await connection.execute(sa.select(table).order_by(table.c[order]))
        return [dict(row) for row in found.mappings()]


async def instances(engine: AsyncEngine) -> list[dict[str, Any]]:
    return await rows(engine, alert_instances, "instance_id")


async def events(engine: AsyncEngine) -> list[tuple[str, str]]:
    return [
        (row["from_state"], row["to_state"]) for row in await rows(engine, alert_events, "event_id")
    ]


async def deliveries(engine: AsyncEngine) -> list[dict[str, Any]]:
    return await rows(engine, alert_deliveries, "delivery_id")


def alerts_of(received: Sequence[Any]) -> list[dict[str, Any]]:
    """The `alert` objects of the webhook payloads received, checked for a valid signature."""
    assert all(request.problem is None for request in received), [r.problem for r in received]
    return [request.json()["alert"] for request in received]

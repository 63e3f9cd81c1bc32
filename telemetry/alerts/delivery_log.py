"""A channel's delivery log as the console reads it: the rows `alert_deliveries` keeps for one
channel, newest first a page at a time, and the last delivery of each channel for a list."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.db import as_utc
from telemetry.schema import alert_deliveries


@dataclass(frozen=True, slots=True)
class DeliveryPage:
    rows: list[dict[str, Any]]
    has_more: bool


def _plain(row: sa.RowMapping) -> dict[str, Any]:
    return {
        name: as_utc(value) if isinstance(value, datetime) else value for name, value in row.items()
    }


async def channel_deliveries(
    engine: AsyncEngine,
    channel_id: str,
    workspace_id: str,
    *,
    cursor: str | None = None,
    limit: int = 50,
) -> DeliveryPage:
    """The channel's deliveries, newest first; `cursor`: the last delivery id of the page
    before. Only the channel's workspace's rows, though a channel id is never reused."""
    table = alert_deliveries
    select = (
        sa.select(table)
        .where(table.c.channel_id == channel_id, table.c.workspace_id == workspace_id)
        .order_by(table.c.delivery_id.desc())
        .limit(limit + 1)
    )
    if cursor is not None:
        select = select.where(table.c.delivery_id < cursor)
    async with engine.connect() as connection:
        rows = (await connection.execute(select)).mappings().all()
    return DeliveryPage([_plain(row) for row in rows[:limit]], len(rows) > limit)


async def last_deliveries(
    engine: AsyncEngine, channel_ids: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """The newest delivery of each of these channels that has one, by channel id."""
    wanted = sorted(set(channel_ids))
    if not wanted:
        return {}
    table = alert_deliveries
    newest = (
        sa.select(sa.func.max(table.c.delivery_id))
        .where(table.c.channel_id.in_(wanted))
        .group_by(table.c.channel_id)
    )
    select = sa.select(table).where(table.c.delivery_id.in_(newest))
    async with engine.connect() as connection:
        rows = (await connection.execute(select)).mappings().all()
    return {row["channel_id"]: _plain(row) for row in rows}

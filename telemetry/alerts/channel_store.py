"""Notification channels in the database as the admin API reads and changes them: with their
workspace and times, listed, replaced and deleted. A name is unique in its workspace, and a
channel a rule still notifies cannot be deleted."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.alerts.channel_config import ChannelConfig
from telemetry.alerts.rule_store import create_channel, load_rules
from telemetry.db import as_utc
from telemetry.schema import notification_channels


class ChannelNameTaken(Exception):
    """Another channel of the workspace has this name."""


class ChannelInUse(Exception):
    """Rules still notify the channel; the message names them."""


@dataclass(frozen=True, slots=True)
class StoredChannel:
    workspace_id: str
    channel: ChannelConfig
    created_at: datetime
    updated_at: datetime
    managed_by: str | None = None
    """`config`: the channel comes from the config file, which alone changes it."""


def _stored(row: sa.RowMapping) -> StoredChannel:
    created, updated = as_utc(row["created_at"]), as_utc(row["updated_at"])
    assert created is not None and updated is not None
    return StoredChannel(
        workspace_id=row["workspace_id"],
        channel=ChannelConfig(
            id=row["channel_id"],
            kind=row["kind"],
            name=row["name"],
            settings=dict(row["settings"]),
            secrets=dict(row["secrets"]),
        ),
        created_at=created,
        updated_at=updated,
        managed_by=row["managed_by"],
    )


async def list_channels(
    engine: AsyncEngine, workspace_ids: Iterable[str] | None
) -> list[StoredChannel]:
    """The channels of these workspaces (None: of all), oldest first."""
    table = notification_channels
    select = sa.select(table).order_by(table.c.channel_id)
    if workspace_ids is not None:
        select = select.where(table.c.workspace_id.in_(sorted(workspace_ids)))
    async with engine.connect() as connection:
        rows = (await connection.execute(select)).mappings().all()
    return [_stored(row) for row in rows]


async def get_channel(engine: AsyncEngine, channel_id: str) -> StoredChannel | None:
    table = notification_channels
    select = sa.select(table).where(table.c.channel_id == channel_id)
    async with engine.connect() as connection:
        row = (await connection.execute(select)).mappings().first()
    return None if row is None else _stored(row)


async def add_channel(
    engine: AsyncEngine,
    channel: ChannelConfig,
    workspace_id: str,
    *,
    managed_by: str | None = None,
) -> None:
    try:
        await create_channel(engine, channel, workspace_id=workspace_id, managed_by=managed_by)
    except sa.exc.IntegrityError:
        raise ChannelNameTaken(channel.name) from None


async def replace_channel(engine: AsyncEngine, channel: ChannelConfig) -> None:
    table = notification_channels
    try:
        async with engine.begin() as connection:
            await connection.execute(
                table.update()
                .where(table.c.channel_id == channel.id)
                .values(
                    kind=channel.kind,
                    name=channel.name,
                    settings=channel.settings,
                    secrets=channel.secrets,
                    updated_at=datetime.now(UTC),
                )
            )
    except sa.exc.IntegrityError:
        raise ChannelNameTaken(channel.name) from None


async def delete_channel(engine: AsyncEngine, stored: StoredChannel) -> None:
    users = [
        rule.name
        for rule in await load_rules(engine, stored.workspace_id)
        if stored.channel.id in rule.channel_ids
    ]
    if users:
        raise ChannelInUse(", ".join(repr(name) for name in users))
    table = notification_channels
    async with engine.begin() as connection:
        await connection.execute(table.delete().where(table.c.channel_id == stored.channel.id))

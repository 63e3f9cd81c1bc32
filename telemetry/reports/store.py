"""Report definitions, the instances made from them and their files, in the database.

A definition's recipients are notification channels of its own workspace, of a kind a report
can be sent to (`RECIPIENT_KINDS`); the store checks that before writing. Every workspace has
the weekly summary (`ensure_weekly_summaries`), made the first time the reports are read or
scheduled after the workspace exists; it can be changed or disabled, not deleted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from telemetry.db import as_utc
from telemetry.ids import uuid7_hex
from telemetry.reports.definition import (
    RECIPIENT_KINDS,
    WEEKLY_SUMMARY,
    DefinitionError,
    ReportDefinition,
    weekly_summary,
)
from telemetry.reports.delivery_record import RecipientOutcome, outcomes
from telemetry.schema import (
    notification_channels,
    report_definitions,
    report_files,
    report_instances,
    workspaces,
)

TRIGGERS: Final = ("scheduled", "manual")
STATUSES: Final = ("done", "failed")


class DefinitionNameTaken(DefinitionError):
    def __init__(self, name: str) -> None:
        super().__init__("name", f"a report named {name!r} exists in this workspace")


class ReportFile(msgspec.Struct, frozen=True, kw_only=True):
    format: str
    content_type: str
    size: int
    sha256: str


class ReportInstance(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    definition_id: str
    workspace_id: str
    range_start: datetime
    range_end: datetime
    trigger: str
    status: str
    error: str | None
    made_at: datetime
    files: tuple[ReportFile, ...] = ()
    deliveries: tuple[RecipientOutcome, ...] | None = None
    """How the delivery to each recipient went; None until the report was sent."""


@dataclass(frozen=True, slots=True)
class FileContent:
    workspace_id: str
    format: str
    content_type: str
    content: bytes


def _utc(value: datetime | None) -> datetime | None:
    return as_utc(value)


def _definition(row: sa.RowMapping) -> ReportDefinition:
    return ReportDefinition(
        id=row["definition_id"],
        workspace_id=row["workspace_id"],
        name=row["name"],
        sections=tuple(row["sections"]),
        range=row["range"],
        schedule=row["schedule"],
        time_zone=row["time_zone"],
        recipient_ids=tuple(row["recipient_ids"]),
        formats=tuple(row["formats"]),
        enabled=row["enabled"],
        built_in=row["built_in"],
        next_run_at=_utc(row["next_run_at"]),
        created_at=_utc(row["created_at"]),
        updated_at=_utc(row["updated_at"]),
    )


def _definition_row(definition: ReportDefinition) -> dict[str, Any]:
    return {
        "name": definition.name,
        "sections": list(definition.sections),
        "range": definition.range,
        "schedule": definition.schedule,
        "time_zone": definition.time_zone,
        "recipient_ids": list(definition.recipient_ids),
        "formats": list(definition.formats),
        "enabled": definition.enabled,
        "next_run_at": definition.next_run_at,
    }


async def _check_recipients(engine: AsyncEngine, definition: ReportDefinition) -> None:
    if not definition.recipient_ids:
        return
    table = notification_channels
    async with engine.connect() as connection:
        rows = await connection.execute(
            sa.select(table.c.channel_id, table.c.kind).where(
                table.c.workspace_id == definition.workspace_id,
                table.c.channel_id.in_(definition.recipient_ids),
            )
        )
        kinds = {row.channel_id: row.kind for row in rows}
    for position, channel_id in enumerate(definition.recipient_ids):
        field = f"recipients[{position}]"
        if channel_id not in kinds:
            raise DefinitionError(field, f"no channel {channel_id[:64]} in this workspace")
        if kinds[channel_id] not in RECIPIENT_KINDS:
            raise DefinitionError(
                field,
                f"a {kinds[channel_id]} channel cannot receive reports; "
                f"these can: {', '.join(RECIPIENT_KINDS)}",
            )


async def create_definition(
    engine: AsyncEngine, definition: ReportDefinition, now: datetime | None = None
) -> ReportDefinition:
    """Store a new definition, scheduled from `now`; `DefinitionError` for an unknown
    recipient, `DefinitionNameTaken` for a name the workspace already uses."""
    await _check_recipients(engine, definition)
    at = now or datetime.now(UTC)
    stored = msgspec.structs.replace(
        definition, next_run_at=definition.next_after(at), created_at=at, updated_at=at
    )
    try:
        async with engine.begin() as connection:
            await connection.execute(
                report_definitions.insert().values(
                    definition_id=stored.id,
                    workspace_id=stored.workspace_id,
                    built_in=stored.built_in,
                    created_at=at,
                    updated_at=at,
                    **_definition_row(stored),
                )
            )
    except sa.exc.IntegrityError:
        raise DefinitionNameTaken(definition.name) from None
    return stored


async def update_definition(
    engine: AsyncEngine, definition: ReportDefinition, now: datetime | None = None
) -> ReportDefinition:
    """Replace the stored definition of `definition.id` (its workspace, `built_in` and
    creation kept), scheduled afresh from `now`."""
    await _check_recipients(engine, definition)
    at = now or datetime.now(UTC)
    stored = msgspec.structs.replace(
        definition, next_run_at=definition.next_after(at), updated_at=at
    )
    try:
        async with engine.begin() as connection:
            await connection.execute(
                report_definitions.update()
                .where(report_definitions.c.definition_id == definition.id)
                .values(**_definition_row(stored), updated_at=at)
            )
    except sa.exc.IntegrityError:
        raise DefinitionNameTaken(definition.name) from None
    return stored


async def get_definition(engine: AsyncEngine, definition_id: str) -> ReportDefinition | None:
    async with engine.connect() as connection:
        row = (
            (
                await connection.execute(
                    sa.select(report_definitions).where(
                        report_definitions.c.definition_id == definition_id
                    )
                )
            )
            .mappings()
            .first()
        )
    return None if row is None else _definition(row)


async def list_definitions(
    engine: AsyncEngine, workspace_ids: Iterable[str] | None
) -> list[ReportDefinition]:
    """The definitions of these workspaces (None: of all), oldest first."""
    select = sa.select(report_definitions).order_by(report_definitions.c.definition_id)
    if workspace_ids is not None:
        select = select.where(report_definitions.c.workspace_id.in_(sorted(workspace_ids)))
    async with engine.connect() as connection:
        rows = (await connection.execute(select)).mappings().all()
    return [_definition(row) for row in rows]


async def delete_definition(engine: AsyncEngine, definition_id: str) -> None:
    """The definition, its instances and their files."""
    instances = sa.select(report_instances.c.instance_id).where(
        report_instances.c.definition_id == definition_id
    )
    async with engine.begin() as connection:
        await connection.execute(
            report_files.delete().where(report_files.c.instance_id.in_(instances))
        )
        await connection.execute(
            report_instances.delete().where(report_instances.c.definition_id == definition_id)
        )
        await connection.execute(
            report_definitions.delete().where(report_definitions.c.definition_id == definition_id)
        )


async def ensure_weekly_summaries(engine: AsyncEngine, now: datetime | None = None) -> int:
    """Give every workspace without one its weekly summary; how many were made. Safe to run
    from several processes at once: a workspace's second one is refused by its unique key."""
    at = now or datetime.now(UTC)
    missing = sa.select(workspaces.c.workspace_id).where(
        ~sa.exists().where(
            report_definitions.c.workspace_id == workspaces.c.workspace_id,
            report_definitions.c.built_in == WEEKLY_SUMMARY,
        )
    )
    async with engine.connect() as connection:
        workspace_ids = list((await connection.execute(missing)).scalars())
    made = 0
    for workspace_id in workspace_ids:
        definition = weekly_summary(workspace_id, uuid7_hex())
        try:
            await create_definition(
                engine, _free_name(definition, await _names(engine, workspace_id)), at
            )
        except DefinitionNameTaken:
            continue  # made meanwhile by another process
        made += 1
    return made


async def _names(engine: AsyncEngine, workspace_id: str) -> set[str]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            sa.select(report_definitions.c.name).where(
                report_definitions.c.workspace_id == workspace_id
            )
        )
        return set(rows.scalars())


def _free_name(definition: ReportDefinition, taken: set[str]) -> ReportDefinition:
    """The definition under a name the workspace does not use yet (a user's own report may
    already be called "Weekly summary")."""
    name, number = definition.name, 2
    while name in taken:
        name, number = f"{definition.name} ({number})", number + 1
    return msgspec.structs.replace(definition, name=name)


async def due_definitions(engine: AsyncEngine, now: datetime) -> list[ReportDefinition]:
    """Enabled definitions whose next run is at or before `now`, the most overdue first."""
    table = report_definitions
    select = (
        sa.select(table)
        .where(table.c.enabled.is_(True), table.c.next_run_at <= now)
        .order_by(table.c.next_run_at, table.c.definition_id)
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(select)).mappings().all()
    return [_definition(row) for row in rows]


async def set_next_run(
    engine: AsyncEngine, definition_id: str, was: datetime | None, next_run_at: datetime | None
) -> bool:
    """Move a definition's next run from `was` to `next_run_at`; False when it is no longer
    `was` (the definition changed or another process moved it), so the run is not made twice."""
    table = report_definitions
    same = table.c.next_run_at.is_(None) if was is None else table.c.next_run_at == was
    async with engine.begin() as connection:
        result = await connection.execute(
            table.update()
            .where(table.c.definition_id == definition_id, same)
            .values(next_run_at=next_run_at)
        )
    return result.rowcount == 1


def _instance(row: sa.RowMapping) -> ReportInstance:
    start, end, made = _utc(row["range_start"]), _utc(row["range_end"]), _utc(row["made_at"])
    assert start is not None and end is not None and made is not None
    return ReportInstance(
        id=row["instance_id"],
        definition_id=row["definition_id"],
        workspace_id=row["workspace_id"],
        range_start=start,
        range_end=end,
        trigger=row["trigger"],
        status=row["status"],
        error=row["error"],
        made_at=made,
        files=msgspec.convert(row["files"], tuple[ReportFile, ...]),
        deliveries=outcomes(row["deliveries"]),
    )


async def add_instance(
    engine: AsyncEngine,
    instance: ReportInstance,
    contents: Sequence[tuple[ReportFile, bytes]] = (),
) -> ReportInstance:
    """Store an instance and its files' bytes in one transaction."""
    stored = msgspec.structs.replace(instance, files=tuple(file for file, _ in contents))
    async with engine.begin() as connection:
        await connection.execute(
            report_instances.insert().values(
                instance_id=stored.id,
                definition_id=stored.definition_id,
                workspace_id=stored.workspace_id,
                range_start=stored.range_start,
                range_end=stored.range_end,
                trigger=stored.trigger,
                status=stored.status,
                error=stored.error,
                made_at=stored.made_at,
                files=msgspec.to_builtins(stored.files),
            )
        )
        for file, content in contents:
            await connection.execute(
                report_files.insert().values(
                    instance_id=stored.id,
                    format=file.format,
                    workspace_id=stored.workspace_id,
                    content_type=file.content_type,
                    size=file.size,
                    sha256=file.sha256,
                    content=content,
                )
            )
    return stored


async def list_instances(
    engine: AsyncEngine, definition_id: str, *, limit: int = 50, before: str | None = None
) -> list[ReportInstance]:
    """A definition's instances, newest first, `limit` of them from before the id `before`."""
    table = report_instances
    select = (
        sa.select(table)
        .where(table.c.definition_id == definition_id)
        .order_by(table.c.instance_id.desc())
        .limit(limit)
    )
    if before is not None:
        select = select.where(table.c.instance_id < before)
    async with engine.connect() as connection:
        rows = (await connection.execute(select)).mappings().all()
    return [_instance(row) for row in rows]


async def get_instance(engine: AsyncEngine, instance_id: str) -> ReportInstance | None:
    async with engine.connect() as connection:
        row = (
            (
                await connection.execute(
                    sa.select(report_instances).where(report_instances.c.instance_id == instance_id)
                )
            )
            .mappings()
            .first()
        )
    return None if row is None else _instance(row)


async def read_file(engine: AsyncEngine, instance_id: str, format_: str) -> FileContent | None:
    table = report_files
    async with engine.connect() as connection:
        row = (
            (
                await connection.execute(
                    sa.select(table).where(
                        table.c.instance_id == instance_id, table.c.format == format_
                    )
                )
            )
            .mappings()
            .first()
        )
    if row is None:
        return None
    return FileContent(
        workspace_id=row["workspace_id"],
        format=row["format"],
        content_type=row["content_type"],
        content=bytes(row["content"]),
    )


async def workspace_name(connection: AsyncConnection | AsyncEngine, workspace_id: str) -> str:
    select = sa.select(workspaces.c.name).where(workspaces.c.workspace_id == workspace_id)
    if isinstance(connection, AsyncEngine):
        async with connection.connect() as opened:
            return await workspace_name(opened, workspace_id)
    return (await connection.scalar(select)) or workspace_id

"""The `evaluators` table: evaluators made through the API (`origin = api`) and those the config
file declares (`origin = config`, written at start by `sync_config_evaluators`)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from telemetry.evaluation.definition import DefinitionError, EvaluatorDefinition, parse_definition
from telemetry.ids import uuid7_hex
from telemetry.schema import evaluation_queue, evaluators, workspaces
from telemetry.sync_lock import config_sync_lock

ORIGIN_API: Final = "api"
ORIGIN_CONFIG: Final = "config"


class EvaluatorNameTaken(DefinitionError):
    def __init__(self, name: str) -> None:
        super().__init__("name", f"an evaluator named '{name[:100]}' exists in this workspace")


@dataclass(frozen=True, slots=True)
class Evaluator:
    id: str
    workspace_id: str
    name: str
    origin: str
    enabled: bool
    definition: EvaluatorDefinition
    created_at: datetime
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "object": "evaluator",
            "id": self.id,
            "workspace_id": self.workspace_id,
            "name": self.name,
            "origin": self.origin,
            "enabled": self.enabled,
            **self.definition.to_json(),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class FileEvaluator:
    """An evaluator as the config file declares it; `workspace` is a slug."""

    path: str
    workspace: str
    name: str
    enabled: bool
    definition: EvaluatorDefinition


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _from_row(row: Any) -> Evaluator | None:
    try:
        definition = parse_definition(row.definition, stored=True)
    except DefinitionError:
        return None
    return Evaluator(
        id=row.evaluator_id,
        workspace_id=row.workspace_id,
        name=row.name,
        origin=row.origin,
        enabled=bool(row.enabled),
        definition=definition,
        created_at=_utc(row.created_at),
        updated_at=_utc(row.updated_at),
    )


async def load_evaluators(
    engine: AsyncEngine,
    *,
    workspace_ids: Collection[str] | None = None,
    enabled_only: bool = False,
) -> list[Evaluator]:
    """Evaluators of these workspaces (None: all), oldest first. A stored definition that no
    longer parses (edited by hand) is left out rather than breaking every reader."""
    query = sa.select(evaluators).order_by(evaluators.c.evaluator_id)
    if workspace_ids is not None:
        query = query.where(evaluators.c.workspace_id.in_(list(workspace_ids)))
    if enabled_only:
        query = query.where(evaluators.c.enabled.is_(True))
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    return [found for row in rows if (found := _from_row(row)) is not None]


async def get_evaluator(engine: AsyncEngine, evaluator_id: str) -> Evaluator | None:
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                sa.select(evaluators).where(evaluators.c.evaluator_id == evaluator_id)
            )
        ).first()
    return None if row is None else _from_row(row)


async def _name_taken(
    connection: AsyncConnection, workspace_id: str, name: str, except_id: str | None = None
) -> bool:
    query = sa.select(evaluators.c.evaluator_id).where(
        evaluators.c.workspace_id == workspace_id, evaluators.c.name == name
    )
    if except_id is not None:
        query = query.where(evaluators.c.evaluator_id != except_id)
    return (await connection.execute(query)).first() is not None


async def create_evaluator(
    engine: AsyncEngine,
    *,
    workspace_id: str,
    name: str,
    definition: EvaluatorDefinition,
    enabled: bool = True,
    origin: str = ORIGIN_API,
) -> Evaluator:
    now = datetime.now(UTC)
    evaluator = Evaluator(
        id=uuid7_hex(),
        workspace_id=workspace_id,
        name=name,
        origin=origin,
        enabled=enabled,
        definition=definition,
        created_at=now,
        updated_at=now,
    )
    async with engine.begin() as connection:
        if await _name_taken(connection, workspace_id, name):
            raise EvaluatorNameTaken(name)
        await connection.execute(
            evaluators.insert().values(
                evaluator_id=evaluator.id,
                workspace_id=workspace_id,
                name=name,
                origin=origin,
                enabled=enabled,
                definition=definition.to_json(),
                created_at=now,
                updated_at=now,
            )
        )
    return evaluator


async def update_evaluator(
    engine: AsyncEngine,
    current: Evaluator,
    *,
    name: str,
    definition: EvaluatorDefinition,
    enabled: bool,
) -> Evaluator:
    now = datetime.now(UTC)
    async with engine.begin() as connection:
        if await _name_taken(connection, current.workspace_id, name, current.id):
            raise EvaluatorNameTaken(name)
        await connection.execute(
            evaluators.update()
            .where(
                evaluators.c.evaluator_id == current.id,
                evaluators.c.workspace_id == current.workspace_id,
            )
            .values(name=name, enabled=enabled, definition=definition.to_json(), updated_at=now)
        )
    return Evaluator(
        id=current.id,
        workspace_id=current.workspace_id,
        name=name,
        origin=current.origin,
        enabled=enabled,
        definition=definition,
        created_at=current.created_at,
        updated_at=now,
    )


async def delete_evaluator(engine: AsyncEngine, current: Evaluator) -> None:
    """Delete the evaluator; its evaluations stay (they name it), its waiting queue rows go."""
    async with engine.begin() as connection:
        await connection.execute(
            evaluation_queue.delete().where(
                evaluation_queue.c.evaluator_id == current.id,
                evaluation_queue.c.workspace_id == current.workspace_id,
                evaluation_queue.c.status.in_(("pending", "running")),
            )
        )
        await connection.execute(
            evaluators.delete().where(
                evaluators.c.evaluator_id == current.id,
                evaluators.c.workspace_id == current.workspace_id,
            )
        )


class SyncError(ValueError):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


SYNC_LOCK_KEY: Final = 0x5374_6657_0021
"""The advisory lock of the evaluators' config sync: the workers of `steerway serve` and a
`steerway worker` all apply the file at start, one at a time."""


async def sync_config_evaluators(engine: AsyncEngine, declared: Sequence[FileEvaluator]) -> None:
    """Make the table's `origin = config` evaluators what the file declares: each is created or
    updated by (workspace, name), and those the file no longer declares are deleted. A name
    the API already uses in that workspace is an error naming the file's entry."""
    async with config_sync_lock(engine, "evaluators", SYNC_LOCK_KEY):
        await _sync(engine, declared)


async def _sync(engine: AsyncEngine, declared: Sequence[FileEvaluator]) -> None:
    now = datetime.now(UTC)
    async with engine.begin() as connection:
        found = await connection.execute(sa.select(workspaces.c.slug, workspaces.c.workspace_id))
        slugs = {slug: workspace_id for slug, workspace_id in found}
        stored = (await connection.execute(sa.select(evaluators))).all()
        by_key = {(row.workspace_id, row.name): row for row in stored}
        wanted: set[str] = set()
        for item in declared:
            workspace_id = slugs.get(item.workspace)
            if workspace_id is None:
                raise SyncError(f"{item.path}.workspace", f"no workspace '{item.workspace}'")
            row = by_key.get((workspace_id, item.name))
            if row is not None and row.origin != ORIGIN_CONFIG:
                raise SyncError(
                    f"{item.path}.name",
                    f"an evaluator named '{item.name}' made through the API exists in workspace "
                    f"'{item.workspace}'; rename one of them",
                )
            values = {
                "enabled": item.enabled,
                "definition": item.definition.to_json(),
                "updated_at": now,
            }
            if row is None:
                evaluator_id = uuid7_hex()
                await connection.execute(
                    evaluators.insert().values(
                        evaluator_id=evaluator_id,
                        workspace_id=workspace_id,
                        name=item.name,
                        origin=ORIGIN_CONFIG,
                        created_at=now,
                        **values,
                    )
                )
            else:
                evaluator_id = row.evaluator_id
                await connection.execute(
                    evaluators.update()
                    .where(evaluators.c.evaluator_id == evaluator_id)
                    .values(**values)
                )
            wanted.add(evaluator_id)
        gone = [
            row.evaluator_id
            for row in stored
            if row.origin == ORIGIN_CONFIG and row.evaluator_id not in wanted
        ]
        if gone:
            await connection.execute(evaluators.delete().where(evaluators.c.evaluator_id.in_(gone)))

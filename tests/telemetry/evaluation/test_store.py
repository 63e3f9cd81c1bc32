"""The evaluators' store on SQLite and Postgres: the config file's evaluators applied at start
(also by several processes at once), names unique per workspace, workspaces kept apart."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.evaluation.definition import parse_definition
from telemetry.evaluation.store import (
    EvaluatorNameTaken,
    FileEvaluator,
    SyncError,
    create_evaluator,
    load_evaluators,
    sync_config_evaluators,
)
from telemetry.schema import DEFAULT_WORKSPACE_ID, workspaces
from tests.telemetry.evaluation.helpers import rows

OTHER = "a1" * 16


def declared(name: str, rate: float = 0.5, workspace: str = "default") -> FileEvaluator:
    definition = parse_definition({"judge": "judge", "sampling_rate": rate})
    return FileEvaluator(f"evaluators[{name}]", workspace, name, True, definition)


async def test_the_file_is_applied_and_reapplied(engine: AsyncEngine) -> None:
    await asyncio.gather(
        *(sync_config_evaluators(engine, [declared("a"), declared("b")]) for _ in range(3))
    )
    first = {e.name: e for e in await load_evaluators(engine)}
    assert set(first) == {"a", "b"}
    assert {e.origin for e in first.values()} == {"config"}
    await sync_config_evaluators(engine, [declared("a", rate=0.1), declared("c")])
    second = {e.name: e for e in await load_evaluators(engine)}
    assert set(second) == {"a", "c"}
    assert second["a"].id == first["a"].id
    assert second["a"].definition.sampling_rate == 0.1


async def test_the_file_may_not_take_a_name_the_api_uses(engine: AsyncEngine) -> None:
    await create_evaluator(
        engine,
        workspace_id=DEFAULT_WORKSPACE_ID,
        name="a",
        definition=parse_definition({"judge": "judge"}),
    )
    with pytest.raises(SyncError, match=r"evaluators\[a\]\.name: an evaluator named 'a'"):
        await sync_config_evaluators(engine, [declared("a")])
    with pytest.raises(SyncError, match="no workspace 'nowhere'"):
        await sync_config_evaluators(engine, [declared("b", workspace="nowhere")])
    with pytest.raises(EvaluatorNameTaken):
        await create_evaluator(
            engine,
            workspace_id=DEFAULT_WORKSPACE_ID,
            name="a",
            definition=parse_definition({"judge": "judge"}),
        )
    assert len(await rows(engine, "SELECT name FROM evaluators")) == 1


async def test_lists_are_read_per_workspace(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            workspaces.insert().values(
                workspace_id=OTHER,
                slug="other",
                name="Other",
                settings={},
                created_at=datetime.now(UTC),
            )
        )
    for workspace_id in (DEFAULT_WORKSPACE_ID, OTHER):
        await create_evaluator(
            engine,
            workspace_id=workspace_id,
            name="same-name",
            definition=parse_definition({"judge": "judge"}),
        )
    mine = await load_evaluators(engine, workspace_ids=[DEFAULT_WORKSPACE_ID])
    assert [e.workspace_id for e in mine] == [DEFAULT_WORKSPACE_ID]
    assert len(await load_evaluators(engine)) == 2

"""Rows for the on-demand evaluation tests: workspaces, evaluators, queue rows, and requests
whose chat answers were stored or not."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.ids import uuid7_hex
from telemetry.records import TraceBundle
from telemetry.schema import evaluation_queue, evaluators, workspaces
from telemetry.writers import BatchWriter
from tests.telemetry.request_bundles import FAILED, Attempt, request

PROMPT = [{"role": "user", "content": "What is the capital of France?"}]
RESPONSE = {"role": "assistant", "content": "Paris."}


async def add_workspace(engine: AsyncEngine, slug: str) -> str:
    workspace_id = uuid7_hex()
    async with engine.begin() as conn:
        await conn.execute(
            sa.insert(workspaces).values(
                workspace_id=workspace_id,
                name=slug,
                slug=slug,
                settings={},
                created_at=datetime.now(UTC),
            )
        )
    return workspace_id


async def add_evaluator(
    engine: AsyncEngine,
    workspace_id: str,
    name: str,
    *,
    enabled: bool = True,
    judge: str = "judge",
    criteria: list[dict[str, Any]] | None = None,
) -> str:
    evaluator_id = uuid7_hex()
    now = datetime.now(UTC)
    definition = {
        "condition": None,
        "sampling_rate": 0.0,
        "judge": {"model": judge, "temperature": 0.0, "timeout_s": 30},
        "criteria": criteria if criteria is not None else [{"name": "accuracy"}],
        "daily_cap_usd": None,
        "max_attempts": 3,
    }
    async with engine.begin() as conn:
        await conn.execute(
            sa.insert(evaluators).values(
                evaluator_id=evaluator_id,
                workspace_id=workspace_id,
                name=name,
                origin="api",
                enabled=enabled,
                definition=definition,
                created_at=now,
                updated_at=now,
            )
        )
    return evaluator_id


def answered(
    workspace_id: str,
    *,
    stored: bool = True,
    model: str = "gpt-4o-mini",
    source: str = "proxy",
    first_failed: bool = False,
    at: float | None = None,
) -> TraceBundle:
    """A chat request answered on its last attempt, its content stored or not."""
    attempts = (FAILED, Attempt()) if first_failed else (Attempt(),)
    bundle = request(
        at=time.time() - 60 if at is None else at,
        workspace_id=workspace_id,
        model=model,
        source=source,
        attempts=attempts,
    )
    if stored:
        for interaction in bundle.interactions:
            if interaction.status == "ok":
                interaction.prompt = PROMPT
                interaction.response = RESPONSE
    return bundle


async def write(engine: AsyncEngine, *bundles: TraceBundle) -> None:
    await BatchWriter(engine).write(list(bundles))


async def queue_rows(engine: AsyncEngine, **where: Any) -> list[dict[str, Any]]:
    statement = sa.select(evaluation_queue).where(
        *(evaluation_queue.c[name] == value for name, value in where.items())
    )
    async with engine.connect() as conn:
        return [dict(row._mapping) for row in (await conn.execute(statement)).all()]

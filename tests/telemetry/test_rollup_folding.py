"""The hour and day roll-ups summed after the fact (Postgres): the gateway's folder sums them on
its own, a fold that fails keeps every mark, and SQLite keeps every grain as it writes."""

from __future__ import annotations

import asyncio
import time

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

import telemetry.rollup_folding as folding
from telemetry.db import create_engine
from telemetry.schema import usage_pending, usage_rollups
from telemetry.writers import BatchWriter
from tests.telemetry import MINUTE, make_bundle


async def _stored(engine: AsyncEngine) -> tuple[dict[str, int], int]:
    """Requests per grain as stored, and how many hours are marked."""
    async with engine.connect() as connection:
        per_grain = dict(
            (
                await connection.execute(
                    sa.select(
                        usage_rollups.c.grain, sa.func.sum(usage_rollups.c.requests)
                    ).group_by(usage_rollups.c.grain)
                )
            ).all()
        )
        marks = await connection.execute(sa.select(sa.func.count()).select_from(usage_pending))
        return {grain: int(n) for grain, n in per_grain.items()}, int(marks.scalar_one())


async def _write(engine: AsyncEngine, requests: int, at: float = MINUTE) -> None:
    bundles = [make_bundle(started_at=at + n, model="m") for n in range(requests)]
    await BatchWriter(engine).write(bundles)


async def test_the_gateways_folder_sums_the_marked_hours_on_its_own(engine: AsyncEngine) -> None:
    folder = folding.RollupFolder(engine, interval=0.05)
    await folder.start()
    try:
        await _write(engine, 5)
        await _write(engine, 2, at=MINUTE + 3600)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            per_grain, marks = await _stored(engine)
            if marks == 0 and per_grain.get("hour") == 7:
                break
            await asyncio.sleep(0.05)
    finally:
        await folder.close()
    assert await _stored(engine) == ({"minute": 7, "hour": 7, "day": 7}, 0)


async def test_a_fold_that_fails_keeps_every_mark(
    migrated_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(Postgres only: SQLite's writer keeps every grain itself and marks nothing.)"""
    engine = create_engine(migrated_postgres_url)
    try:
        await _a_fold_fails_then_succeeds(engine, monkeypatch)
    finally:
        await engine.dispose()


async def _a_fold_fails_then_succeeds(engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    await _write(engine, 4)
    monkeypatch.setattr(folding, "_DAYS_FROM_HOURS", "SELECT no_such_column FROM usage_rollups")
    with pytest.raises(Exception, match="no_such_column"):
        await folding.fold_pending(engine)
    assert await _stored(engine) == ({"minute": 4}, 1)  # the hour's sum was rolled back too
    monkeypatch.undo()
    assert len(await folding.fold_pending(engine)) == 1
    assert await _stored(engine) == ({"minute": 4, "hour": 4, "day": 4}, 0)


async def test_sqlite_keeps_every_grain_as_it_writes(engine: AsyncEngine) -> None:
    await _write(engine, 3)
    per_grain, marks = await _stored(engine)
    if engine.dialect.name == "postgresql":
        assert per_grain == {"minute": 3} and marks == 1
    else:
        assert per_grain == {"minute": 3, "hour": 3, "day": 3} and marks == 0

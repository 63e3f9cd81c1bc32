"""Migration 0019 on a database that holds requests: on Postgres the trace tables become day
partitions with every row, index and key carried over, and downgrade gives the plain tables
back with the same rows; on SQLite it changes nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.engine import Connection

import migrations
from telemetry.db import create_engine
from telemetry.writers import BatchWriter
from tests.migrations.test_migrations import _with_connection
from tests.telemetry.requests_at import request_at

TABLES = {
    "traces": "trace_id",
    "spans": "span_id",
    "decisions": "decision_id",
    "ai_interactions": "interaction_id",
    "guardrail_violations": "violation_id",
}
NOT_TIME_ORDERED = "ab" * 16
"""A trace id that is not a UUIDv7 (no day to file it under): it goes to the default partition."""


async def _fill(url: str) -> list[str]:
    """Requests over the last twelve days (several a day) and one whose trace id is not
    time-ordered, written as the gateway writes them; returns the trace ids.

    The writer writes today's schema, so a test fills the database at the head revision and
    goes down to the revision it starts from."""
    now = datetime.now(UTC)
    bundles = [request_at(now - timedelta(days=n // 3, hours=n)) for n in range(36)]
    odd = request_at(now - timedelta(days=2))
    odd = msgspec.structs.replace(
        odd,
        trace=msgspec.structs.replace(odd.trace, trace_id=NOT_TIME_ORDERED),
        spans=[msgspec.structs.replace(s, trace_id=NOT_TIME_ORDERED) for s in odd.spans],
        decisions=[msgspec.structs.replace(d, trace_id=NOT_TIME_ORDERED) for d in odd.decisions],
        interactions=[
            msgspec.structs.replace(i, trace_id=NOT_TIME_ORDERED) for i in odd.interactions
        ],
        violations=[msgspec.structs.replace(v, trace_id=NOT_TIME_ORDERED) for v in odd.violations],
    )
    bundles.append(odd)
    engine = create_engine(url)
    try:
        await BatchWriter(engine).write(bundles)
    finally:
        await engine.dispose()
    return [bundle.trace.trace_id for bundle in bundles]


async def _snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every trace table, in id order."""
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return {
                table: [
                    tuple(row)
                    for row in await connection.execute(
                        sa.text(f"SELECT * FROM {table} ORDER BY trace_id, {own}")
                    )
                ]
                for table, own in TABLES.items()
            }
    finally:
        await engine.dispose()


def _shape(connection: Connection) -> dict[str, Any]:
    inspector = sa.inspect(connection)
    return {
        table: (
            inspector.get_pk_constraint(table)["constrained_columns"],
            sorted(index["name"] for index in inspector.get_indexes(table)),
        )
        for table in TABLES
    }


async def _rows_by_partition(url: str, table: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                sa.text(f"SELECT tableoid::regclass::text, count(*) FROM {table} GROUP BY 1")
            )
            return {name: int(count) for name, count in rows.all()}
    finally:
        await engine.dispose()


async def test_postgres_rows_indexes_and_keys_survive_up_and_down(postgres_url: str) -> None:
    await asyncio.to_thread(migrations.upgrade, postgres_url)
    trace_ids = await _fill(postgres_url)
    await asyncio.to_thread(migrations.downgrade, postgres_url, "0018")
    before = await _snapshot(postgres_url)
    shape_before = await _with_connection(postgres_url, _shape)
    assert len(before["traces"]) == 37 and len(before["spans"]) == 74

    await asyncio.to_thread(migrations.upgrade, postgres_url, "0019")

    assert await _snapshot(postgres_url) == before
    shape = await _with_connection(postgres_url, _shape)
    for table, own in TABLES.items():
        key = ["trace_id"] if own == "trace_id" else ["trace_id", own]
        assert shape[table] == (key, shape_before[table][1]), table
    placed = await _rows_by_partition(postgres_url, "spans")
    assert placed.pop("spans_default") == 2  # the two spans of the odd trace
    days = {datetime.fromtimestamp(int(t[:12], 16) / 1000, UTC).date() for t in trace_ids[:-1]}
    assert set(placed) == {f"spans_p{day:%Y%m%d}" for day in days}
    assert sum(placed.values()) == 72

    await asyncio.to_thread(migrations.downgrade, postgres_url, "0018")

    assert await _snapshot(postgres_url) == before
    assert await _with_connection(postgres_url, _shape) == shape_before
    assert await _rows_by_partition(postgres_url, "spans") == {"spans": 74}


async def test_sqlite_is_left_as_it_was(sqlite_url: str) -> None:
    await asyncio.to_thread(migrations.upgrade, sqlite_url)
    await _fill(sqlite_url)
    await asyncio.to_thread(migrations.downgrade, sqlite_url, "0018")
    before = await _snapshot(sqlite_url)
    shape_before = await _with_connection(sqlite_url, _shape)

    await asyncio.to_thread(migrations.upgrade, sqlite_url, "0019")
    assert await _snapshot(sqlite_url) == before
    assert await _with_connection(sqlite_url, _shape) == shape_before

    await asyncio.to_thread(migrations.downgrade, sqlite_url, "0018")
    assert await _snapshot(sqlite_url) == before

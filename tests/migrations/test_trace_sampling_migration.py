"""Migration 0020 adds `traces.sampled_out`: existing traces read as kept whole, and the
downgrade takes the column away again, on SQLite and Postgres."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

import migrations
from telemetry.db import create_engine
from tests.migrations.test_migrations import _differences, _inspect, _with_connection

_OLD_TRACE = sa.text(
    "INSERT INTO traces (trace_id, workspace_id, request_id, route, method, started_at, "
    "ended_at, duration_ms, status, http_status, stream, tags, metadata, features) VALUES "
    "('0123456789abcdef0123456789abcdef', 'default', 'req-1', '/v1/chat/completions', 'POST', "
    "'2026-12-01 10:00:00', '2026-12-01 10:00:01', 1000, 'ok', 200, false, '[]', '{}', '{}')"
)


async def _run(url: str, statement: sa.TextClause) -> list[sa.Row[object]]:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            result = await connection.execute(statement)
            return list(result.all()) if result.returns_rows else []
    finally:
        await engine.dispose()


async def test_0020_adds_sampled_out_false_for_existing_traces_and_undoes_it(
    database_url: str,
) -> None:
    await asyncio.to_thread(migrations.upgrade, database_url, "0019")
    await _run(database_url, _OLD_TRACE)
    shape = await _with_connection(database_url, _inspect)
    assert "sampled_out" not in shape["columns"]["traces"]

    await asyncio.to_thread(migrations.upgrade, database_url)
    rows = await _run(database_url, sa.text("SELECT trace_id, sampled_out FROM traces"))
    assert [(trace_id, bool(sampled)) for trace_id, sampled in rows] == [
        ("0123456789abcdef0123456789abcdef", False)
    ]
    assert await _with_connection(database_url, _differences) == []

    await asyncio.to_thread(migrations.downgrade, database_url, "0019")
    shape = await _with_connection(database_url, _inspect)
    assert "sampled_out" not in shape["columns"]["traces"]
    rows = await _run(database_url, sa.text("SELECT trace_id FROM traces"))
    assert [row[0] for row in rows] == ["0123456789abcdef0123456789abcdef"]

"""Spans are keyed by (trace_id, span_id) on both backends (migration 0026 on SQLite), their
`trace_id` index is gone, and the SQLite rebuild keeps every row."""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

import migrations
from tests.migrations.test_migrations import _with_connection

BEFORE = "0025"
COLUMNS = (
    "span_id, trace_id, workspace_id, parent_span_id, name, component, started_at, ended_at, "
    "duration_ms, status, attributes, events"
)
ROWS = [
    ("aaaa000000000001", "0190aaaa00000000000000000000000a", None, "gateway.request", 12.5),
    ("aaaa000000000002", "0190aaaa00000000000000000000000a", "aaaa000000000001", "auth", 0.25),
    ("bbbb000000000001", "0190bbbb00000000000000000000000b", None, "gateway.request", 7.75),
]


def _spans_shape(connection: Connection) -> dict[str, Any]:
    inspector = sa.inspect(connection)
    rows = connection.execute(sa.text(f"SELECT {COLUMNS} FROM spans ORDER BY span_id")).all()
    return {
        "key": inspector.get_pk_constraint("spans")["constrained_columns"],
        "indexes": {
            index["name"]: index["column_names"] for index in inspector.get_indexes("spans")
        },
        "rows": [tuple(row) for row in rows],
    }


def _insert_spans(connection: Connection) -> None:
    for span_id, trace_id, parent, name, duration in ROWS:
        connection.execute(
            sa.text(
                f"INSERT INTO spans ({COLUMNS}) VALUES (:span_id, :trace_id, 'ws', :parent, "
                ":name, 'gateway', '2026-12-08 01:02:03.000004', '2026-12-08 01:02:03.500000', "
                ":duration, 'ok', '{\"http.status_code\": 200}', '[]')"
            ),
            {
                "span_id": span_id,
                "trace_id": trace_id,
                "parent": parent,
                "name": name,
                "duration": duration,
            },
        )
    connection.commit()


async def test_spans_are_keyed_by_their_trace_first(database_url: str) -> None:
    await asyncio.to_thread(migrations.upgrade, database_url)
    shape = await _with_connection(database_url, _spans_shape)
    assert shape["key"] == ["trace_id", "span_id"]
    # The key's index serves reads by trace: no index on `trace_id` alone.
    assert shape["indexes"] == {"ix_spans_started_at": ["started_at"]}


async def test_the_sqlite_rebuild_keeps_every_span_and_undoes_cleanly(sqlite_url: str) -> None:
    await asyncio.to_thread(migrations.upgrade, sqlite_url, BEFORE)
    await _with_connection(sqlite_url, _insert_spans)
    before = await _with_connection(sqlite_url, _spans_shape)
    assert before["key"] == ["span_id"]
    assert len(before["rows"]) == len(ROWS)

    await asyncio.to_thread(migrations.upgrade, sqlite_url)
    after = await _with_connection(sqlite_url, _spans_shape)
    assert after["key"] == ["trace_id", "span_id"]
    assert after["rows"] == before["rows"]
    assert before["indexes"] == {
        "ix_spans_started_at": ["started_at"],
        "ix_spans_trace_id": ["trace_id"],
    }
    assert after["indexes"] == {"ix_spans_started_at": ["started_at"]}

    await asyncio.to_thread(migrations.downgrade, sqlite_url, BEFORE)
    undone = await _with_connection(sqlite_url, _spans_shape)
    assert undone == before

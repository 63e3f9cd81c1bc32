"""Rows removed a batch at a time, each batch its own short transaction, so the recorder's
writes are never held up for long (on SQLite, whose one writer waits for each)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine


def moment(engine: AsyncEngine, value: datetime) -> datetime | str:
    """`value` as a plain SQL parameter compares with the stored times: on SQLite the text
    SQLAlchemy stores there (naive UTC, microseconds)."""
    if engine.dialect.name == "postgresql":
        return value
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _row_address(engine: AsyncEngine) -> str:
    """The column that names one row of a plain table: SQLite's rowid, Postgres' ctid."""
    return "ctid" if engine.dialect.name == "postgresql" else "rowid"


async def delete_in_batches(
    engine: AsyncEngine, table: str, where: str, parameters: dict[str, Any], batch_size: int
) -> int:
    """Delete the rows of `table` (a plain table or a partition, not a partitioned parent)
    that meet `where`, `batch_size` at a time; returns how many went."""
    address = _row_address(engine)
    if address == "ctid":
        sql = (
            f"DELETE FROM {table} WHERE ctid = ANY(ARRAY("
            f"SELECT ctid FROM {table} WHERE {where} LIMIT :batch_size))"
        )
    else:
        sql = (
            f"DELETE FROM {table} WHERE rowid IN ("
            f"SELECT rowid FROM {table} WHERE {where} LIMIT :batch_size)"
        )
    return await _repeat(engine, sql, {**parameters, "batch_size": batch_size}, batch_size)


async def clear_content_in_batches(engine: AsyncEngine, before: datetime, batch_size: int) -> int:
    """Set the prompt and answer of interactions started before `before` to null, the rest of
    each row kept; returns how many rows were cleared."""
    # ai_interactions is partitioned on Postgres, where a ctid names a row of one partition
    # only: its key names the row there.
    postgres = engine.dialect.name == "postgresql"
    key = "(trace_id, interaction_id)" if postgres else "rowid"
    picked = "trace_id, interaction_id" if postgres else "rowid"
    sql = (
        "UPDATE ai_interactions SET prompt = NULL, response = NULL "
        f"WHERE {key} IN (SELECT {picked} FROM ai_interactions WHERE started_at < :before "
        "AND (prompt IS NOT NULL OR response IS NOT NULL) LIMIT :batch_size)"
    )
    return await _repeat(
        engine, sql, {"before": moment(engine, before), "batch_size": batch_size}, batch_size
    )


async def _repeat(
    engine: AsyncEngine, sql: str, parameters: dict[str, Any], batch_size: int
) -> int:
    statement = sa.text(sql)
    total = 0
    while True:
        async with engine.begin() as connection:
            done = int((await connection.execute(statement, parameters)).rowcount or 0)
        total += done
        if done < batch_size:
            return total

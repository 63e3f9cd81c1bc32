"""The bulk loader on SQLite and Postgres: rows appended in the caller's transaction, roll-ups
and breakdowns added to what is stored, a taken key refused, the connection left as it was
found."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from telemetry.bulk_load import BulkLoader, RowsConflict
from telemetry.db import create_engine
from telemetry.rollups import SUM_COLUMNS, Aggregate
from telemetry.rows import SPAN_COLUMNS
from telemetry.schema import ROLLUP_BUCKET_COLUMNS, spans, usage_breakdowns, usage_rollups

MINUTE = datetime(2026, 11, 27, 12, 30, tzinfo=UTC)


def span(span_id: str) -> tuple[Any, ...]:
    return (
        span_id, "t" * 32, "w" * 32, None, "auth", "gateway", MINUTE, MINUTE, 0.5, "ok",
        {"key.id": "k"}, [],
    )  # fmt: skip


def rollup(requests: int, cost: str) -> dict[str, Any]:
    sums: dict[str, Any] = dict.fromkeys(SUM_COLUMNS, 0)
    sums.update(requests=requests, cost_usd=Decimal(cost), latency_ms_sum=12.5)
    sums[ROLLUP_BUCKET_COLUMNS[3]] = requests
    return {
        "grain": "minute",
        "bucket_start": MINUTE,
        "workspace_id": "w" * 32,
        "api_key_id": "k",
        "source": "proxy",
        "provider": "openai",
        "model": "gpt-4o",
        "served_model": "gpt-4o-2024-08-06",
        "deployment": "primary",
        "status": "ok",
        "error_type": "",
        "cache_hit": False,
        **sums,
    }


def breakdown(name: str, events: int, cost: str) -> dict[str, Any]:
    return {
        "grain": "hour",
        "bucket_start": MINUTE.replace(minute=0),
        "workspace_id": "w" * 32,
        "api_key_id": "k",
        "kind": "tag",
        "name": name,
        "detail": "",
        "events": events,
        "errors": 1,
        "cost_usd": Decimal(cost),
        "tokens": 10 * events,
    }


async def test_rows_and_rollups_land_in_one_transaction(migrated_database_url: str) -> None:
    engine = create_engine(migrated_database_url)
    try:
        async with engine.begin() as connection:
            loader = BulkLoader(connection.dialect)
            first = loader.prepare_rollups(
                Aggregate(
                    rollups=[rollup(2, "0.0000000001")],
                    breakdowns=[breakdown("prod", 2, "0.5"), breakdown("test", 1, "0.25")],
                )
            )
            assert [(rows.table, len(rows.rows)) for rows in first] == [
                ("usage_rollups", 1),
                ("usage_breakdowns", 2),
            ]
            await loader.write(
                connection,
                [loader.prepare("spans", SPAN_COLUMNS, [span("a" * 16), span("b" * 16)]), *first],
            )
            second = Aggregate(rollups=[rollup(3, "0.25")], breakdowns=[breakdown("prod", 3, "1")])
            await loader.write(connection, loader.prepare_rollups(second))
            await loader.write(connection, loader.prepare_rollups(Aggregate([], [])))
            await loader.finish(connection)
        async with engine.connect() as connection:
            stored = (await connection.execute(sa.select(spans).order_by(spans.c.span_id))).all()
            sums = (await connection.execute(sa.select(usage_rollups))).one()
            tags = (
                await connection.execute(
                    sa.select(usage_breakdowns).order_by(usage_breakdowns.c.name)
                )
            ).all()
        assert [(s.span_id, s.attributes, s.events) for s in stored] == [
            ("a" * 16, {"key.id": "k"}, []),
            ("b" * 16, {"key.id": "k"}, []),
        ]
        assert stored[0].started_at.replace(tzinfo=UTC) == MINUTE
        assert (sums.grain, sums.served_model, sums.cache_hit) == (
            "minute",
            "gpt-4o-2024-08-06",
            False,
        )
        assert (sums.requests, sums.cost_usd, sums.latency_ms_sum) == (
            5, Decimal("0.2500000001"), 25.0,
        )  # fmt: skip
        assert getattr(sums, ROLLUP_BUCKET_COLUMNS[3]) == 5
        assert [(t.name, t.events, t.errors, t.cost_usd, t.tokens) for t in tags] == [
            ("prod", 5, 2, Decimal("1.5"), 50),
            ("test", 1, 1, Decimal("0.25"), 10),
        ]
        assert tags[0].bucket_start.replace(tzinfo=UTC) == MINUTE.replace(minute=0)
    finally:
        await engine.dispose()


async def test_a_taken_key_is_refused_and_nothing_is_kept(migrated_database_url: str) -> None:
    engine = create_engine(migrated_database_url)
    try:
        with pytest.raises(RowsConflict, match="spans"):
            async with engine.begin() as connection:
                loader = BulkLoader(connection.dialect)
                rows = loader.prepare("spans", SPAN_COLUMNS, [span("c" * 16)])
                await loader.write(connection, [rows])
                await loader.write(connection, [rows])
        async with engine.connect() as connection:
            count = (
                await connection.execute(sa.select(sa.func.count()).select_from(spans))
            ).scalar()
        assert count == 0
    finally:
        await engine.dispose()


async def test_sqlite_gets_its_page_cache_back(migrated_sqlite_url: str) -> None:
    engine = create_engine(migrated_sqlite_url)
    try:
        async with engine.begin() as connection:
            before = (await connection.exec_driver_sql("PRAGMA cache_size")).scalar()
            loader = BulkLoader(connection.dialect)
            await loader.write(
                connection, [loader.prepare("spans", SPAN_COLUMNS, [span("d" * 16)])]
            )
            during = (await connection.exec_driver_sql("PRAGMA cache_size")).scalar()
            await loader.finish(connection)
            after = (await connection.exec_driver_sql("PRAGMA cache_size")).scalar()
        assert during != before and after == before
    finally:
        await engine.dispose()

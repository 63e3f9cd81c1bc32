"""Retention on both backends: requests planted at known ages, the job run with a fixed "now",
and per kind what is kept and what goes; on Postgres through the day partitions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.db import create_engine
from telemetry.job_lock import job_lock
from telemetry.queries import trace_detail
from telemetry.retention.job import LOCK_KEY, LOCK_NAME, RetentionRound, run_retention
from telemetry.retention.partitions import PARTITIONED_TABLES, id_bound
from telemetry.retention.policy import RetentionConfig
from telemetry.rollup_folding import fold_pending
from telemetry.writers import BatchWriter
from tests.telemetry import fetch
from tests.telemetry.requests_at import id_at, request_at

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
AGES_DAYS = (1, 10, 40)
"""Each planted request's age: inside every window below, inside some, outside all."""
POLICY = RetentionConfig(
    traces=30,
    spans=5,
    interactions=20,
    content=2,
    rollup_minute=5,
    rollup_hour=20,
)
TRACE_TABLES = ("traces", "spans", "decisions", "ai_interactions", "guardrail_violations")


async def _plant(engine: AsyncEngine) -> dict[int, str]:
    bundles = {days: request_at(NOW - timedelta(days=days)) for days in AGES_DAYS}
    await BatchWriter(engine).write(list(bundles.values()))
    await fold_pending(engine)
    return {days: bundle.trace.trace_id for days, bundle in bundles.items()}


@pytest.fixture
async def planted(engine: AsyncEngine) -> dict[int, str]:
    """The trace id of each planted age, written through the recorder's writer."""
    return await _plant(engine)


@pytest.fixture
async def postgres(migrated_postgres_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(migrated_postgres_url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def _trace_ids(engine: AsyncEngine, table: str) -> set[str]:
    return {row[0] for row in await fetch(engine, f"SELECT trace_id FROM {table}")}


async def _ages_left(engine: AsyncEngine, planted: dict[int, str], table: str) -> set[int]:
    left = await _trace_ids(engine, table)
    return {days for days, trace_id in planted.items() if trace_id in left}


async def _partitions(engine: AsyncEngine, table: str) -> set[str]:
    rows = await fetch(
        engine,
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = :table",
        table=table,
    )
    return {row[0] for row in rows}


def _removed(kind: str) -> float:
    return REGISTRY.get_sample_value("steerway_retention_rows_removed_total", {"kind": kind}) or 0.0


def _dropped(table: str) -> float:
    value = REGISTRY.get_sample_value(
        "steerway_retention_partitions_dropped_total", {"table": table}
    )
    return value or 0.0


async def test_each_kind_keeps_its_window_and_loses_what_is_older(
    engine: AsyncEngine, planted: dict[int, str]
) -> None:
    spans_before = _removed("spans")

    done = await run_retention(engine, POLICY, now=NOW)

    assert done is not None
    assert await _ages_left(engine, planted, "traces") == {1, 10}
    assert await _ages_left(engine, planted, "guardrail_violations") == {1, 10}
    assert await _ages_left(engine, planted, "decisions") == {1, 10}  # follows traces
    assert await _ages_left(engine, planted, "ai_interactions") == {1, 10}
    assert await _ages_left(engine, planted, "spans") == {1}
    assert done.removed["traces"] == 1
    assert done.removed["violations"] == 1
    assert done.removed["spans"] == 4  # two spans each of the 10- and 40-day-old requests
    assert _removed("spans") - spans_before == 4
    prompts = {
        row[0]: row[1]
        for row in await fetch(engine, "SELECT trace_id, prompt FROM ai_interactions")
    }
    assert prompts[planted[1]] is not None  # one day old: inside `content: 2`
    assert prompts[planted[10]] is None
    assert done.removed["content"] == 1


async def test_a_trace_whose_spans_expired_still_opens_with_its_other_rows(
    engine: AsyncEngine, planted: dict[int, str]
) -> None:
    await run_retention(engine, POLICY, now=NOW)

    detail = await trace_detail(engine, planted[10])

    assert detail is not None
    assert detail.trace["trace_id"] == planted[10]
    assert detail.spans == []
    assert [d["trace_id"] for d in detail.decisions] == [planted[10]]
    assert len(detail.interactions) == 1 and detail.interactions[0]["prompt"] is None
    assert await trace_detail(engine, planted[40]) is None


async def test_roll_ups_go_by_level_and_bucket(
    engine: AsyncEngine, planted: dict[int, str]
) -> None:
    async def ages(table: str, grain: str) -> set[int]:
        rows = await fetch(engine, f"SELECT bucket_start FROM {table} WHERE grain = :g", g=grain)
        starts = {
            row[0] if isinstance(row[0], datetime) else datetime.fromisoformat(row[0])
            for row in rows
        }
        return {(NOW - start.replace(tzinfo=UTC)).days for start in starts}

    assert await ages("usage_rollups", "minute") == {1, 10, 40}

    done = await run_retention(engine, POLICY, now=NOW)

    assert done is not None
    assert await ages("usage_rollups", "minute") == {1}
    assert await ages("usage_rollups", "hour") == {1, 10}
    assert await ages("usage_breakdowns", "hour") == {1, 10}
    assert len(await ages("usage_rollups", "day")) == 3  # kept forever
    assert done.removed["rollup_minute"] == 2


async def test_nothing_set_removes_nothing(engine: AsyncEngine, planted: dict[int, str]) -> None:
    done = await run_retention(engine, RetentionConfig(), now=NOW + timedelta(days=3650))

    assert done is not None and not done.removed and not done.dropped
    for table in TRACE_TABLES:
        assert await _ages_left(engine, planted, table) == set(AGES_DAYS)


async def test_a_round_held_elsewhere_is_skipped_and_two_rounds_remove_once(
    migrated_database_url: str, engine: AsyncEngine, planted: dict[int, str]
) -> None:
    other = create_engine(migrated_database_url)
    try:
        async with job_lock(other, key=LOCK_KEY, name=LOCK_NAME) as held:
            assert held
            assert await run_retention(engine, POLICY, now=NOW) is None
        assert await _ages_left(engine, planted, "traces") == set(AGES_DAYS)

        rounds = await asyncio.gather(
            run_retention(engine, POLICY, now=NOW), run_retention(other, POLICY, now=NOW)
        )
    finally:
        await other.dispose()
    ran: list[RetentionRound] = [done for done in rounds if done is not None]
    assert ran
    assert sum(done.removed["traces"] for done in ran) == 1
    assert sum(done.removed["spans"] for done in ran) == 4
    assert await _ages_left(engine, planted, "traces") == {1, 10}


async def _rows_by_partition(engine: AsyncEngine, table: str) -> dict[str, int]:
    rows = await fetch(engine, f"SELECT tableoid::regclass::text, count(*) FROM {table} GROUP BY 1")
    return {name: int(n) for name, n in rows}


async def test_postgres_rows_wait_in_the_default_partition_and_move_to_their_day(
    postgres: AsyncEngine,
) -> None:
    engine = postgres
    await _plant(engine)
    # A new database has only its default partitions: the rows wait there.
    assert await _rows_by_partition(engine, "traces") == {"traces_default": 3}

    done = await run_retention(engine, RetentionConfig(), now=NOW)

    assert done is not None
    assert done.moved["traces"] == 3 and done.moved["spans"] == 6
    days = [(NOW - timedelta(days=age)).strftime("%Y%m%d") for age in AGES_DAYS]
    for table in PARTITIONED_TABLES:
        partitions = await _partitions(engine, table.name)
        assert {f"{table.name}_p{day}" for day in days} <= partitions
        ahead = {
            f"{table.name}_p{(NOW + timedelta(days=n)):%Y%m%d}"
            for n in range(RetentionConfig().partitions_ahead + 1)
        }
        assert ahead <= partitions
        by_partition = await _rows_by_partition(engine, table.name)
        assert f"{table.name}_default" not in by_partition
    assert await _rows_by_partition(engine, "traces") == {f"traces_p{day}": 1 for day in days}

    # The writer writes through the day partitions now there are some.
    fresh = request_at(NOW - timedelta(hours=2))
    await BatchWriter(engine).write([fresh])
    assert (await _rows_by_partition(engine, "spans"))[f"spans_p{NOW:%Y%m%d}"] == 2

    # And expiry drops whole partitions: the 40-day-old day of every table, the 10-day-old
    # day of spans.
    dropped_before = _dropped("spans")
    done = await run_retention(engine, POLICY, now=NOW)
    assert _dropped("spans") - dropped_before == 2
    assert done is not None
    assert f"traces_p{days[2]}" not in await _partitions(engine, "traces")
    assert f"traces_p{days[1]}" in await _partitions(engine, "traces")
    assert f"spans_p{days[1]}" not in await _partitions(engine, "spans")
    assert done.dropped["traces"] == 1 and done.dropped["spans"] == 2
    assert done.removed["spans"] == 4


async def test_postgres_expired_rows_in_the_default_partition_are_deleted_not_moved(
    postgres: AsyncEngine,
) -> None:
    engine = postgres
    planted = await _plant(engine)

    done = await run_retention(engine, POLICY, now=NOW)

    assert done is not None
    assert done.moved["traces"] == 2  # the 1- and 10-day-old traces, the 40-day-old deleted
    assert done.removed["traces"] == 1
    assert f"traces_p{NOW - timedelta(days=40):%Y%m%d}" not in await _partitions(engine, "traces")
    assert await _ages_left(engine, planted, "traces") == {1, 10}


def test_a_day_partition_holds_exactly_the_ids_minted_that_day() -> None:
    day = NOW.date()
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    assert id_bound(day) <= id_at(start) < id_bound(day + timedelta(days=1))
    assert id_at(start - timedelta(milliseconds=1)) < id_bound(day)
    end = start + timedelta(days=1) - timedelta(milliseconds=1)
    assert id_at(end) < id_bound(day + timedelta(days=1))


async def test_postgres_writes_during_a_move_out_of_the_default_partition_all_land(
    postgres: AsyncEngine,
) -> None:
    """A writer that keeps writing a day's requests while the job makes that day's partition
    and moves its rows there: every batch is written (none is refused by the default
    partition's new bound) and every row is in the day's partition afterwards."""
    engine = postgres
    day = NOW - timedelta(days=1)
    await BatchWriter(engine).write([request_at(day + timedelta(seconds=n)) for n in range(200)])
    writing = asyncio.Event()
    written = 200

    async def keep_writing() -> None:
        nonlocal written
        writer = BatchWriter(engine)
        for round_number in range(60):
            batch = [
                request_at(day + timedelta(minutes=5, seconds=round_number * 20 + n))
                for n in range(20)
            ]
            await writer.write(batch)
            written += len(batch)
            writing.set()

    writer_task = asyncio.create_task(keep_writing())
    await writing.wait()
    rounds = [await run_retention(engine, RetentionConfig(), now=NOW) for _ in range(3)]
    await writer_task

    assert sum(done.moved["traces"] for done in rounds if done is not None) >= 200
    by_partition = await _rows_by_partition(engine, "traces")
    assert by_partition == {f"traces_p{day:%Y%m%d}": written}

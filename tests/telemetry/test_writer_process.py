"""The recorder's writes from a child process (`telemetry.writer: process`), on both backends:
the same rows as the serving process would write, refusals and outages in the recorder's terms,
a child that dies or hangs replaced."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from server.telemetry_writer import child_batch_writer
from telemetry.db import create_engine
from telemetry.recorder import Recorder
from telemetry.records import TraceBundle
from telemetry.schema import ai_interactions, decisions, spans, traces
from telemetry.writer_process import ProcessWriter, WriterRowProblem, WriterSpec, WriterUnavailable
from telemetry.writers import BatchWriter
from tests.conftest import (
    POSTGRES_URL,
    Dropper,
    _create_postgres,
    _with_database,
    copy_sqlite,
)
from tests.telemetry import MINUTE, RecordingObserver, count, fetch_table, make_bundle

WRITTEN_TABLES = (traces, spans, decisions, ai_interactions)


def plain_writer(engine: AsyncEngine) -> BatchWriter:
    return BatchWriter(engine)


def broken_writer(engine: AsyncEngine) -> BatchWriter:
    raise RuntimeError("no writer here")


def writer_for(url: str) -> ProcessWriter:
    return ProcessWriter(WriterSpec(url, plain_writer))


@pytest.fixture
def twin_url(
    migrated_database_url: str,
    sqlite_template: Path,
    postgres_template: str,
    dropper: Dropper,
    tmp_path: Path,
) -> Iterator[str]:
    """A second fresh database on the same backend as `migrated_database_url`."""
    if migrated_database_url.startswith("sqlite"):
        path = tmp_path / "twin.db"
        copy_sqlite(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    name = _create_postgres("steerway_test", postgres_template)
    try:
        yield _with_database(POSTGRES_URL, name)
    finally:
        dropper.drop(name)


@pytest.fixture
async def process_writer(migrated_database_url: str) -> AsyncIterator[ProcessWriter]:
    writer = writer_for(migrated_database_url)
    await writer.start()
    try:
        yield writer
    finally:
        await writer.close()


def varied_bundles() -> list[TraceBundle]:
    """Prices to the last digit, an unpriced call, an error, text with a NUL and a lone
    surrogate (stored escaped), unicode tags and nested metadata."""
    bundles = [
        make_bundle(cost=Decimal("0.0000123456"), latency_ms=250.0),
        make_bundle(cost=None, started_at=MINUTE + 10.25),
        make_bundle(status="error", cost=Decimal("3.1400000001"), api_key_id=None),
        make_bundle(cache_hit=True, cached_tokens=4, model="claude-x", provider="anthropic"),
    ]
    odd = make_bundle(cost=Decimal("0.5"))
    odd.interactions[0].prompt = [{"role": "user", "content": "nul\x00 and \ud83d here"}]
    odd.interactions[0].response = {"content": "ok \u00e9\u4e2d"}
    bundles.append(odd)
    return bundles


async def table_rows(engine: AsyncEngine) -> dict[str, list[dict[str, object]]]:
    found = {}
    for table in WRITTEN_TABLES:
        rows = [dict(row) for row in await fetch_table(engine, table)]
        found[table.name] = sorted(rows, key=repr)
    return found


async def test_rows_equal_those_the_serving_process_writes(
    process_writer: ProcessWriter, migrated_database_url: str, twin_url: str
) -> None:
    bundles = varied_bundles()
    counts = await process_writer.write(bundles)

    twin = create_engine(twin_url)
    via_process = create_engine(migrated_database_url)
    try:
        assert counts == await BatchWriter(twin).write(bundles)
        assert counts["traces"] == len(bundles)
        written = await table_rows(via_process)
        assert written == await table_rows(twin)
        assert {row["cost_usd"] for row in written["ai_interactions"]} >= {
            Decimal("0.0000123456"),
            Decimal("3.1400000001"),
        }
        escaped = [row for row in written["traces"] if row["escaped"]]
        assert len(escaped) == 1
    finally:
        await twin.dispose()
        await via_process.dispose()


async def test_the_serving_process_is_done_with_a_batch_once_it_is_sent(
    process_writer: ProcessWriter,
) -> None:
    shares: list[float] = []
    counts = await process_writer.write([make_bundle(), make_bundle()], progress=shares.append)
    assert counts["traces"] == 2
    assert shares == [1.0]


async def test_a_refused_batch_is_a_row_problem_and_the_recorder_stores_the_rest(
    process_writer: ProcessWriter, migrated_database_url: str
) -> None:
    stored = make_bundle()
    await process_writer.write([stored])
    with pytest.raises(WriterRowProblem):
        await process_writer.write([make_bundle(), stored])

    engine = create_engine(migrated_database_url)
    recorder = Recorder(
        engine, writer=process_writer, observer=RecordingObserver(), flush_interval=0.01
    )
    await recorder.start()
    fresh = [make_bundle() for _ in range(3)]
    for bundle in [*fresh, stored]:
        assert recorder.record(bundle)
    await recorder.flush()
    await recorder.stop()
    try:
        assert await count(engine, "traces") == 4
        ids = {row["trace_id"] for row in await fetch_table(engine, traces)}
        assert ids == {b.trace.trace_id for b in [*fresh, stored]}
    finally:
        await engine.dispose()
    assert recorder.stats.dropped == 0
    assert process_writer.started == 1


async def test_a_child_that_dies_is_replaced(
    process_writer: ProcessWriter, migrated_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    first = process_writer.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    await asyncio.sleep(0.2)

    await process_writer.write([make_bundle()])
    assert process_writer.started == 2
    assert process_writer.pid not in (None, first)
    assert f"the writer process ended (exit status {-signal.SIGKILL})" in caplog.text

    engine = create_engine(migrated_database_url)
    try:
        assert await count(engine, "traces") == 1
    finally:
        await engine.dispose()


async def test_a_write_given_up_on_ends_the_child_and_rolls_back(
    process_writer: ProcessWriter, migrated_database_url: str
) -> None:
    """The recorder's write timeout cancels the write; the child's answer must not be taken
    for the next batch's, so the child goes and its transaction with it."""
    engine = create_engine(migrated_database_url)
    async with _traces_held(engine):
        first = process_writer.pid
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1.0):
                await process_writer.write([make_bundle()])
        assert process_writer.pid is None
        assert first is not None and not _alive(first)
    late = make_bundle()
    await process_writer.write([late])
    try:
        ids = {row["trace_id"] for row in await fetch_table(engine, traces)}
        assert ids == {late.trace.trace_id}
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def _traces_held(engine: AsyncEngine) -> AsyncIterator[None]:
    """Hold a write lock on `traces` until closed, so the child's insert waits."""
    async with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            await connection.execute(sa.text("BEGIN"))
            await connection.execute(sa.text("LOCK TABLE traces IN EXCLUSIVE MODE"))
        else:
            await connection.exec_driver_sql("BEGIN IMMEDIATE")
        yield
        await connection.rollback()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_an_unreachable_database_is_a_failed_write_without_its_password(
    tmp_path: Path,
) -> None:
    secret = "s3cret-pw-4411"
    writer = writer_for(f"postgresql://steerway:{secret}@127.0.0.1:9/steerway")
    try:
        with pytest.raises(WriterUnavailable) as raised:
            await writer.write([make_bundle()])
        assert secret not in str(raised.value)
        assert "ConnectionRefusedError" in str(raised.value) or "OSError" in str(raised.value)
    finally:
        await writer.close()


async def test_close_ends_the_child(migrated_sqlite_url: str) -> None:
    writer = writer_for(migrated_sqlite_url)
    await writer.start()
    pid = writer.pid
    assert pid is not None and _alive(pid)
    await writer.close()
    assert not _alive(pid)


async def test_the_configured_child_writer_samples_as_configured(migrated_sqlite_url: str) -> None:
    """`child_batch_writer` is what `steerway serve` hands the child: sampling applies there."""
    from telemetry.trace_sampling import TraceSampling

    spec = WriterSpec(
        migrated_sqlite_url,
        functools.partial(
            child_batch_writer,
            sampling=TraceSampling(ratio=0.0, errors=False),
            refresh_interval=5.0,
        ),
    )
    writer = ProcessWriter(spec)
    try:
        counts = await writer.write([make_bundle(), make_bundle()])
    finally:
        await writer.close()
    assert counts["traces"] == 2
    assert counts.get("spans", 0) == 0


async def test_a_child_that_cannot_start_is_a_failed_write_then_tried_again(
    migrated_sqlite_url: str,
) -> None:
    writer = ProcessWriter(WriterSpec(migrated_sqlite_url, broken_writer))
    await writer.start()
    try:
        for attempt in (1, 2):
            with pytest.raises(WriterUnavailable, match="did not start"):
                await writer.write([make_bundle()])
            assert writer.started == attempt
            assert writer.pid is None
    finally:
        await writer.close()

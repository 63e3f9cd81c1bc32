"""The recorder when the database is unavailable: spill files, replay, nothing accepted lost."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

import migrations
from telemetry.db import create_engine
from telemetry.recorder import Recorder
from telemetry.schema import traces
from telemetry.spill import SpillFile, spill_files
from tests.conftest import POSTGRES_URL, service_missing
from tests.forwarder import TcpForwarder
from tests.telemetry import (
    RecordingObserver,
    count,
    eventually,
    fetch,
    fetch_table,
    make_bundle,
    requests_per_grain,
    rollup_rows,
)


def fast_retrying(engine: AsyncEngine, **options: Any) -> Recorder:
    """A recorder whose backoff is counted in milliseconds, so outages are quick to test."""
    return Recorder(engine, retry_initial=0.01, retry_max=0.05, retry_attempts=2, **options)


async def _admin(sql: str) -> None:
    connection = await asyncpg.connect(POSTGRES_URL, timeout=5)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@dataclass
class LateDatabase:
    """A database URL whose database cannot take writes until `make_available()`."""

    url: str
    make_available: Callable[[], Awaitable[None]]


@pytest.fixture(params=["sqlite", "postgres"])
async def late_database(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[LateDatabase]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'late.db'}"  # the file has no tables yet

        async def migrate() -> None:
            await asyncio.to_thread(migrations.upgrade, url)

        yield LateDatabase(url, migrate)
        return

    name = f"steerway_test_{uuid.uuid4().hex[:12]}"
    try:
        await _admin("SELECT 1")
    except (OSError, asyncpg.PostgresError) as error:
        service_missing("Postgres", error)
    url = f"{POSTGRES_URL.rpartition('/')[0]}/{name}"  # the database does not exist yet

    async def create_and_migrate() -> None:
        await _admin(f'CREATE DATABASE "{name}"')
        await asyncio.to_thread(migrations.upgrade, url)

    try:
        yield LateDatabase(url, create_and_migrate)
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_batches_spill_while_the_database_is_down_and_replay_when_it_is_back(
    late_database: LateDatabase, tmp_path: Path
) -> None:
    spill_dir = tmp_path / "spill"
    observer = RecordingObserver()
    engine = create_engine(late_database.url)
    recorder = fast_retrying(engine, spill_dir=spill_dir, flush_interval=0.01, observer=observer)
    await recorder.start()
    bundles = [make_bundle() for _ in range(5)]
    for bundle in bundles:
        assert recorder.record(bundle)
    await recorder.flush()
    assert recorder.stats.spilled_bundles == 5
    assert recorder.stats.written_bundles == 0
    assert recorder.stats.last_error is not None
    assert observer.failures and sum(observer.spilled_counts) == 5
    assert len(spill_files(spill_dir)) == 1

    later = [make_bundle() for _ in range(3)]
    for bundle in later:
        recorder.record(bundle)
    await recorder.flush()
    assert recorder.stats.spilled_bundles == 8

    await late_database.make_available()
    await eventually(lambda: recorder.stats.replayed_bundles == 8)
    await eventually(lambda: not spill_files(spill_dir))

    recorder.record(make_bundle())
    await recorder.stop()
    await engine.dispose()

    check = create_engine(late_database.url)
    try:
        assert await count(check, "traces") == 9
        assert await count(check, "spans") == 18
        (row,) = await rollup_rows(check)
        assert row.requests == 9
        assert await requests_per_grain(check) == {"day": 9, "hour": 9, "minute": 9}
    finally:
        await check.dispose()
    assert recorder.stats.written_bundles == 1
    assert recorder.stats.dropped == 0


async def test_stop_spills_what_it_cannot_write_and_the_next_process_replays_it(
    late_database: LateDatabase, tmp_path: Path
) -> None:
    spill_dir = tmp_path / "spill"
    first_engine = create_engine(late_database.url)
    first = fast_retrying(first_engine, spill_dir=spill_dir, flush_interval=60.0)
    await first.start()
    bundles = [make_bundle() for _ in range(7)]
    for bundle in bundles:
        first.record(bundle)
    await asyncio.wait_for(first.stop(), 20)
    await first_engine.dispose()
    assert first.stats.spilled_bundles == 7
    assert first.stats.dropped == 0
    assert len(spill_files(spill_dir)) == 1

    await late_database.make_available()
    engine = create_engine(late_database.url)
    second = fast_retrying(engine, spill_dir=spill_dir, batch_size=2)
    await second.start()
    await eventually(lambda: second.stats.replayed_bundles == 7)
    await eventually(lambda: not spill_files(spill_dir))
    await second.stop()
    try:
        assert await count(engine, "traces") == 7
        stored = {row.trace_id for row in await fetch_table(engine, traces)}
        assert stored == {b.trace.trace_id for b in bundles}
    finally:
        await engine.dispose()


async def test_replaying_bundles_already_stored_counts_nothing_twice(
    migrated_database_url: str, tmp_path: Path
) -> None:
    engine = create_engine(migrated_database_url)
    stored = [make_bundle() for _ in range(4)]
    writer = fast_retrying(engine, flush_interval=0.01)
    await writer.start()
    for bundle in stored:
        writer.record(bundle)
    await writer.stop()

    # A process spilled these after its commit went through but before it heard so.
    spill_dir = tmp_path / "spill"
    left_behind = SpillFile.create(spill_dir)
    fresh = [make_bundle() for _ in range(2)]
    left_behind.append([msgspec.structs.replace(b) for b in stored] + fresh)
    left_behind.release()

    recorder = fast_retrying(engine, spill_dir=spill_dir)
    await recorder.start()
    await eventually(lambda: not spill_files(spill_dir))
    await recorder.stop()
    try:
        assert await count(engine, "traces") == 6
        assert await count(engine, "decisions") == 6
        (row,) = await rollup_rows(engine)
        assert row.requests == 6
        assert await requests_per_grain(engine) == {"day": 6, "hour": 6, "minute": 6}
        tagged = await fetch(
            engine,
            "SELECT grain, events FROM usage_breakdowns WHERE kind = 'tag' AND name = 'prod' "
            "ORDER BY grain",
        )
        assert [tuple(r) for r in tagged] == [("day", 6), ("hour", 6)]
        assert recorder.stats.dropped == 0
    finally:
        await engine.dispose()


async def test_without_a_spill_folder_batches_wait_in_memory_and_overflow_is_dropped(
    late_database: LateDatabase,
) -> None:
    observer = RecordingObserver()
    engine = create_engine(late_database.url)
    recorder = fast_retrying(
        engine, queue_size=5, batch_size=5, flush_interval=0.01, observer=observer
    )
    await recorder.start()
    for _ in range(5):
        assert recorder.record(make_bundle())
    await eventually(lambda: len(observer.failures) >= 3)  # retrying the batch it holds
    accepted = [recorder.record(make_bundle()) for _ in range(6)]
    assert accepted == [True] * 5 + [False]
    assert recorder.stats.dropped == 1

    await late_database.make_available()
    await eventually(lambda: recorder.stats.written_bundles == 10)
    await recorder.stop()
    await engine.dispose()
    assert recorder.stats.spilled_bundles == 0


def test_a_writer_cancelled_at_loop_shutdown_spills_what_it_held(
    migrated_sqlite_url: str, tmp_path: Path
) -> None:
    spill_dir = tmp_path / "spill"
    bundles = [make_bundle() for _ in range(5)]

    async def serve_and_forget_to_stop() -> Recorder:
        engine = create_engine(migrated_sqlite_url)
        recorder = fast_retrying(engine, spill_dir=spill_dir, flush_interval=60.0)
        await recorder.start()
        for bundle in bundles:
            recorder.record(bundle)
        await asyncio.sleep(0.05)  # the writer is now waiting for its batch to fill
        return recorder  # asyncio.run cancels the writer task on the way out

    recorder = asyncio.run(serve_and_forget_to_stop())
    assert recorder.stats.spilled_bundles == 5
    (path,) = spill_files(spill_dir)
    claimed = SpillFile.claim(path)
    assert claimed is not None
    assert claimed.read(10)[0] == bundles
    claimed.release()


async def test_a_spill_folder_that_cannot_be_written_keeps_batches_in_memory_and_says_so_once(
    late_database: LateDatabase, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A file where the spill folder should be (no folder can be made there, for root either):
    the batch stays in memory, retried, and the log says so once per outage, not per retry."""
    spill_dir = tmp_path / "spill"
    spill_dir.write_text("not a folder\n")
    observer = RecordingObserver()
    engine = create_engine(late_database.url)
    recorder = fast_retrying(engine, spill_dir=spill_dir, flush_interval=0.01, observer=observer)
    await recorder.start()
    bundles = [make_bundle() for _ in range(5)]
    for bundle in bundles:
        assert recorder.record(bundle)
    await eventually(lambda: len(observer.failures) >= 10)  # retried many times meanwhile
    cannot_spill = [r for r in caplog.records if "cannot write the spill file" in r.getMessage()]
    assert len(cannot_spill) == 1, [r.getMessage() for r in cannot_spill]
    assert recorder.stats.spilled_bundles == 0

    await late_database.make_available()
    await eventually(lambda: recorder.stats.written_bundles == 5)
    await recorder.stop()
    await engine.dispose()
    assert recorder.stats.dropped == 0
    check = create_engine(late_database.url)
    try:
        stored = {row.trace_id for row in await fetch_table(check, traces)}
    finally:
        await check.dispose()
    assert stored == {bundle.trace.trace_id for bundle in bundles}


async def test_a_database_that_stops_answering_is_spilled_to_after_the_write_deadline(
    migrated_postgres_url: str, tmp_path: Path
) -> None:
    """Postgres that stops answering without dropping a connection (a frozen host, a network
    partition): a batch write never fails on its own before the driver's 60 s command timeout,
    and meanwhile the queue grows until requests are held back. A write past its deadline is an
    outage: the batch spills at once and the writer goes on. SQLite has no such state: a writer
    locked out gets an error after its busy timeout."""
    forwarder = TcpForwarder.for_url(migrated_postgres_url).start()
    spill_dir = tmp_path / "spill"
    engine = create_engine(forwarder.url(migrated_postgres_url))
    recorder = fast_retrying(engine, spill_dir=spill_dir, flush_interval=0.01, write_timeout=0.5)
    try:
        await recorder.start()
        before = [make_bundle() for _ in range(3)]
        for bundle in before:
            recorder.record(bundle)
        await recorder.flush()
        assert recorder.stats.written_bundles == 3

        await asyncio.to_thread(forwarder.stall)
        during = [make_bundle() for _ in range(6)]
        for bundle in during:
            recorder.record(bundle)
        async with asyncio.timeout(20):  # without a deadline: the 60 s command timeout
            await recorder.flush()
        assert recorder.stats.spilled_bundles == 6
        assert spill_files(spill_dir)

        await asyncio.to_thread(forwarder.restore)
        await eventually(lambda: not spill_files(spill_dir), within=30)
        await recorder.stop()
        assert recorder.stats.dropped == 0
    finally:
        await engine.dispose()
        forwarder.close()
    check = create_engine(migrated_postgres_url)
    try:
        stored = [row.trace_id for row in await fetch_table(check, traces)]
    finally:
        await check.dispose()
    assert sorted(stored) == sorted(bundle.trace.trace_id for bundle in before + during)

"""spill-first durability: bundles on disk before `durable()` returns, journal files deleted once
written, and what the queue could not take replayed from them."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.db import create_engine
from telemetry.recorder import Recorder
from telemetry.records import TraceBundle
from telemetry.schema import traces
from telemetry.spill import spill_files
from tests.telemetry import (
    RecordingObserver,
    eventually,
    fetch_table,
    make_bundle,
    requests_per_grain,
    rollup_rows,
)


class JournalObserver(RecordingObserver):
    def __init__(self) -> None:
        super().__init__()
        self.groups: list[int] = []
        self.unwritten: list[int] = []

    def journal_synced(self, seconds: float, bundles: int) -> None:
        self.groups.append(bundles)

    def journal_failed(self, bundles: int) -> None:
        self.unwritten.append(bundles)


def spill_first(engine: AsyncEngine, spill_dir: Path, **options: Any) -> Recorder:
    return Recorder(
        engine,
        spill_dir=spill_dir,
        durability="spill-first",
        retry_initial=0.01,
        retry_max=0.05,
        **options,
    )


def on_disk(spill_dir: Path) -> list[TraceBundle]:
    """Every bundle in the folder's spill and journal files, read as bytes (they are locked)."""
    decoder = msgspec.json.Decoder(TraceBundle)
    return [
        decoder.decode(line)
        for path in spill_files(spill_dir)
        for line in path.read_bytes().splitlines()
        if line
    ]


async def test_bundles_are_on_disk_when_durable_returns(tmp_path: Path, sqlite_url: str) -> None:
    # No tables yet: the writer cannot store anything, so only the journal has the bundles.
    engine = create_engine(sqlite_url)
    spill_dir = tmp_path / "spill"
    recorder = spill_first(engine, spill_dir, flush_interval=60.0)
    await recorder.start()
    bundles = [make_bundle() for _ in range(3)]
    for bundle in bundles:
        recorder.record(bundle)
    await recorder.durable()
    assert on_disk(spill_dir) == bundles
    assert recorder.stats.written_bundles == 0
    await recorder.stop()
    await engine.dispose()


async def test_concurrent_requests_share_an_fsync(engine: AsyncEngine, tmp_path: Path) -> None:
    observer = JournalObserver()
    recorder = spill_first(engine, tmp_path / "spill", observer=observer)
    await recorder.start()

    async def request() -> None:
        recorder.record(make_bundle())
        await recorder.durable()

    await asyncio.gather(*(request() for _ in range(50)))
    assert sum(observer.groups) == 50
    assert len(observer.groups) < 50
    await recorder.stop()


async def test_journal_files_are_deleted_once_their_bundles_are_written(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    spill_dir = tmp_path / "spill"
    recorder = spill_first(engine, spill_dir, flush_interval=0.01)
    await recorder.start()
    bundles = [make_bundle() for _ in range(2500)]
    for bundle in bundles:
        bundle.trace.metadata = {"blob": "x" * 4096}  # ~6.5 KB a bundle
    for start in range(0, 2500, 500):  # five groups of ~3 MiB: one full file and a part
        for bundle in bundles[start : start + 500]:
            recorder.record(bundle)
        await recorder.durable()
    await recorder.flush()
    # The full file is gone once written; the one still taking new bundles stays a while.
    await eventually(lambda: len(spill_files(spill_dir)) == 1)
    assert len(on_disk(spill_dir)) < len(bundles) // 2
    await recorder.stop()
    assert not spill_files(spill_dir)
    assert len(await fetch_table(engine, traces)) == 2500


async def test_what_the_full_queue_cannot_take_is_replayed_from_the_journal(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    spill_dir = tmp_path / "spill"
    recorder = spill_first(engine, spill_dir, queue_size=3, batch_size=3)
    await recorder.start()
    bundles = [make_bundle() for _ in range(7)]
    assert all(recorder.record(bundle) for bundle in bundles)  # 4 over the queue's size
    await recorder.durable()
    await eventually(lambda: recorder.stats.replayed_bundles == 7)  # the whole journal file
    await eventually(lambda: not spill_files(spill_dir))
    await recorder.stop()
    stored = {row.trace_id for row in await fetch_table(engine, traces)}
    assert stored == {b.trace.trace_id for b in bundles}
    (rollup,) = await rollup_rows(engine)
    assert rollup.requests == 7  # the replay skipped the three already written
    assert await requests_per_grain(engine) == {"day": 7, "hour": 7, "minute": 7}
    assert recorder.stats.dropped == 0


async def test_a_journal_that_cannot_be_written_holds_no_answer_back(
    engine: AsyncEngine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spill_dir = tmp_path / "not-a-folder"
    spill_dir.write_text("a file where the spill folder should be")
    observer = JournalObserver()
    recorder = spill_first(engine, spill_dir, flush_interval=0.01, observer=observer)
    await recorder.start()
    with caplog.at_level(logging.ERROR, logger="steerway.telemetry"):
        for _ in range(3):
            recorder.record(make_bundle())
            await asyncio.wait_for(recorder.durable(), 5)
    await recorder.stop()
    assert sum(observer.unwritten) == 3
    journal_errors = [r for r in caplog.records if "journal" in r.getMessage()]
    assert len(journal_errors) == 1
    assert len(await fetch_table(engine, traces)) == 3  # the database still gets them


def test_spill_first_needs_a_spill_folder(sqlite_url: str) -> None:
    with pytest.raises(ValueError, match="spill_dir"):
        Recorder(create_engine(sqlite_url), durability="spill-first")

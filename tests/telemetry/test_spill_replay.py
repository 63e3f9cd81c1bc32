"""Replaying spill files: a damaged line, an unreadable file or a rejected bundle never wedges
replay, and none of them is logged more than once."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.recorder import Recorder
from telemetry.schema import traces
from telemetry.spill import QUARANTINE_SUFFIX, SPILL_SUFFIX, SpillFile, spill_files
from tests.telemetry import RecordingObserver, count, eventually, fetch_table, make_bundle


def replaying(engine: AsyncEngine, spill_dir: Path, **options: Any) -> Recorder:
    return Recorder(
        engine, spill_dir=spill_dir, retry_initial=0.01, retry_max=0.05, retry_attempts=2, **options
    )


def leave_spill_file(spill_dir: Path, *lines: bytes) -> Path:
    """A spill file as a process that has exited left it: the given lines, unlocked."""
    spill = SpillFile.create(spill_dir)
    spill.release()
    with spill.path.open("ab") as file:
        file.write(b"".join(lines))
    return spill.path


def line(bundle: Any) -> bytes:
    return msgspec.json.encode(bundle) + b"\n"


def messages(caplog: pytest.LogCaptureFixture, *, containing: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if containing in r.getMessage()]


async def test_an_invalid_utf8_line_is_quarantined_and_the_rest_replays(
    engine: AsyncEngine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spill_dir = tmp_path / "spill"
    good = [make_bundle() for _ in range(5)]
    damaged = line(make_bundle()).replace(b'"user-7"', b'"user-\xff"')
    path = leave_spill_file(
        spill_dir, line(good[0]), line(good[1]), damaged, *(line(b) for b in good[2:])
    )
    observer = RecordingObserver()
    recorder = replaying(engine, spill_dir, batch_size=2, observer=observer)
    with caplog.at_level(logging.INFO, logger="steerway.telemetry"):
        await recorder.start()
        await eventually(lambda: not spill_files(spill_dir))
        await asyncio.sleep(0.3)  # long enough for a retry loop to repeat itself
        await recorder.stop()

    assert recorder.stats.replayed_bundles == 5
    stored = {row.trace_id for row in await fetch_table(engine, traces)}
    assert stored == {b.trace.trace_id for b in good}
    quarantine = path.with_name(path.name.removesuffix(SPILL_SUFFIX) + QUARANTINE_SUFFIX)
    assert quarantine.read_bytes() == damaged
    assert observer.quarantined_counts == [1]
    logged = messages(caplog, containing=path.name.removesuffix(SPILL_SUFFIX))
    assert len(logged) == 1, logged
    assert "1 undecodable line" in logged[0] and quarantine.name in logged[0]
    assert not messages(caplog, containing="writer error")


async def test_a_file_that_cannot_be_opened_is_left_alone_and_later_files_replay(
    engine: AsyncEngine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spill_dir = tmp_path / "spill"
    spill_dir.mkdir()
    unreadable = spill_dir / f"00000000000000000000-1-deadbeef{SPILL_SUFFIX}"
    unreadable.mkdir()  # sorts first, and no open() of it for writing succeeds
    bundle = make_bundle()
    leave_spill_file(spill_dir, line(bundle))
    recorder = replaying(engine, spill_dir)
    with caplog.at_level(logging.INFO, logger="steerway.telemetry"):
        await recorder.start()
        await eventually(lambda: recorder.stats.replayed_bundles == 1)
        await eventually(lambda: spill_files(spill_dir) == [unreadable])
        await asyncio.sleep(0.3)
        recorder.record(make_bundle())  # replay is triggered again after a successful write
        await recorder.flush()
        await asyncio.sleep(0.3)
        await recorder.stop()
    assert await count(engine, "traces") == 2
    logged = messages(caplog, containing=unreadable.name)
    assert len(logged) == 1, logged
    assert "left in place" in logged[0]
    assert not messages(caplog, containing="writer error")


async def test_a_bundle_the_database_rejects_does_not_hold_up_the_rest(
    engine: AsyncEngine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spill_dir = tmp_path / "spill"
    good = [make_bundle() for _ in range(3)]
    impossible = make_bundle(started_at=1e15)  # a date no database column can hold
    leave_spill_file(spill_dir, line(good[0]), line(impossible), *(line(b) for b in good[1:]))
    recorder = replaying(engine, spill_dir)
    with caplog.at_level(logging.INFO, logger="steerway.telemetry"):
        await recorder.start()
        await eventually(lambda: not spill_files(spill_dir))
        await asyncio.sleep(0.3)
        await recorder.stop()
    stored = {row.trace_id for row in await fetch_table(engine, traces)}
    assert stored == {b.trace.trace_id for b in good}
    assert recorder.stats.dropped == 1
    assert len(messages(caplog, containing=impossible.trace.trace_id)) == 1
    assert not messages(caplog, containing="writer error")

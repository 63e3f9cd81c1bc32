"""Guardrail violations: collected on the request's trace, written with its batch, spilled and
read back (also from spill files written before bundles carried violations)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.ids import uuid7_hex
from telemetry.recorder import Recorder
from telemetry.records import GuardrailViolationRecord, TraceBundle, TraceRecord
from telemetry.rows import VIOLATION_COLUMNS, BatchRecords, fit_to_columns
from telemetry.schema import guardrail_violations, metadata
from telemetry.spill import SpillFile
from telemetry.trace import RequestTrace
from tests.telemetry import MINUTE, RecordingObserver, as_utc, count, fetch_table, make_bundle


def add_violation(
    bundle: TraceBundle,
    *,
    guardrail: str = "pii-input",
    entities: dict[str, int] | None = None,
    score: float = 0.85,
    api_key_id: str | None = "key1",
) -> GuardrailViolationRecord:
    violation = GuardrailViolationRecord(
        violation_id=uuid7_hex(),
        trace_id=bundle.trace.trace_id,
        workspace_id=bundle.trace.workspace_id,
        api_key_id=api_key_id,
        guardrail=guardrail,
        kind="pii",
        direction="input",
        action="mask",
        entities={"EMAIL_ADDRESS": 2, "PHONE_NUMBER": 1} if entities is None else entities,
        score=score,
        latency_us=812.5,
        created_at=MINUTE + 2.25,
    )
    bundle.violations.append(violation)
    return violation


# --- the request's trace ----------------------------------------------------------------------


def _trace_record(trace: RequestTrace, *, api_key_id: str | None) -> TraceRecord:
    return TraceRecord(
        trace_id=trace.trace_id,
        workspace_id="ws-7",
        api_key_id=api_key_id,
        request_id="req-1",
        route="/v1/chat/completions",
        started_at=trace.start_wall,
        ended_at=trace.start_wall + 0.01,
    )


def test_violations_are_bundled_with_the_workspace_and_key_of_the_request() -> None:
    trace = RequestTrace(None)
    trace.add_violation(
        guardrail="pii-input",
        kind="pii",
        direction="input",
        action="block",
        entities={"EMAIL_ADDRESS": 1},
        score=0.9,
        latency_us=120.0,
    )
    trace.add_violation(
        guardrail="injection",
        kind="prompt_injection",
        direction="output",
        action="log",
        entities={},
        score=0.5,
        latency_us=40.0,
        api_key_id="other-key",
    )
    bundle = trace.bundle(_trace_record(trace, api_key_id="key-9"), trace.start + 0.01)

    first, second = bundle.violations
    assert {v.workspace_id for v in bundle.violations} == {"ws-7"}
    assert {v.trace_id for v in bundle.violations} == {trace.trace_id}
    assert first.api_key_id == "key-9"  # the request's key, as none was given
    assert second.api_key_id == "other-key"
    assert (first.guardrail, first.kind, first.direction, first.action) == (
        "pii-input",
        "pii",
        "input",
        "block",
    )
    assert first.entities == {"EMAIL_ADDRESS": 1}
    assert (second.score, second.latency_us) == (0.5, 40.0)
    assert (
        len(first.violation_id) == 32 and first.violation_id[:12] <= second.violation_id[:12]
    )  # time-ordered by ms
    assert first.created_at <= second.created_at


def test_a_trace_without_violations_bundles_none() -> None:
    trace = RequestTrace(None)
    bundle = trace.bundle(_trace_record(trace, api_key_id=None), trace.start + 0.01)
    assert bundle.violations == []


# --- rows -------------------------------------------------------------------------------------


def test_violation_rows_fill_every_column_with_utc_times() -> None:
    assert sorted(VIOLATION_COLUMNS) == sorted(
        c.name for c in metadata.tables["guardrail_violations"].columns
    )
    bundle = make_bundle()
    violation = add_violation(bundle)
    tables = {
        name: (columns, rows)
        for name, columns, rows in BatchRecords.from_bundles([bundle]).table_rows()
    }
    columns, (row,) = tables["guardrail_violations"]
    values = dict(zip(columns, row, strict=True))
    assert values["created_at"] == datetime.fromtimestamp(violation.created_at, UTC)
    assert values["entities"] == {"EMAIL_ADDRESS": 2, "PHONE_NUMBER": 1}
    assert values["violation_id"] == violation.violation_id


def test_a_guardrail_name_too_long_for_its_column_is_cut() -> None:
    bundle = make_bundle()
    add_violation(bundle, guardrail="g" * 300)
    fitted = fit_to_columns(bundle)
    assert fitted is not None
    assert fitted.violations[0].guardrail == "g" * 128
    assert bundle.violations[0].guardrail == "g" * 300


# --- the database -----------------------------------------------------------------------------


async def test_violations_are_written_with_their_batch(engine: AsyncEngine) -> None:
    observer = RecordingObserver()
    recorder = Recorder(engine, observer=observer, flush_interval=0.01)
    await recorder.start()
    flagged = make_bundle()
    masked = add_violation(flagged)
    blocked = add_violation(flagged, guardrail="secrets", entities={}, score=1.0, api_key_id=None)
    clean = make_bundle()
    recorder.record(flagged)
    recorder.record(clean)
    await recorder.stop()

    stored = {row.violation_id: row for row in await fetch_table(engine, guardrail_violations)}
    assert set(stored) == {masked.violation_id, blocked.violation_id}
    row = stored[masked.violation_id]
    assert row.trace_id == flagged.trace.trace_id
    assert row.workspace_id == flagged.trace.workspace_id
    assert row.api_key_id == "key1"
    assert (row.guardrail, row.kind, row.direction, row.action) == (
        "pii-input",
        "pii",
        "input",
        "mask",
    )
    assert row.entities == {"EMAIL_ADDRESS": 2, "PHONE_NUMBER": 1}
    assert row.score == pytest.approx(0.85)
    assert row.latency_us == pytest.approx(812.5)
    assert as_utc(row.created_at) == datetime.fromtimestamp(masked.created_at, UTC)
    other = stored[blocked.violation_id]
    assert other.entities == {}
    assert other.api_key_id is None
    assert observer.rows["guardrail_violations"] == 2
    assert await count(engine, "traces") == 2


async def test_a_replayed_violation_is_not_written_twice(engine: AsyncEngine) -> None:
    recorder = Recorder(engine, flush_interval=0.01)
    await recorder.start()
    bundle = make_bundle()
    add_violation(bundle)
    recorder.record(bundle)
    await recorder.flush()
    again = msgspec.structs.replace(bundle)
    add_violation(again)  # a new violation next to the stored one
    recorder.record(again)
    await recorder.stop()
    assert await count(engine, "guardrail_violations") == 2
    assert recorder.stats.dropped == 0


async def test_a_violation_the_database_refuses_drops_only_its_bundle(engine: AsyncEngine) -> None:
    recorder = Recorder(engine, flush_interval=0.01)
    await recorder.start()
    good = make_bundle()
    add_violation(good)
    bad = make_bundle()
    add_violation(bad).kind = None  # type: ignore[assignment]  # NOT NULL
    recorder.record(good)
    recorder.record(bad)
    await recorder.stop()
    assert await count(engine, "guardrail_violations") == 1
    assert await count(engine, "traces") == 1
    assert recorder.stats.dropped == 1


# --- spill files ------------------------------------------------------------------------------


def test_violations_round_trip_through_a_spill_file(tmp_path: Path) -> None:
    bundles = [make_bundle(), make_bundle()]
    add_violation(bundles[0])
    add_violation(bundles[0], guardrail="secrets", entities={})
    spill = SpillFile.create(tmp_path)
    assert spill.append(bundles) == 2
    read, _ = spill.read(10)
    assert read == bundles
    assert [v.guardrail for v in read[0].violations] == ["pii-input", "secrets"]
    assert read[1].violations == []
    spill.release()


def test_a_spill_file_written_before_violations_existed_still_reads(tmp_path: Path) -> None:
    bundle = make_bundle()
    old_line = msgspec.json.decode(msgspec.json.encode(bundle))
    del old_line["violations"]
    spill = SpillFile.create(tmp_path)
    spill.release()
    with spill.path.open("ab") as file:
        file.write(msgspec.json.encode(old_line) + b"\n")

    claimed = SpillFile.claim(spill.path)
    assert claimed is not None
    (read,), _ = claimed.read(10)
    assert read.violations == []
    assert read == bundle
    claimed.release()

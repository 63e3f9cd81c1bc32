"""What the writer stores for a sampled-out request, on both backends: the trace row with its
figures and summary, the interactions without content, the guardrail findings; no spans or
decisions; the roll-ups count it; a replay stores nothing twice; the recorder counts it."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.recorder import Recorder
from telemetry.records import TraceBundle
from telemetry.schema import ai_interactions, traces
from telemetry.trace_sampling import TraceSampling
from telemetry.writers import SAMPLED_OUT, BatchWriter
from tests.telemetry import (
    RecordingObserver,
    count,
    fetch,
    fetch_table,
    make_bundle,
    requests_per_grain,
)
from tests.telemetry.test_summary import add_decision, add_violation

SAMPLE_NONE = TraceSampling(ratio=0.0, guardrail_verdicts=False)


class SamplingObserver(RecordingObserver):
    def __init__(self) -> None:
        super().__init__()
        self.sampled_out_counts: list[int] = []

    def sampled_out(self, traces: int) -> None:
        self.sampled_out_counts.append(traces)


def _plain(prompt: str) -> TraceBundle:
    bundle = make_bundle(cost=Decimal("0.0031"), prompt_tokens=120, completion_tokens=34)
    bundle.interactions[0].prompt = [{"role": "user", "content": prompt}]
    bundle.interactions[0].response = {"role": "assistant", "content": "an answer"}
    add_decision(
        bundle,
        "rule_evaluation",
        "rules",
        rule_id="route-cheap",
        output={"route": "cheap"},
    )
    return bundle


async def _interactions(engine: AsyncEngine, trace_id: str) -> list[sa.RowMapping]:
    query = sa.select(ai_interactions).where(ai_interactions.c.trace_id == trace_id)
    async with engine.connect() as connection:
        return list((await connection.execute(query)).mappings().all())


async def _children(engine: AsyncEngine, table: str, trace_id: str) -> int:
    rows = await fetch(engine, f"SELECT count(*) FROM {table} WHERE trace_id = :t", t=trace_id)
    return int(rows[0][0])


async def test_a_sampled_out_request_keeps_its_figures_and_loses_spans_decisions_content(
    engine: AsyncEngine,
) -> None:
    plain = _plain("a prompt nobody keeps")
    logged = _plain("a prompt with a finding")
    add_violation(logged, "pii-log", "log")
    failed = make_bundle(status="error")

    counts = await BatchWriter(engine, sampling=SAMPLE_NONE).write([plain, logged, failed])

    assert counts[SAMPLED_OUT] == 2
    assert counts["spans"] == len(failed.spans) and counts["decisions"] == len(failed.decisions)
    by_id = {row["trace_id"]: row for row in await fetch_table(engine, traces)}
    assert set(by_id) == {plain.trace.trace_id, logged.trace.trace_id, failed.trace.trace_id}
    assert by_id[failed.trace.trace_id]["sampled_out"] is False
    for bundle in (plain, logged):
        row = by_id[bundle.trace.trace_id]
        assert row["sampled_out"] is True
        assert (row["total_tokens"], row["cost_usd"]) == (154, Decimal("0.0031"))
        # The summary is worked out from the whole bundle, dropped decisions included.
        assert row["rules_matched"] == ["route-cheap"]
        trace_id = bundle.trace.trace_id
        assert await _children(engine, "spans", trace_id) == 0
        assert await _children(engine, "decisions", trace_id) == 0
        (interaction,) = await _interactions(engine, trace_id)
        assert interaction["prompt"] is None and interaction["response"] is None
        assert (interaction["prompt_tokens"], interaction["completion_tokens"]) == (120, 34)
        assert interaction["cost_usd"] == Decimal("0.0031")
    assert by_id[logged.trace.trace_id]["guardrail_action"] == "log"
    assert await _children(engine, "guardrail_violations", logged.trace.trace_id) == 1
    failed_id = failed.trace.trace_id
    assert await _children(engine, "spans", failed_id) == len(failed.spans)
    assert await _children(engine, "decisions", failed_id) == len(failed.decisions)
    (kept,) = await _interactions(engine, failed_id)
    assert kept["prompt"] == [{"role": "user", "content": "hi"}]


async def test_the_roll_ups_count_every_request_with_ratio_zero(engine: AsyncEngine) -> None:
    bundles = [_plain(f"prompt {n}") for n in range(7)]
    await BatchWriter(engine, sampling=SAMPLE_NONE).write(bundles)
    assert await count(engine, "traces") == 7
    assert await count(engine, "spans") == 0
    assert await count(engine, "decisions") == 0
    assert await requests_per_grain(engine) == {"minute": 7, "hour": 7, "day": 7}


async def test_a_replayed_batch_decides_the_same_and_stores_nothing_twice(
    engine: AsyncEngine,
) -> None:
    bundles = [_plain("once"), make_bundle(status="error"), _plain("twice")]
    writer = BatchWriter(engine, sampling=SAMPLE_NONE)
    first = await writer.write(bundles[:2])
    again = await writer.write(bundles, skip_existing=True)
    assert (first[SAMPLED_OUT], again[SAMPLED_OUT]) == (1, 1)
    rows = await fetch_table(engine, traces)
    assert sorted((r["trace_id"], r["sampled_out"]) for r in rows) == sorted(
        [
            (bundles[0].trace.trace_id, True),
            (bundles[1].trace.trace_id, False),
            (bundles[2].trace.trace_id, True),
        ]
    )
    assert await count(engine, "spans") == len(bundles[1].spans)
    assert await requests_per_grain(engine) == {"minute": 3, "hour": 3, "day": 3}


async def test_without_sampling_every_trace_is_kept_whole(engine: AsyncEngine) -> None:
    bundle = _plain("kept")
    counts = await BatchWriter(engine).write([bundle])
    assert SAMPLED_OUT not in counts
    (row,) = await fetch_table(engine, traces)
    assert row["sampled_out"] is False
    assert await count(engine, "spans") == len(bundle.spans)
    assert await count(engine, "decisions") == len(bundle.decisions)


async def test_the_recorder_reports_the_traces_it_sampled_out(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    observer = SamplingObserver()
    recorder = Recorder(
        engine,
        spill_dir=tmp_path / "spill",
        observer=observer,
        flush_interval=0.01,
        sampling=SAMPLE_NONE,
    )
    await recorder.start()
    try:
        marked = msgspec.structs.replace(_plain("to evaluate"), for_evaluation=True)
        for bundle in [_plain("a"), _plain("b"), marked, _plain("c")]:
            assert recorder.record(bundle)
        await recorder.flush()
    finally:
        await recorder.stop()
    assert sum(observer.sampled_out_counts) == 3
    assert SAMPLED_OUT not in observer.rows
    assert observer.rows["traces"] == 4
    assert observer.rows["spans"] == len(marked.spans)
    stored = {row["trace_id"]: row["sampled_out"] for row in await fetch_table(engine, traces)}
    assert stored[marked.trace.trace_id] is False
    assert sum(stored.values()) == 3


async def test_content_sampling_drops_is_not_redacted_first(engine: AsyncEngine) -> None:
    scanned: list[str] = []

    def shout(text: str) -> str:
        scanned.append(text)
        return text.upper()

    dropped = _plain("a prompt sampling drops")
    failed = make_bundle(status="error")
    failed.interactions[0].prompt = [{"role": "user", "content": "a prompt kept whole"}]
    recorder = Recorder(engine, flush_interval=0.01, redact=shout, sampling=SAMPLE_NONE)
    await recorder.start()
    try:
        assert recorder.record(dropped) and recorder.record(failed)
        await recorder.flush()
    finally:
        await recorder.stop()
    assert "a prompt kept whole" in scanned
    assert not any("sampling drops" in text or "an answer" in text for text in scanned)
    (kept,) = await _interactions(engine, failed.trace.trace_id)
    assert kept["prompt"] == [{"role": "user", "content": "A PROMPT KEPT WHOLE"}]
    (stripped,) = await _interactions(engine, dropped.trace.trace_id)
    assert stripped["prompt"] is None and stripped["response"] is None

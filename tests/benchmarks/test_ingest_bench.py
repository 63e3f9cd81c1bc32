"""The ingest scenario on both backends: a second of bundles through a real Recorder, and every
row it enqueued is in the database."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from benchmarks.ingest import RecorderSettings, ramp_rates, run_ingest
from benchmarks.ingest_bundles import TABLES, BundleFactory, BundleStream, rows_of
from benchmarks.ingest_report import main, report


async def test_a_short_run_writes_every_row_it_enqueued(engine: AsyncEngine) -> None:
    steps = []
    run = await run_ingest(
        engine, [450.0], 1.0, RecorderSettings(batch_size=64), on_step=steps.append
    )
    assert [s.target_rate for s in steps] == [450.0]
    step = run.steps[0]
    assert step.enqueued_bundles == step.offered_bundles == 300
    assert step.dropped == 0
    assert step.offered_interactions == step.enqueued_interactions
    assert step.enqueued_rows == sum(run.enqueued_rows.values())
    assert run.enqueued_rows["traces"] == 300
    assert run.enqueued_rows["ai_interactions"] > run.enqueued_rows["traces"]
    assert run.stored_rows == run.enqueued_rows
    assert run.rollup_requests == 300
    assert run.rows_match
    assert step.batch_ms and len(step.batch_ms) == len(step.batch_bundles)
    text = "\n".join(report(run, "python -m benchmarks ingest", RecorderSettings(), "0.00"))
    assert "Rows written equal rows enqueued: yes" in text


def test_streamed_bundles_have_ids_no_other_bundle_has() -> None:
    stream = BundleStream(BundleFactory(), pool=16)
    bundles = [stream.next() for _ in range(200)]
    ids = {
        "traces": [b.trace.trace_id for b in bundles],
        "spans": [s.span_id for b in bundles for s in b.spans],
        "decisions": [d.decision_id for b in bundles for d in b.decisions],
        "ai_interactions": [i.interaction_id for b in bundles for i in b.interactions],
        "guardrail_violations": [v.violation_id for b in bundles for v in b.violations],
    }
    for table, values in ids.items():
        assert len(values) == len(set(values)), table
        assert values, table
    for bundle in bundles:
        span_ids = {s.span_id for s in bundle.spans}
        assert all(s.parent_span_id in span_ids for s in bundle.spans[1:])
        assert all(i.span_id in span_ids for i in bundle.interactions)
        assert all(len(s.span_id) == 16 for s in bundle.spans)
        assert len(bundle.trace.trace_id) == 32
    assert sum(rows_of(bundle)[0] for bundle in bundles) == 200
    assert len(TABLES) == len(rows_of(bundles[0]))


def test_the_ramp_climbs_by_its_factor_and_ends_at_the_highest_rate() -> None:
    assert ramp_rates(1000, 2, 5000) == [1000, 2000, 4000, 5000]
    assert ramp_rates(1000, 1.5, 2250) == [1000, 1500, 2250]
    with pytest.raises(ValueError):
        ramp_rates(1000, 1, 5000)


async def test_a_ramp_ends_after_two_steps_it_could_not_keep_up_with(engine: AsyncEngine) -> None:
    # Ten places in the queue and a hundred bundles due every tick: each step drops bundles.
    run = await run_ingest(
        engine,
        [30_000.0, 30_000.0, 30_000.0],
        0.1,
        RecorderSettings(queue_size=10, batch_size=10),
        stop_after_behind=2,
    )
    assert len(run.steps) == 2
    assert all(step.dropped > 0 and not step.kept_up for step in run.steps)
    assert all(s.offered_bundles == s.enqueued_bundles + s.dropped for s in run.steps)
    assert run.stored_rows == run.enqueued_rows
    assert run.rollup_requests == sum(s.enqueued_bundles for s in run.steps)


@pytest.mark.parametrize(
    "argv",
    [
        ["--ramp", "--ramp-factor", "1"],
        ["--seconds", "0"],
        ["--rate", "-5"],
        ["--database-url", "postgresql://127.0.0.1/x", "--bare-tables"],
    ],
)
def test_options_that_cannot_run_are_refused_before_any_database_is_made(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "python -m benchmarks ingest: error:" in capsys.readouterr().err

"""Rows under a trace belong to the trace's workspace: reads never show another workspace's rows
that carry the same trace id, and the writer's careful path never takes another workspace's row
for one of its own. On SQLite and Postgres."""

from __future__ import annotations

import secrets

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.ids import uuid7_hex
from telemetry.queries import replay_history, trace_detail
from telemetry.recorder import Recorder
from telemetry.records import DecisionRecord, GuardrailViolationRecord, TraceBundle
from telemetry.writers import BatchWriter
from tests.telemetry import MINUTE, RecordingObserver, count, fetch, make_bundle

OURS = "ws-ours"
THEIRS = "ws-theirs"


def _intruder_under(trace_id: str, marker: str) -> TraceBundle:
    """A bundle of workspace THEIRS whose spans, decisions, interactions and violations all name
    `trace_id` (a trace of workspace OURS), with `marker` in its prompt; its own trace row is
    a decoy of THEIRS."""
    bundle = make_bundle(workspace_id=THEIRS, started_at=MINUTE + 30)
    for span in bundle.spans:
        span.trace_id = trace_id
    (interaction,) = bundle.interactions
    interaction.trace_id = trace_id
    interaction.attempt = 9  # would rank as the trace's final attempt if joined by trace id
    interaction.provider = "intruder-provider"
    interaction.prompt = [{"role": "user", "content": marker}]
    bundle.decisions = [
        DecisionRecord(
            decision_id=uuid7_hex(),
            trace_id=trace_id,
            workspace_id=THEIRS,
            sequence=1,
            type="rule_evaluation",
            component="rules",
            rule_id="intruder-rule",
            output={"matched": True},
            reasoning=marker,
            created_at=MINUTE + 30,
        )
    ]
    bundle.violations = [
        GuardrailViolationRecord(
            violation_id=uuid7_hex(),
            trace_id=trace_id,
            workspace_id=THEIRS,
            guardrail="intruder-guardrail",
            kind="pii",
            direction="input",
            action="log",
            entities={"email": 1},
            score=1.0,
            latency_us=1.0,
            created_at=MINUTE + 30,
        )
    ]
    return bundle


async def test_a_trace_shows_only_the_rows_of_its_own_workspace(engine: AsyncEngine) -> None:
    ours = make_bundle(workspace_id=OURS)
    trace_id = ours.trace.trace_id
    marker = f"intruder-{secrets.token_hex(8)}"
    intruder = _intruder_under(trace_id, marker)
    await BatchWriter(engine).write([ours, intruder])
    assert len(await fetch(engine, "SELECT 1 FROM spans WHERE trace_id = :t", t=trace_id)) == 4

    for scope in (OURS, None):
        detail = await trace_detail(engine, trace_id, workspace_id=scope)
        assert detail is not None
        assert [s["span_id"] for s in detail.spans] == [s.span_id for s in ours.spans]
        assert [d["decision_id"] for d in detail.decisions] == [
            d.decision_id for d in ours.decisions
        ]
        assert [i["interaction_id"] for i in detail.interactions] == [
            i.interaction_id for i in ours.interactions
        ]
        assert detail.violations == []
        everything = [*detail.spans, *detail.decisions, *detail.interactions, detail.trace]
        assert {row["workspace_id"] for row in everything} == {OURS}
        assert marker not in repr(detail)
    assert await trace_detail(engine, trace_id, workspace_id=THEIRS) is None


async def test_replay_history_joins_only_rows_of_the_traces_workspace(engine: AsyncEngine) -> None:
    ours = make_bundle(workspace_id=OURS)
    trace_id = ours.trace.trace_id
    marker = f"intruder-{secrets.token_hex(8)}"
    await BatchWriter(engine).write([ours, _intruder_under(trace_id, marker)])

    for scope in (OURS, None):
        history = await replay_history(engine, workspace_id=scope, with_prompts=True)
        (row,) = [r for r in history.rows if r["trace_id"] == trace_id]
        assert row["workspace_id"] == OURS
        assert row["served_provider"] == "openai"
        assert row["prompt"] == [{"role": "user", "content": "hi"}]
        assert row["rules_matched"] is None
        assert marker not in repr(history.rows)


def _with_span_id_of(theirs: TraceBundle) -> TraceBundle:
    """A bundle of workspace OURS whose first span has the id of `theirs`'s first span."""
    colliding = make_bundle(workspace_id=OURS)
    colliding.spans[0] = msgspec.structs.replace(
        colliding.spans[0], span_id=theirs.spans[0].span_id
    )
    return colliding


async def _span_owners(engine: AsyncEngine, span_id: str) -> list[tuple[str, str]]:
    rows = await fetch(
        engine, "SELECT workspace_id, trace_id FROM spans WHERE span_id = :s", s=span_id
    )
    return sorted((row.workspace_id, row.trace_id) for row in rows)


async def test_the_same_span_id_under_another_trace_is_another_span(engine: AsyncEngine) -> None:
    """A span's key is its trace and its id on both backends (on Postgres the trace tables are
    partitioned by trace, migration 0019; on SQLite since migration 0026), so the same span id
    under another trace is another row: both are kept, each read only under its own trace and
    workspace."""
    theirs = make_bundle(workspace_id=THEIRS)
    await BatchWriter(engine).write([theirs])
    colliding = _with_span_id_of(theirs)

    recorder = Recorder(engine, flush_interval=0.01)
    await recorder.start()
    recorder.record(colliding)
    await recorder.stop()

    assert recorder.stats.dropped == 0
    assert recorder.stats.written_bundles == 1
    assert await count(engine, "traces") == 2
    assert await _span_owners(engine, theirs.spans[0].span_id) == sorted(
        [(THEIRS, theirs.trace.trace_id), (OURS, colliding.trace.trace_id)]
    )


async def test_a_replay_writes_a_span_whose_id_another_trace_holds(engine: AsyncEngine) -> None:
    """The careful path (a replayed spill file) keys spans as the table does: trace and id."""
    theirs = make_bundle(workspace_id=THEIRS)
    writer = BatchWriter(engine)
    await writer.write([theirs])
    colliding = _with_span_id_of(theirs)
    counts = await writer.write([colliding], skip_existing=True)
    assert (counts["traces"], counts["spans"]) == (1, len(colliding.spans))
    again = await writer.write([colliding], skip_existing=True)
    assert (again["traces"], again["spans"]) == (0, 0)
    assert await _span_owners(engine, theirs.spans[0].span_id) == sorted(
        [(THEIRS, theirs.trace.trace_id), (OURS, colliding.trace.trace_id)]
    )


async def test_an_id_stored_for_another_workspace_is_not_taken_as_already_stored(
    engine: AsyncEngine,
) -> None:
    """The careful path skips rows already stored (a replayed spill file); a row whose id is
    stored under another workspace is not one of them: its bundle is refused and counted, never
    written in part. On Postgres a decision's key is its trace and its id (migration 0019), so
    the same decision id under another trace is another row there: both are kept."""
    theirs = make_bundle(workspace_id=THEIRS)
    await BatchWriter(engine).write([theirs])
    shared = theirs.decisions[0].decision_id
    colliding = make_bundle(workspace_id=OURS)
    colliding.decisions[0] = msgspec.structs.replace(colliding.decisions[0], decision_id=shared)
    fine = make_bundle(workspace_id=OURS)

    observer = RecordingObserver()
    recorder = Recorder(engine, observer=observer, flush_interval=0.01)
    await recorder.start()
    recorder.record(colliding)
    recorder.record(fine)
    await recorder.stop()

    if engine.dialect.name == "postgresql":
        assert recorder.stats.dropped == 0
        assert recorder.stats.written_bundles == 2
        rows = await fetch(
            engine, "SELECT workspace_id, trace_id FROM decisions WHERE decision_id = :d", d=shared
        )
        assert sorted((row.workspace_id, row.trace_id) for row in rows) == sorted(
            [(THEIRS, theirs.trace.trace_id), (OURS, colliding.trace.trace_id)]
        )
        return
    assert recorder.stats.dropped == 1
    assert observer.dropped_counts == [1]
    assert recorder.stats.written_bundles == 1
    stored = await fetch(engine, "SELECT trace_id FROM traces WHERE workspace_id = :w", w=OURS)
    assert [row.trace_id for row in stored] == [fine.trace.trace_id]
    for table in ("spans", "decisions", "ai_interactions"):
        rows = await fetch(
            engine, f"SELECT 1 FROM {table} WHERE trace_id = :t", t=colliding.trace.trace_id
        )
        assert rows == [], table
    (decision,) = await fetch(
        engine, "SELECT workspace_id, trace_id FROM decisions WHERE decision_id = :d", d=shared
    )
    assert (decision.workspace_id, decision.trace_id) == (THEIRS, theirs.trace.trace_id)


async def test_rows_already_stored_for_the_same_trace_are_still_skipped(
    engine: AsyncEngine,
) -> None:
    bundles = [make_bundle(workspace_id=OURS) for _ in range(2)]
    writer = BatchWriter(engine)
    await writer.write(bundles[:1])
    counts = await writer.write(bundles, skip_existing=True)
    assert (counts["traces"], counts["spans"], counts["ai_interactions"]) == (1, 2, 1)
    assert await count(engine, "traces") == 2

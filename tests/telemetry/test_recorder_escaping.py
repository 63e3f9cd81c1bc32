"""Characters Postgres cannot store (NUL, lone surrogates) cost no record, on either backend."""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.recorder import Recorder
from telemetry.records import GuardrailViolationRecord, TraceBundle
from telemetry.schema import (
    ai_interactions,
    decisions,
    guardrail_violations,
    spans,
    traces,
    usage_breakdowns,
)
from tests.telemetry import (
    RecordingObserver,
    count,
    fetch_table,
    make_bundle,
    requests_per_grain,
    rollup_rows,
)

NUL = "\x00"
ESCAPED = "\\u0000"  # the six characters a NUL is stored as


def _with_nul_everywhere(bundle: TraceBundle) -> TraceBundle:
    """NUL in a value of every table, in text columns, JSON values and JSON object keys."""
    trace = bundle.trace
    trace.end_user = f"nul-user{NUL}end"
    trace.route = f"/v1/chat{NUL}/completions"
    trace.requested_model = f"nul-model{NUL}"
    trace.error_message = f"nul-error{NUL}"
    trace.tags = [f"nul-tag{NUL}"]
    trace.metadata = {f"nul-key{NUL}": f"nul-value{NUL}", "plain": ["ok", f"nul-item{NUL}"]}
    bundle.spans[0].attributes = {"gen_ai.request.model": f"nul-model{NUL}"}
    bundle.spans[0].events = [{"name": f"nul-event{NUL}"}]
    bundle.decisions[0].rule_name = f"nul-rule{NUL}"
    bundle.decisions[0].input = {"user": f"nul-user{NUL}end"}
    bundle.decisions[0].reasoning = f"nul-reason{NUL}"
    interaction = bundle.interactions[0]
    interaction.requested_model = f"nul-model{NUL}"
    interaction.prompt = [{"role": "user", "content": f"nul-prompt{NUL}text"}]
    interaction.response = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"function": {"name": "f", "arguments": f'{{"a": "nul-arg{NUL}"}}'}}],
    }
    bundle.violations = [
        GuardrailViolationRecord(
            violation_id=trace.trace_id,
            trace_id=trace.trace_id,
            workspace_id=trace.workspace_id,
            guardrail=f"nul-guard{NUL}",
            kind="deny_list",
            direction="input",
            action="log",
            entities={f"NUL{NUL}WORD": 1},
            score=1.0,
            latency_us=3.0,
            created_at=trace.started_at,
        )
    ]
    return bundle


async def test_nul_in_every_table_is_stored_escaped_and_marked(engine: AsyncEngine) -> None:
    observer = RecordingObserver()
    recorder = Recorder(engine, observer=observer, flush_interval=0.01)
    await recorder.start()
    plain = [make_bundle(cost=Decimal("0.25")) for _ in range(3)]
    marked = _with_nul_everywhere(make_bundle(cost=Decimal("0.5")))
    for bundle in (plain[0], marked, plain[1], plain[2]):
        recorder.record(bundle)
    await recorder.stop()

    assert recorder.stats.dropped == 0 and observer.dropped_counts == []
    assert recorder.stats.written_bundles == 4
    stored = {row.trace_id: row for row in await fetch_table(engine, traces)}
    assert set(stored) == {b.trace.trace_id for b in (*plain, marked)}
    assert [stored[b.trace.trace_id].escaped for b in plain] == [False, False, False]
    row = stored[marked.trace.trace_id]
    assert row.escaped is True
    assert row.end_user == f"nul-user{ESCAPED}end"
    assert row.route == f"/v1/chat{ESCAPED}/completions"
    assert row.requested_model == f"nul-model{ESCAPED}"
    assert row.error_message == f"nul-error{ESCAPED}"
    assert row.tags == [f"nul-tag{ESCAPED}"]
    assert row.metadata == {
        f"nul-key{ESCAPED}": f"nul-value{ESCAPED}",
        "plain": ["ok", f"nul-item{ESCAPED}"],
    }

    span = next(s for s in await fetch_table(engine, spans) if s.span_id == marked.spans[0].span_id)
    assert span.attributes == {"gen_ai.request.model": f"nul-model{ESCAPED}"}
    assert span.events == [{"name": f"nul-event{ESCAPED}"}]
    decision = next(
        d for d in await fetch_table(engine, decisions) if d.trace_id == marked.trace.trace_id
    )
    assert decision.rule_name == f"nul-rule{ESCAPED}"
    assert decision.input == {"user": f"nul-user{ESCAPED}end"}
    assert decision.reasoning == f"nul-reason{ESCAPED}"
    interaction = next(
        i for i in await fetch_table(engine, ai_interactions) if i.trace_id == marked.trace.trace_id
    )
    assert interaction.requested_model == f"nul-model{ESCAPED}"
    assert interaction.prompt == [{"role": "user", "content": f"nul-prompt{ESCAPED}text"}]
    assert interaction.response["tool_calls"][0]["function"]["arguments"] == (
        f'{{"a": "nul-arg{ESCAPED}"}}'
    )
    assert interaction.cost_usd == Decimal("0.5")
    (violation,) = await fetch_table(engine, guardrail_violations)
    assert violation.guardrail == f"nul-guard{ESCAPED}"
    assert violation.entities == {f"NUL{ESCAPED}WORD": 1}

    rollups = {r.model: r for r in await rollup_rows(engine)}
    assert rollups["gpt-4o-mini"].requests == 3
    assert rollups[f"nul-model{ESCAPED}"].requests == 1
    assert rollups[f"nul-model{ESCAPED}"].cost_usd == Decimal("0.5")
    assert await requests_per_grain(engine) == {"day": 4, "hour": 4, "minute": 4}
    named = {
        (b.kind, b.name, b.detail): b.events
        for b in await fetch_table(engine, usage_breakdowns)
        if b.grain == "hour"
    }
    assert named[("tag", "prod", "")] == 3
    assert named[("tag", f"nul-tag{ESCAPED}", "")] == 1
    assert named[("end_user", f"nul-user{ESCAPED}end", "")] == 1
    assert named[("guardrail", f"nul-guard{ESCAPED}", "log")] == 1
    assert named[("entity", f"nul-guard{ESCAPED}", f"NUL{ESCAPED}WORD")] == 1


async def test_lone_surrogates_are_stored_escaped(engine: AsyncEngine) -> None:
    recorder = Recorder(engine, flush_interval=0.01)
    await recorder.start()
    bundle = make_bundle()
    bundle.trace.end_user = "half-emoji-\ud83d"
    bundle.interactions[0].response = {"content": "low-\udc00-half"}
    recorder.record(bundle)
    recorder.record(make_bundle())
    await recorder.stop()
    assert recorder.stats.dropped == 0
    (row,) = [r for r in await fetch_table(engine, traces) if r.trace_id == bundle.trace.trace_id]
    assert (row.end_user, row.escaped) == ("half-emoji-\\ud83d", True)
    (interaction,) = [
        i for i in await fetch_table(engine, ai_interactions) if i.trace_id == row.trace_id
    ]
    assert interaction.response == {"content": "low-\\udc00-half"}


async def test_text_that_only_looks_escaped_is_kept_as_it_is(engine: AsyncEngine) -> None:
    recorder = Recorder(engine, flush_interval=0.01)
    await recorder.start()
    bundle = make_bundle()
    bundle.trace.end_user = "literal-\\u0000-backslash"
    bundle.interactions[0].prompt = [{"role": "user", "content": "C:\\path\\u0000x"}]
    recorder.record(bundle)
    await recorder.stop()
    (row,) = await fetch_table(engine, traces)
    assert (row.end_user, row.escaped) == ("literal-\\u0000-backslash", False)
    (interaction,) = await fetch_table(engine, ai_interactions)
    assert interaction.prompt == [{"role": "user", "content": "C:\\path\\u0000x"}]


async def test_an_escaped_value_longer_than_its_column_is_cut_not_lost(
    engine: AsyncEngine,
) -> None:
    recorder = Recorder(engine, flush_interval=0.01)
    await recorder.start()
    bundle = make_bundle()
    bundle.trace.end_user = NUL * 200  # 200 characters fit in 256; escaped they are 1,200
    recorder.record(bundle)
    await recorder.stop()
    assert recorder.stats.dropped == 0
    (row,) = await fetch_table(engine, traces)
    assert row.escaped is True
    assert row.end_user.startswith(ESCAPED * 10)
    assert NUL not in row.end_user


async def test_many_bad_bundles_in_one_batch_cost_only_themselves(engine: AsyncEngine) -> None:
    """Bundles the database refuses whatever is done to them are dropped one by one; the
    batch around them is written in a few smaller batches, not given up."""
    observer = RecordingObserver()
    recorder = Recorder(engine, observer=observer, batch_size=64, flush_interval=0.05)
    await recorder.start()
    bundles = [make_bundle() for _ in range(64)]
    refused = {3, 40}
    for index in refused:
        bundles[index].trace.route = None  # type: ignore[assignment]  # NOT NULL everywhere
    for index in (10, 50):
        _with_nul_everywhere(bundles[index])
    for bundle in bundles:
        recorder.record(bundle)
    await recorder.stop()
    assert recorder.stats.dropped == 2 and sum(observer.dropped_counts) == 2
    assert await count(engine, "traces") == 62
    assert await count(engine, "ai_interactions") == 62
    async with engine.connect() as connection:
        escaped = await connection.scalar(
            sa.select(sa.func.count()).select_from(traces).where(traces.c.escaped)
        )
    assert await requests_per_grain(engine) == {"day": 62, "hour": 62, "minute": 62}
    assert escaped == 2

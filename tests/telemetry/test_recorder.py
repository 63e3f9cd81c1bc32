"""The recorder against real databases: what lands, roll-ups, shutdown, back-pressure."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.db import create_engine, is_postgres
from telemetry.recorder import Recorder
from telemetry.records import TraceBundle
from telemetry.schema import (
    ROLLUP_BUCKET_COLUMNS,
    ai_interactions,
    decisions,
    spans,
    traces,
)
from tests.telemetry import (
    MINUTE,
    RecordingObserver,
    as_utc,
    count,
    fetch,
    fetch_table,
    make_bundle,
    requests_per_grain,
    rollup_rows,
)


def _rollup_counts(row: object) -> list[int]:
    return [int(getattr(row, name)) for name in ROLLUP_BUCKET_COLUMNS]


def _counts(**filled: int) -> list[int]:
    """Latency bucket counts, all 0 but those named."""
    assert set(filled) <= set(ROLLUP_BUCKET_COLUMNS)
    return [filled.get(name, 0) for name in ROLLUP_BUCKET_COLUMNS]


async def test_every_row_lands_with_its_values(engine: AsyncEngine) -> None:
    observer = RecordingObserver()
    recorder = Recorder(engine, observer=observer, flush_interval=0.01)
    await recorder.start()
    priced = make_bundle(cost=Decimal("0.0000123456"), latency_ms=250.0)
    unpriced = make_bundle(cost=None, started_at=MINUTE + 10.25)
    third = make_bundle(api_key_id=None, cost=Decimal("3.1400000001"))
    for bundle in (priced, unpriced, third):
        assert recorder.record(bundle) is True
    await recorder.flush()

    assert await count(engine, "traces") == 3
    assert await count(engine, "spans") == 6
    assert await count(engine, "decisions") == 3
    assert await count(engine, "ai_interactions") == 3

    stored_traces = {row.trace_id: row for row in await fetch_table(engine, traces)}
    trace = stored_traces[priced.trace.trace_id]
    assert as_utc(trace.started_at) == datetime.fromtimestamp(priced.trace.started_at, UTC)
    assert as_utc(trace.ended_at) == datetime.fromtimestamp(priced.trace.ended_at, UTC)
    assert trace.duration_ms == pytest.approx(priced.trace.duration_ms)
    assert trace.tags == ["prod", "ü-tag"]
    assert trace.metadata == {"team": "search", "nested": {"n": 1, "list": [1, 2.5, None]}}
    assert trace.features == {"token_estimate": 42, "has_tools": False}
    assert trace.stream is False
    assert trace.end_user == "user-7"
    assert trace.overhead_ms == pytest.approx(0.42)

    stored_spans = {row.span_id: row for row in await fetch_table(engine, spans)}
    span = stored_spans[priced.spans[0].span_id]
    assert span.attributes == {"gen_ai.system": "openai"}
    assert span.events == [{"name": "first_token", "at_ms": 12.5}]
    assert span.duration_ms == pytest.approx(250.0)
    child = stored_spans[priced.spans[1].span_id]
    assert child.parent_span_id == span.span_id
    assert child.attributes == {} and child.events == []

    (decision,) = [
        row for row in await fetch_table(engine, decisions) if row.trace_id == priced.trace.trace_id
    ]
    assert decision.input == {"model": "gpt-4o-mini"}
    assert decision.output == {"provider": "openai"}
    assert decision.rule_name == "cheap first"
    assert decision.evaluation_us == pytest.approx(17.5)

    stored = {row.trace_id: row for row in await fetch_table(engine, ai_interactions)}
    assert stored[priced.trace.trace_id].cost_usd == Decimal("0.0000123456")
    assert stored[third.trace.trace_id].cost_usd == Decimal("3.1400000001")
    assert stored[unpriced.trace.trace_id].cost_usd is None
    interaction = stored[priced.trace.trace_id]
    assert interaction.latency_ms == pytest.approx(250.0)
    assert as_utc(interaction.started_at) == datetime.fromtimestamp(
        priced.interactions[0].started_at, UTC
    )
    assert interaction.prompt == [{"role": "user", "content": "hi"}]
    assert interaction.response is None  # SQL NULL, not JSON null
    assert interaction.cache_hit is False
    assert stored[third.trace.trace_id].api_key_id is None

    stats = recorder.stats
    assert (stats.enqueued, stats.written_bundles, stats.dropped, stats.queue_depth) == (3, 3, 0, 0)
    assert observer.rows["traces"] == 3 and observer.rows["spans"] == 6
    assert sum(bundles for _, bundles in observer.batches) == 3
    await recorder.stop()


async def test_json_null_response_is_sql_null(engine: AsyncEngine) -> None:
    recorder = Recorder(engine, flush_interval=0.01)
    await recorder.start()
    recorder.record(make_bundle())
    await recorder.stop()
    rows = await fetch(engine, "SELECT count(*) FROM ai_interactions WHERE response IS NULL")
    assert rows[0][0] == 1


def _lasting(bundle: TraceBundle, milliseconds: int) -> TraceBundle:
    """The bundle's request made to take exactly `milliseconds` (a fraction of a second with an
    exact binary form, so the bucket bound it meets is met exactly)."""
    bundle.trace.started_at = MINUTE + 1.0
    bundle.trace.ended_at = MINUTE + 1.0 + milliseconds / 1000
    return bundle


async def test_rollups_of_two_batches_in_one_minute_add_up(engine: AsyncEngine) -> None:
    recorder = Recorder(engine, flush_interval=0.01)
    await recorder.start()
    first = [
        _lasting(make_bundle(cost=Decimal("0.0000000001")), 125),
        _lasting(make_bundle(cost=Decimal("0.5")), 250),  # in le_250: bounds are inclusive
        make_bundle(latency_ms=400_000.0, cost=None, status="error"),  # le_inf, its own row
    ]
    for bundle in first:
        recorder.record(bundle)
    await recorder.flush()
    second = [
        _lasting(make_bundle(cost=None, prompt_tokens=None, completion_tokens=None), 500),
        _lasting(make_bundle(cost=Decimal("1.25"), cache_hit=True, cached_tokens=4), 250),
        make_bundle(started_at=MINUTE + 61.0, latency_ms=20.0),  # the next minute
        make_bundle(api_key_id=None, latency_ms=20.0),  # another key: another row
    ]
    for bundle in second:
        recorder.record(bundle)
    await recorder.stop()

    rows = {
        (as_utc(row.bucket_start), row.api_key_id, row.status, row.cache_hit): row
        for row in await rollup_rows(engine)
    }
    minute = datetime.fromtimestamp(MINUTE, UTC)
    assert set(rows) == {
        (minute, "key1", "ok", False),
        (minute, "key1", "error", False),
        (minute, "key1", "ok", True),
        (datetime.fromtimestamp(MINUTE + 60, UTC), "key1", "ok", False),
        (minute, "", "ok", False),
    }
    main = rows[(minute, "key1", "ok", False)]
    assert main.workspace_id == first[0].trace.workspace_id
    assert (main.source, main.provider, main.model, main.served_model, main.deployment) == (
        "proxy", "openai", "gpt-4o-mini", "gpt-4o-mini-2024", "default",
    )  # fmt: skip
    assert (main.requests, main.errors, main.cache_hits, main.attempts) == (3, 0, 0, 3)
    assert (main.prompt_tokens, main.completion_tokens) == (20, 10)  # None counts as 0
    assert main.cost_usd == Decimal("0.5000000001")  # the unknown cost adds nothing...
    assert main.unpriced == 1  # ...and is counted as unknown
    assert main.latency_ms_sum == 125 + 250 + 500
    assert _rollup_counts(main) == _counts(latency_le_125=1, latency_le_250=1, latency_le_500=1)
    assert (main.ttft_count, main.ttft_ms_sum) == (3, pytest.approx(37.5))
    assert (main.overhead_count, main.overhead_ms_sum) == (3, pytest.approx(1.26))
    failed = rows[(minute, "key1", "error", False)]
    assert (failed.requests, failed.errors, failed.unpriced, failed.ttft_count) == (1, 1, 1, 0)
    assert _rollup_counts(failed) == _counts(latency_le_inf=1)
    cached = rows[(minute, "key1", "ok", True)]
    assert (cached.requests, cached.cache_hits, cached.cached_tokens, cached.attempts) == (
        1, 1, 4, 0,
    )  # fmt: skip
    assert cached.cost_usd == Decimal("1.25")
    assert rows[(minute, "", "ok", False)].requests == 1
    assert _rollup_counts(rows[(minute, "", "ok", False)]) == _counts(latency_le_25=1)
    assert await requests_per_grain(engine) == {"day": 7, "hour": 7, "minute": 7}


async def test_concurrent_recorders_add_into_the_same_rollup_rows(
    migrated_database_url: str, engine: AsyncEngine
) -> None:
    workers = 4
    per_worker = 60
    engines = [create_engine(migrated_database_url) for _ in range(workers)]
    recorders = [Recorder(e, batch_size=7, flush_interval=0.001) for e in engines]
    for recorder in recorders:
        await recorder.start()

    async def produce(recorder: Recorder) -> None:
        for n in range(per_worker):
            recorder.record(make_bundle(cost=Decimal("0.0000000003"), latency_ms=40.0))
            if n % 5 == 0:
                await asyncio.sleep(0)

    await asyncio.gather(*(produce(r) for r in recorders))
    await asyncio.gather(*(r.stop() for r in recorders))
    for e in engines:
        await e.dispose()

    total = workers * per_worker
    for grain in ("minute", "hour", "day"):
        (row,) = await rollup_rows(engine, grain)
        assert row.requests == total
        assert row.prompt_tokens == 10 * total
        assert row.cost_usd == Decimal("0.0000000003") * total
        assert _rollup_counts(row) == _counts(latency_le_50=total)  # 40 < 43 <= 50
    assert await count(engine, "ai_interactions") == total


async def test_stop_writes_everything_without_waiting_for_the_interval(
    engine: AsyncEngine,
) -> None:
    recorder = Recorder(engine, flush_interval=60.0, batch_size=50)
    await recorder.start()
    bundles = [make_bundle() for _ in range(120)]
    for bundle in bundles:
        assert recorder.record(bundle)
    await asyncio.wait_for(recorder.stop(), 20)
    assert await count(engine, "traces") == 120
    assert recorder.stats.written_bundles == 120
    assert recorder.record(make_bundle()) is False  # a stopped recorder accepts nothing more


async def test_full_queue_drops_and_says_so(engine: AsyncEngine) -> None:
    observer = RecordingObserver()
    recorder = Recorder(engine, queue_size=3, observer=observer)
    accepted = [recorder.record(make_bundle()) for _ in range(5)]
    assert accepted == [True, True, True, False, False]
    assert recorder.stats.dropped == 2
    assert recorder.stats.queue_depth == 3
    assert observer.dropped_counts == [1, 1]
    assert observer.enqueued_depths == [1, 2, 3]
    await recorder.start()
    await recorder.stop()
    assert await count(engine, "traces") == 3


class _FailingOnEnqueue(RecordingObserver):
    def enqueued(self, depth: int) -> None:
        super().enqueued(depth)
        raise RuntimeError("observer broke")


async def test_an_observer_that_fails_on_enqueue_does_not_refuse_the_bundle(
    engine: AsyncEngine,
) -> None:
    observer = _FailingOnEnqueue()
    recorder = Recorder(engine, observer=observer)
    assert [recorder.record(make_bundle()) for _ in range(2)] == [True, True]
    assert observer.enqueued_depths == [1, 2]
    await recorder.start()
    await recorder.stop()
    assert await count(engine, "traces") == 2


def _deeply_nested(depth: int) -> dict[str, object]:
    root: dict[str, object] = {}
    node = root
    for _ in range(depth):
        child: dict[str, object] = {}
        node["a"] = child
        node = child
    return root


def _missing_route(bundle: TraceBundle) -> None:
    bundle.trace.route = None  # type: ignore[assignment]  # NOT NULL in every database


def _unencodable_metadata(bundle: TraceBundle) -> None:
    bundle.trace.metadata = _deeply_nested(100_000)


@pytest.mark.parametrize("spoil", [_missing_route, _unencodable_metadata])
async def test_a_bundle_the_database_refuses_does_not_sink_its_batch(
    engine: AsyncEngine, spoil: Callable[[TraceBundle], None]
) -> None:
    observer = RecordingObserver()
    recorder = Recorder(engine, observer=observer, flush_interval=0.01)
    await recorder.start()
    good = [make_bundle() for _ in range(3)]
    bad = make_bundle()
    spoil(bad)
    for bundle in (good[0], bad, good[1], good[2]):
        recorder.record(bundle)
    await recorder.stop()
    assert await count(engine, "traces") == 3
    assert await count(engine, "ai_interactions") == 3
    (row,) = await rollup_rows(engine)
    assert row.requests == 3  # the refused bundle is not counted either
    assert await requests_per_grain(engine) == {"day": 3, "hour": 3, "minute": 3}
    assert recorder.stats.written_bundles == 3
    assert recorder.stats.dropped == 1
    assert observer.dropped_counts == [1]


async def test_a_duplicate_batch_writes_nothing_twice(engine: AsyncEngine) -> None:
    recorder = Recorder(engine, flush_interval=0.01)
    await recorder.start()
    bundles = [make_bundle() for _ in range(4)]
    for bundle in bundles:
        recorder.record(bundle)
    await recorder.flush()
    again = [msgspec.structs.replace(b) for b in bundles[:2]] + [make_bundle()]
    for bundle in again:
        recorder.record(bundle)
    await recorder.stop()
    assert await count(engine, "traces") == 5
    assert await count(engine, "spans") == 10
    (row,) = await rollup_rows(engine)
    assert row.requests == 5
    assert await requests_per_grain(engine) == {"day": 5, "hour": 5, "minute": 5}
    assert recorder.stats.dropped == 0


async def test_flush_before_start_is_an_error(engine: AsyncEngine) -> None:
    recorder = Recorder(engine)
    recorder.record(make_bundle())
    with pytest.raises(RuntimeError, match="start"):
        await recorder.flush()


def test_bad_sizes_are_refused(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(ValueError, match="queue_size"):
        Recorder(engine, queue_size=0)


async def test_strings_longer_than_their_columns_are_cut_not_lost(engine: AsyncEngine) -> None:
    recorder = Recorder(engine, flush_interval=0.01)
    await recorder.start()
    long = make_bundle(status="error")
    long.trace.error_type = "e" * 500  # the column holds 64
    long.trace.end_user = "u" * 1000  # the column holds 256
    recorder.record(long)
    recorder.record(make_bundle())
    await recorder.stop()
    assert recorder.stats.dropped == 0
    stored = {row.trace_id: row for row in await fetch_table(engine, traces)}
    row = stored[long.trace.trace_id]
    if is_postgres(engine):  # SQLite does not enforce lengths and keeps the whole value
        assert (len(row.error_type), len(row.end_user)) == (64, 256)
    assert row.error_type.startswith("eee") and row.end_user.startswith("uuu")


async def test_a_recorder_far_behind_holds_requests_back_until_it_catches_up(
    engine: AsyncEngine,
) -> None:
    recorder = Recorder(engine, queue_size=1000, batch_size=8, flush_interval=0.01)
    high_water = 64  # max(batch_size * 8, queue_size // 20)
    for _ in range(high_water):
        assert recorder.record(make_bundle())
    assert not recorder.congested
    assert recorder.record(make_bundle())
    assert recorder.congested  # past the mark, and nothing writes yet
    waiter = asyncio.create_task(recorder.room())
    await asyncio.sleep(0.05)
    assert not waiter.done()  # held back while the writer is stopped
    await recorder.start()
    await asyncio.wait_for(waiter, 10)
    assert not recorder.congested
    await recorder.stop()
    assert recorder.stats.written_bundles == high_water + 1


class HeldWriter:
    """Writes nothing until let go; reports a quarter of each batch done as soon as it has it."""

    def __init__(self) -> None:
        self.go = asyncio.Event()
        self.batches: list[int] = []

    async def write(
        self,
        bundles: Sequence[TraceBundle],
        *,
        skip_existing: bool = False,
        progress: Callable[[float], None] | None = None,
    ) -> dict[str, int]:
        self.batches.append(len(bundles))
        if progress is not None:
            progress(0.25)
        await self.go.wait()
        return {"traces": len(bundles)}

    async def mark_for_evaluation(self, bundles: Sequence[TraceBundle]) -> list[TraceBundle]:
        return list(bundles)


async def test_the_batch_being_written_counts_against_the_mark_until_written(
    engine: AsyncEngine,
) -> None:
    writer = HeldWriter()
    recorder = Recorder(engine, queue_size=1000, batch_size=8, flush_interval=0.01, writer=writer)
    high_water = 64
    for _ in range(high_water + 10):
        recorder.record(make_bundle())
    await recorder.start()
    for _ in range(100):
        if writer.batches:
            break
        await asyncio.sleep(0.01)
    assert writer.batches == [32]  # behind: four batches in one
    # 42 queued and 24 of the 32 in hand still owed: past the mark, which the queue alone is not.
    assert recorder.congested
    writer.go.set()
    await recorder.flush()
    assert not recorder.congested
    await recorder.stop()
    assert recorder.stats.written_bundles == high_water + 10


async def test_records_arriving_while_it_stops_are_written_or_refused_never_lost(
    engine: AsyncEngine,
) -> None:
    recorder = Recorder(engine, flush_interval=0.001, batch_size=4)
    await recorder.start()
    for _ in range(20):
        assert recorder.record(make_bundle())
    stopping = asyncio.create_task(recorder.stop())
    accepted = 20
    for _ in range(200):
        accepted += recorder.record(make_bundle())
        await asyncio.sleep(0)
    await stopping
    assert not recorder.record(make_bundle())  # stopped: refused and counted
    assert recorder.stats.written_bundles == accepted
    assert recorder.stats.dropped == 200 + 1 - (accepted - 20)
    assert await count(engine, "traces") == accepted

"""Feed a real `Recorder` synthetic bundles at a set rate, not through HTTP, and watch it write.

Open loop: every few milliseconds the feeder enqueues the bundles the clock says are due, whether
or not the writer keeps up (a gateway's requests do not wait for the recorder unless it is past
its high-water mark). Each step reports what was offered and written, the queue over time, drops
and the share of the time the queue was past its high-water mark (when the gateway would have
held requests back), each batch write's latency, and the CPU of this process, of the feeder
within it, of the database server and of the whole machine. After the last step the recorder is
stopped and the rows in the database are counted per table against the rows enqueued.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from benchmarks.ingest_bundles import TABLES, BundleFactory, BundleStream, rows_of
from benchmarks.ingest_probes import MachineCpu, ServerCpu
from benchmarks.stats import percentile
from telemetry.recorder import Recorder
from telemetry.writers import root_cause

FEED_TICK_S = 0.005
SAMPLE_EVERY_S = 0.25
GROWTH_ALLOWED = 0.05
"""A step keeps up when, over its second half, the queue grew by less than this share of the
bundles offered meanwhile (the first half fills it to its working depth: a batch collecting
while another is written)."""


@dataclass(frozen=True, slots=True)
class RecorderSettings:
    queue_size: int = 100_000
    batch_size: int = 256
    flush_interval: float = 0.2


class IngestObserver:
    """The recorder's own account of what it wrote, dropped and spilled (`RecorderObserver`)."""

    def __init__(self) -> None:
        self.rows: dict[str, int] = {}
        self.batches: list[tuple[float, int]] = []  # (seconds, bundles)
        self.dropped_count = 0
        self.spilled_count = 0
        self.failures: list[str] = []
        """The type of each failed write's error (retried, or spilled)."""

    def enqueued(self, depth: int) -> None:
        pass

    def dropped(self, count: int) -> None:
        self.dropped_count += count

    def written(self, table: str, rows: int) -> None:
        self.rows[table] = self.rows.get(table, 0) + rows

    def batch_written(self, seconds: float, bundles: int) -> None:
        self.batches.append((seconds, bundles))

    def spilled(self, bundles: int) -> None:
        self.spilled_count += bundles

    def quarantined(self, lines: int) -> None:
        pass

    def write_failed(self, error: BaseException) -> None:
        self.failures.append(type(root_cause(error)).__name__)


@dataclass(frozen=True, slots=True)
class Sample:
    at_s: float
    depth: int
    congested: bool


@dataclass
class StepResult:
    """One rate held for `seconds`."""

    target_rate: float
    """Interactions a second offered."""
    seconds: float
    offered_bundles: int = 0
    offered_interactions: int = 0
    """Those of every bundle offered, dropped or not."""
    enqueued_bundles: int = 0
    enqueued_interactions: int = 0
    enqueued_rows: int = 0
    """Rows of the five append-only tables the enqueued bundles hold."""
    dropped: int = 0
    written_bundles: int = 0
    """Written while the step's feed ran."""
    written_interactions: int = 0
    written_rows: int = 0
    """Rows of the five append-only tables written while the feed ran."""
    drain_s: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    batch_ms: list[float] = field(default_factory=list)
    batch_bundles: list[int] = field(default_factory=list)
    process_cpu_s: float = 0.0
    feeder_s: float = 0.0
    server_cpu_s: float = 0.0
    machine_busy: float = 0.0
    longest_stall_ms: float = 0.0
    """The feeder's longest wait past its tick: how long the event loop was held."""

    @property
    def offered_rate(self) -> float:
        return self.offered_interactions / self.seconds

    @property
    def written_rate(self) -> float:
        return self.written_interactions / self.seconds

    @property
    def congested_share(self) -> float:
        return sum(s.congested for s in self.samples) / len(self.samples) if self.samples else 0.0

    @property
    def max_depth(self) -> int:
        return max((s.depth for s in self.samples), default=0)

    @property
    def end_depth(self) -> int:
        return self.samples[-1].depth if self.samples else 0

    @property
    def queue_growth(self) -> float:
        """Bundles a second the queue grew by over the step's second half (the slope of a least
        squares line, so the sawtooth of batches taken off it averages out)."""
        half = [s for s in self.samples if s.at_s >= self.seconds / 2]
        if len(half) < 3:
            return 0.0
        slope, _ = statistics.linear_regression([s.at_s for s in half], [s.depth for s in half])
        return slope

    @property
    def kept_up(self) -> bool:
        """Nothing dropped, the queue never past its high-water mark, and not growing by the
        end: the queue stays bounded at this rate."""
        return (
            self.dropped == 0
            and self.congested_share == 0
            and self.queue_growth <= GROWTH_ALLOWED * self.enqueued_bundles / self.seconds
        )

    def cpu_us_per_interaction(self) -> tuple[float, float]:
        """CPU microseconds each written interaction (with its share of the bundle) cost the
        recorder (this process less the feeder) and the Postgres backends."""
        if not self.written_interactions:
            return 0.0, 0.0
        recorder = max(0.0, self.process_cpu_s - self.feeder_s)
        return (
            recorder * 1e6 / self.written_interactions,
            self.server_cpu_s * 1e6 / self.written_interactions,
        )

    def batch_percentile(self, q: float) -> float:
        return percentile(self.batch_ms, q) if self.batch_ms else 0.0


@dataclass
class IngestRun:
    steps: list[StepResult]
    enqueued_rows: dict[str, int]
    stored_rows: dict[str, int]
    rollup_requests: int
    """Requests counted in the minute roll-ups: one per trace written."""
    spilled: int
    write_failures: list[str]

    @property
    def rows_match(self) -> bool:
        return (
            self.enqueued_rows == self.stored_rows
            and self.rollup_requests == (self.enqueued_rows["traces"])
        )


async def count_rows(engine: AsyncEngine) -> tuple[dict[str, int], int]:
    """Rows in each append-only table, and the requests the minute roll-ups count."""
    async with engine.connect() as connection:
        counts = {
            table: int(
                (await connection.execute(sa.text(f"SELECT count(*) FROM {table}"))).scalar_one()
            )
            for table in TABLES
        }
        requests = (
            await connection.execute(
                sa.text(
                    "SELECT coalesce(sum(requests), 0) FROM usage_rollups WHERE grain = 'minute'"
                )
            )
        ).scalar_one()
    return counts, int(requests)


class _Feed:
    """Enqueues bundles at a rate; keeps the per-table rows of those the recorder took."""

    def __init__(self, recorder: Recorder, stream: BundleStream) -> None:
        self._recorder = recorder
        self._stream = stream
        self.enqueued_rows = dict.fromkeys(TABLES, 0)

    async def run(self, step: StepResult, bundles_per_s: float) -> None:
        loop = asyncio.get_running_loop()
        record, make = self._recorder.record, self._stream.next
        totals = [0] * len(TABLES)
        started = loop.time()
        sent = 0
        due_at = started
        while True:
            now = loop.time()
            step.longest_stall_ms = max(step.longest_stall_ms, (now - due_at) * 1000)
            elapsed = min(now - started, step.seconds)
            due = int(bundles_per_s * elapsed) - sent
            began = time.process_time()
            for _ in range(due):
                bundle = make()
                step.offered_interactions += len(bundle.interactions)
                if record(bundle):
                    step.enqueued_bundles += 1
                    for position, rows in enumerate(rows_of(bundle)):
                        totals[position] += rows
                else:
                    step.dropped += 1
            step.feeder_s += time.process_time() - began
            sent += due
            if elapsed >= step.seconds:
                break
            due_at = loop.time() + FEED_TICK_S
            await asyncio.sleep(FEED_TICK_S)
        step.offered_bundles = sent
        step.enqueued_interactions = totals[TABLES.index("ai_interactions")]
        step.enqueued_rows = sum(totals)
        for table, rows in zip(TABLES, totals, strict=True):
            self.enqueued_rows[table] += rows


async def _sample(recorder: Recorder, step: StepResult, started: float) -> None:
    while True:
        stats = recorder.stats
        step.samples.append(
            Sample(time.perf_counter() - started, stats.queue_depth, recorder.congested)
        )
        await asyncio.sleep(SAMPLE_EVERY_S)


async def _step(
    recorder: Recorder,
    feed: _Feed,
    observer: IngestObserver,
    server: ServerCpu,
    rate: float,
    seconds: float,
    interactions_per_bundle: float,
) -> StepResult:
    step = StepResult(target_rate=rate, seconds=seconds)
    rows_before = sum(observer.rows.get(t, 0) for t in TABLES)
    interactions_before = observer.rows.get("ai_interactions", 0)
    written_before = recorder.stats.written_bundles
    batches_before = len(observer.batches)
    server_before = await server.read()
    machine_before = MachineCpu.read()
    cpu_before = time.process_time()
    started = time.perf_counter()
    sampler = asyncio.create_task(_sample(recorder, step, started))
    try:
        await feed.run(step, rate / interactions_per_bundle)
    finally:
        sampler.cancel()
    step.process_cpu_s = time.process_time() - cpu_before
    step.machine_busy = MachineCpu.read().busy_share_since(machine_before)
    step.written_bundles = recorder.stats.written_bundles - written_before
    step.written_interactions = observer.rows.get("ai_interactions", 0) - interactions_before
    step.written_rows = sum(observer.rows.get(t, 0) for t in TABLES) - rows_before
    step.server_cpu_s = await server.read() - server_before
    drain_started = time.perf_counter()
    await recorder.flush()
    step.drain_s = time.perf_counter() - drain_started
    batches = observer.batches[batches_before:]
    step.batch_ms = [seconds * 1000 for seconds, _ in batches]
    step.batch_bundles = [bundles for _, bundles in batches]
    return step


async def run_ingest(
    engine: AsyncEngine,
    rates: Iterable[float],
    seconds: float,
    settings: RecorderSettings = RecorderSettings(),
    *,
    stop_after_behind: int = 0,
    on_step: Callable[[StepResult], None] | None = None,
) -> IngestRun:
    """Hold each rate (interactions a second) for `seconds`, draining the queue in between.
    With `stop_after_behind` (the ramp) the run ends after that many steps in a row were not
    kept up with: on a shared machine one step can miss by chance. `on_step` is given each step
    as it ends."""
    observer = IngestObserver()
    recorder = Recorder(
        engine,
        queue_size=settings.queue_size,
        batch_size=settings.batch_size,
        flush_interval=settings.flush_interval,
        observer=observer,
    )
    factory = BundleFactory()
    stream = BundleStream(factory)
    feed = _Feed(recorder, stream)
    server = ServerCpu(engine)
    rows_before, requests_before = await count_rows(engine)
    steps: list[StepResult] = []
    behind = 0
    await recorder.start()
    try:
        for rate in rates:
            step = await _step(
                recorder,
                feed,
                observer,
                server,
                rate,
                seconds,
                factory.mix.interactions_per_bundle,
            )
            steps.append(step)
            if on_step is not None:
                on_step(step)
            behind = 0 if step.kept_up else behind + 1
            if stop_after_behind and behind >= stop_after_behind:
                break
    finally:
        await recorder.stop()
    rows_after, requests_after = await count_rows(engine)
    return IngestRun(
        steps=steps,
        enqueued_rows=feed.enqueued_rows,
        stored_rows={t: rows_after[t] - rows_before[t] for t in TABLES},
        rollup_requests=requests_after - requests_before,
        spilled=observer.spilled_count,
        write_failures=observer.failures,
    )


def ramp_rates(start: float, factor: float, highest: float) -> list[float]:
    """start, start·factor, … up to `highest` (included when the steps miss it)."""
    if start <= 0 or factor <= 1:
        raise ValueError("the ramp needs a start above 0 and a factor above 1")
    rates: list[float] = []
    rate = start
    while rate < highest:
        rates.append(float(round(rate)))
        rate *= factor
    rates.append(float(round(highest)))
    return rates

"""`steerway demo-data`: write a made-up but realistic history straight into the database.

The history is simulated a few thousand requests at a time (`gateway.demo.simulator`) in a
worker thread while the rows of the previous ones are sent (`telemetry.bulk_load`: COPY on
Postgres, batched inserts on SQLite), all in one transaction: an interrupted run leaves nothing
behind. The rows, each trace's summary columns and status (`telemetry.rows`, `telemetry.summary`)
and the roll-ups (`telemetry.rollups.aggregate`) are made by the recorder's own code, so the
history reads exactly like recorded traffic.

A database that already holds traffic the command did not write is refused unless forced: demo
rows would mix with real ones in every list, dashboard and report. Demo rows carry a marker
(`demo_data: true` in a trace's features, a workspace's settings, a key's metadata).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.demo.cast import build_cast, burst_plan
from gateway.demo.database import (
    free_slugs,
    real_traffic,
    store_cast,
    store_spend,
    stored_demo_rows,
)
from gateway.demo.plants import Plant, plan_plants
from gateway.demo.rhythm import Rhythm
from gateway.demo.simulator import Simulator
from telemetry import rollups
from telemetry.bulk_load import BulkLoader, PreparedRows, RowsConflict
from telemetry.rows import (
    DECISION_COLUMNS,
    INTERACTION_COLUMNS,
    SPAN_COLUMNS,
    TRACE_COLUMNS,
    VIOLATION_COLUMNS,
    decision_row,
    interaction_row,
    span_row,
    trace_row,
    violation_row,
)

MAX_DAYS = 366
MAX_REQUESTS = 100_000_000
CAST_AGE = timedelta(days=30)
"""How long before the history begins its workspaces and keys were created."""


class DemoDataError(Exception):
    """The history cannot be written: the message says why and what to do."""


class HoldsRealTraffic(DemoDataError):
    pass


@dataclass(frozen=True, slots=True)
class DemoOptions:
    days: int
    requests: int
    seed: int
    end: datetime  # the history ends here (exclusive); whole minutes, UTC
    force: bool = False

    @property
    def start(self) -> datetime:
        return self.end - timedelta(days=self.days)


@dataclass(slots=True)
class Progress:
    traces: int = 0
    minutes_done: int = 0
    minutes: int = 0
    through: datetime | None = None  # the history is written up to here
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    waiting_for_rows: float = 0.0  # seconds the writer waited for the next hour's rows
    writing: float = 0.0  # seconds spent sending rows to the database


@dataclass(frozen=True, slots=True)
class DemoReport:
    traces: int
    rows: dict[str, int]
    workspaces: list[str]  # slugs
    keys: int
    start: datetime
    end: datetime
    seconds: float
    waiting_for_rows: float
    writing: float
    planted: tuple[Plant, ...] = ()  # the anomalies planted in the history (`demo_plants`)

    @property
    def traces_per_second(self) -> float:
        return self.traces / self.seconds if self.seconds > 0 else 0.0


def validate(days: int, requests: int) -> None:
    if not 1 <= days <= MAX_DAYS:
        raise DemoDataError(f"--days must be between 1 and {MAX_DAYS}, got {days}")
    if not 1 <= requests <= MAX_REQUESTS:
        raise DemoDataError(f"--requests must be between 1 and {MAX_REQUESTS:,}, got {requests}")


BLOCK_TRACES = 5_000
"""About this many traces are sent at once: each COPY or executemany has a cost of its own."""


def blocks(simulator: Simulator, size: int = BLOCK_TRACES) -> list[range]:
    """The history's minutes in consecutive runs of about `size` requests each."""
    found: list[range] = []
    first = total = 0
    minutes = simulator.rhythm.minutes
    for offset in range(minutes):
        total += simulator.requests_in(offset)
        if total >= size:
            found.append(range(first, offset + 1))
            first, total = offset + 1, 0
    if first < minutes:
        found.append(range(first, minutes))
    return found


class _Block:
    """Makes runs of minutes of the history into rows ready for the driver (in a worker thread,
    one run after another)."""

    def __init__(self, simulator: Simulator, loader: BulkLoader) -> None:
        self.simulator = simulator
        self.loader = loader
        self.name_caps = rollups.NameCaps()

    def rows(self, minutes: range) -> tuple[int, list[PreparedRows]]:
        bundles = self.simulator.minutes(minutes)
        spans, decisions, interactions, violations = [], [], [], []
        for bundle in bundles:
            spans.extend(bundle.spans)
            decisions.extend(bundle.decisions)
            interactions.extend(bundle.interactions)
            violations.extend(bundle.violations)
        prepare = self.loader.prepare
        return len(bundles), [
            prepare("traces", TRACE_COLUMNS, [trace_row(b) for b in bundles]),
            prepare("spans", SPAN_COLUMNS, [span_row(s) for s in spans]),
            prepare("decisions", DECISION_COLUMNS, [decision_row(d) for d in decisions]),
            prepare(
                "ai_interactions", INTERACTION_COLUMNS, [interaction_row(i) for i in interactions]
            ),
            prepare(
                "guardrail_violations", VIOLATION_COLUMNS, [violation_row(v) for v in violations]
            ),
            *self.loader.prepare_rollups(rollups.aggregate(bundles, self.name_caps)),
        ]


@contextlib.contextmanager
def bulk_mode(switch_interval: float = 0.0005) -> Iterator[None]:
    """The interpreter set for making millions of rows, and put back afterwards.

    The cyclic garbage collector is off: the rows form no cycles, reference counting frees
    them, and with thousands of requests' records alive each full collection walks them all
    (a third of the CPU time went there). The GIL switch interval is short: the event loop sending
    rows and the worker thread making the next ones take turns, and with the default 5 ms the
    loop waits that long each time the database has read what it was sent.
    """
    interval = sys.getswitchinterval()
    collecting = gc.isenabled()
    sys.setswitchinterval(switch_interval)
    gc.disable()
    try:
        yield
    finally:
        sys.setswitchinterval(interval)
        if collecting:
            gc.enable()


async def write_demo_data(
    engine: AsyncEngine,
    options: DemoOptions,
    progress: Callable[[Progress], None] | None = None,
) -> DemoReport:
    """Write the history `options` describe; raises `DemoDataError` (nothing written) when the
    database holds real traffic and `force` is off, or the history is already there."""
    validate(options.days, options.requests)
    with bulk_mode():
        return await _write_demo_data(engine, options, progress)


async def _write_demo_data(
    engine: AsyncEngine,
    options: DemoOptions,
    progress: Callable[[Progress], None] | None,
) -> DemoReport:
    began = time.perf_counter()
    start_minute = int(options.start.timestamp()) // 60
    minutes = options.days * 1440
    created_at = options.start - CAST_AGE
    plan = burst_plan(options.requests, options.days)
    try:
        async with engine.begin() as connection:
            found = await real_traffic(connection)
            if found is not None and not options.force:
                trace_id, started_at = found
                raise HoldsRealTraffic(
                    f"the database already holds traffic that demo-data did not write (trace "
                    f"{trace_id} of {started_at:%Y-%m-%d %H:%M} UTC, maybe more); the made-up "
                    "history would mix with it in the console, the dashboards and the reports. "
                    "Point STEERWAY_DATABASE_URL at an empty database, or add --force to write "
                    "it anyway"
                )
            known, taken = await stored_demo_rows(connection)
            cast = build_cast(
                options.seed,
                created_at.timestamp(),
                requests_per_day=options.requests / options.days,
                bursts=plan,
                known=known,
                slugs=free_slugs(known, taken),
            )
            await store_cast(connection, cast, created_at)
            plants = plan_plants(cast, options.seed, start_minute, minutes)
            rhythm = Rhythm(
                cast, options.seed, start_minute, minutes, options.requests, plan, plants
            )
            simulator = Simulator(cast, rhythm, options.seed)
            loader = BulkLoader(connection.dialect)
            state = Progress(minutes=minutes)
            await _write_blocks(
                connection, _Block(simulator, loader), loader, state, options, began, progress
            )
            await store_spend(connection, simulator.ledger.spend(), options.end)
            await loader.finish(connection)
    except (RowsConflict, sa_exc.IntegrityError) as error:
        raise DemoDataError(
            "the database already holds rows with the ids of this history (demo-data was run "
            "with the same --seed, --days, --requests and --end before); nothing was written. "
            "Use another --seed or --end, or an empty database"
        ) from error
    return DemoReport(
        traces=state.traces,
        rows=state.rows,
        workspaces=[w.slug for w in cast.workspaces],
        keys=len(cast.keys),
        start=options.start,
        end=options.end,
        seconds=time.perf_counter() - began,
        waiting_for_rows=state.waiting_for_rows,
        writing=state.writing,
        planted=plants,
    )


async def _write_blocks(
    connection: AsyncConnection,
    block: _Block,
    loader: BulkLoader,
    state: Progress,
    options: DemoOptions,
    began: float,
    progress: Callable[[Progress], None] | None,
) -> None:
    """Make the next block's rows in a worker thread while this block's are sent."""
    runs = blocks(block.simulator)
    if not runs:
        return
    pending: asyncio.Future[tuple[int, list[PreparedRows]]] = asyncio.ensure_future(
        asyncio.to_thread(block.rows, runs[0])
    )
    try:
        for index, run in enumerate(runs):
            waited = time.perf_counter()
            count, batches = await pending
            writing = time.perf_counter()
            state.waiting_for_rows += writing - waited
            if index + 1 < len(runs):
                pending = asyncio.ensure_future(asyncio.to_thread(block.rows, runs[index + 1]))
            await loader.write(connection, batches)
            state.writing += time.perf_counter() - writing
            state.traces += count
            state.minutes_done = run.stop
            for batch in batches:
                state.rows[batch.table] = state.rows.get(batch.table, 0) + len(batch.rows)
            state.through = options.start + timedelta(minutes=run.stop)
            state.seconds = time.perf_counter() - began
            if progress is not None:
                progress(state)
    finally:
        if not pending.done():
            # A worker thread cannot be stopped: let it finish its block, then drop the rows.
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await pending


def default_end(now: datetime | None = None) -> datetime:
    """The current minute, UTC: the history ends where the present begins."""
    now = now or datetime.now(UTC)
    return now.astimezone(UTC).replace(second=0, microsecond=0)

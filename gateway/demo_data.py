"""`steerway demo-data`: write a made-up but realistic history straight into the database.

The history is simulated one hour at a time (`gateway.demo_requests`) in a worker thread while
the previous hour's rows are sent (`telemetry.bulk_load`: COPY on Postgres, batched inserts on
SQLite), all in one transaction: an interrupted run leaves nothing behind. Each trace's summary
columns come from `telemetry.trace_summary` and the roll-ups from `telemetry.rollups.aggregate`,
the recorder's own code, so the history reads exactly like recorded traffic.

A database that already holds traffic the command did not write is refused unless forced: demo
rows would mix with real ones in every list, dashboard and report. Demo rows carry a marker
(`demo_data: true` in a trace's features, a workspace's settings, a key's metadata).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.demo_cast import DEMO_MARKER, WORKSPACE_SLUGS, Cast, build_cast, burst_plan
from gateway.demo_requests import Simulator
from gateway.demo_rhythm import Rhythm
from gateway.limits_model import WorkspaceLimits
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
from telemetry.schema import api_keys, traces, workspaces
from telemetry.trace_summary import SUMMARY_COLUMNS, summarize

MAX_DAYS = 366
MAX_REQUESTS = 100_000_000
TRACE_TABLE_COLUMNS = (*TRACE_COLUMNS, *SUMMARY_COLUMNS)
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
    hours_done: int = 0
    hours: int = 0
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

    @property
    def traces_per_second(self) -> float:
        return self.traces / self.seconds if self.seconds > 0 else 0.0


def validate(days: int, requests: int) -> None:
    if not 1 <= days <= MAX_DAYS:
        raise DemoDataError(f"--days must be between 1 and {MAX_DAYS}, got {days}")
    if not 1 <= requests <= MAX_REQUESTS:
        raise DemoDataError(f"--requests must be between 1 and {MAX_REQUESTS:,}, got {requests}")


async def real_traffic(connection: AsyncConnection) -> tuple[str, datetime] | None:
    """A trace demo-data did not write (its id and start), if the database holds one."""
    if connection.dialect.name == "postgresql":
        marker = sa.text(f"(features ->> '{DEMO_MARKER}') IS NULL")
    else:
        marker = sa.text(f"json_extract(features, '$.{DEMO_MARKER}') IS NULL")
    query = sa.select(traces.c.trace_id, traces.c.started_at).where(marker).limit(1)
    found = (await connection.execute(query)).first()
    return None if found is None else (found.trace_id, found.started_at)


async def _existing(connection: AsyncConnection) -> tuple[dict[str, str], dict[str, str]]:
    """Ids of demo workspaces and keys already stored (by slug, and by `slug/name`), and the
    slugs already taken by workspaces demo-data did not create."""
    rows = (await connection.execute(sa.select(workspaces))).all()
    known: dict[str, str] = {}
    taken: dict[str, str] = {}
    for row in rows:
        if isinstance(row.settings, dict) and row.settings.get(DEMO_MARKER) is True:
            known[row.slug] = row.workspace_id
        else:
            taken[row.slug] = row.workspace_id
    slug_of = {workspace_id: slug for slug, workspace_id in known.items()}
    keys = await connection.execute(
        sa.select(api_keys.c.key_id, api_keys.c.workspace_id, api_keys.c.name, api_keys.c.metadata)
    )
    for key in keys:
        slug = slug_of.get(key.workspace_id)
        if slug is not None and isinstance(key.metadata, dict) and key.metadata.get(DEMO_MARKER):
            known[f"{slug}/{key.name}"] = key.key_id
    return known, taken


def _free_slugs(known: dict[str, str], taken: dict[str, str]) -> dict[str, str]:
    """A slug for each demo workspace whose own is taken by a workspace somebody else created:
    `acme-demo` (or `acme-demo-2`...), the one an earlier run chose when it is there."""
    renamed: dict[str, str] = {}
    for slug in WORKSPACE_SLUGS:
        if slug not in taken:
            continue
        candidate, number = f"{slug}-demo", 2
        while candidate in taken:
            candidate, number = f"{slug}-demo-{number}", number + 1
        renamed[slug] = candidate
    return renamed


async def _store_cast(connection: AsyncConnection, cast: Cast, created_at: datetime) -> None:
    """Insert the workspaces and keys the database does not hold yet. Keys get a random hash of
    nothing anyone holds: no working key exists for them."""
    stored_workspaces = set(
        (await connection.execute(sa.select(workspaces.c.workspace_id))).scalars()
    )
    stored_keys = set((await connection.execute(sa.select(api_keys.c.key_id))).scalars())
    new_workspaces = [
        {
            "workspace_id": w.workspace_id,
            "name": w.name,
            "slug": w.slug,
            "settings": {
                **WorkspaceLimits(budgets=w.budgets, guardrails=w.guardrails).to_settings(),
                DEMO_MARKER: True,
            },
            "created_at": created_at,
        }
        for w in cast.workspaces
        if w.workspace_id not in stored_workspaces
    ]
    if new_workspaces:
        await connection.execute(workspaces.insert(), new_workspaces)
    new_keys = [
        {
            "key_id": k.key_id,
            "workspace_id": k.workspace.workspace_id,
            "name": k.name,
            "key_hash": hashlib.sha256(secrets.token_bytes(32)).hexdigest(),
            "display_prefix": k.display_prefix,
            "role": "user",
            "metadata": {DEMO_MARKER: True},
            "created_at": created_at + timedelta(minutes=5),
            "revoked_at": None,
            "expires_at": None,
            "allowed_models": sa.null(),
            "rpm_limit": k.rpm_limit,
            "tpm_limit": None,
            "max_parallel": None,
            "budgets": [b.to_json() for b in k.budgets],
            "default_tags": list(k.tags),
            "guardrails": list(k.guardrails),
        }
        for k in cast.keys
        if k.key_id not in stored_keys
    ]
    if new_keys:
        await connection.execute(api_keys.insert(), new_keys)


BLOCK_TRACES = 5_000
"""About this many traces are sent at once: each COPY or executemany has a cost of its own."""


def blocks(simulator: Simulator, size: int = BLOCK_TRACES) -> list[range]:
    """The history's hours in consecutive runs of about `size` traces each."""
    per_hour = [
        sum(simulator.rhythm.counts[h * 60 : h * 60 + 60])
        + sum(simulator.rhythm.bursts.get(m, 0) for m in range(h * 60, h * 60 + 60))
        for h in range(simulator.hours)
    ]
    found: list[range] = []
    first = total = 0
    for hour, count in enumerate(per_hour):
        total += count
        if total >= size:
            found.append(range(first, hour + 1))
            first, total = hour + 1, 0
    if first < simulator.hours:
        found.append(range(first, simulator.hours))
    return found


class _Hours:
    """Makes hours of the history into rows ready for the driver (run in a worker thread, one
    block of hours after another)."""

    def __init__(self, simulator: Simulator, loader: BulkLoader) -> None:
        self.simulator = simulator
        self.loader = loader

    def rows(self, hours: range) -> tuple[int, list[PreparedRows]]:
        bundles = [bundle for hour in hours for bundle in self.simulator.hour(hour)]
        trace_rows = []
        spans, decisions, interactions, violations = [], [], [], []
        for bundle in bundles:
            trace_rows.append((*trace_row(bundle.trace), *summarize(bundle).row()))
            spans.extend(bundle.spans)
            decisions.extend(bundle.decisions)
            interactions.extend(bundle.interactions)
            violations.extend(bundle.violations)
        prepare = self.loader.prepare
        return len(bundles), [
            prepare("traces", TRACE_TABLE_COLUMNS, trace_rows),
            prepare("spans", SPAN_COLUMNS, [span_row(s) for s in spans]),
            prepare("decisions", DECISION_COLUMNS, [decision_row(d) for d in decisions]),
            prepare(
                "ai_interactions", INTERACTION_COLUMNS, [interaction_row(i) for i in interactions]
            ),
            prepare(
                "guardrail_violations", VIOLATION_COLUMNS, [violation_row(v) for v in violations]
            ),
            self.loader.prepare_rollups(rollups.aggregate(interactions)),
        ]


@contextlib.contextmanager
def bulk_mode(switch_interval: float = 0.0005) -> Iterator[None]:
    """The interpreter set for making millions of rows, and put back afterwards.

    The cyclic garbage collector is off: the rows form no cycles, reference counting frees
    them, and with a block of 20,000 requests alive each full collection would walk them all
    (a third of the time went there). The GIL switch interval is short: the event loop sending
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
            known, taken = await _existing(connection)
            cast = build_cast(
                options.seed,
                created_at.timestamp(),
                requests_per_day=options.requests / options.days,
                bursts=plan,
                known=known,
                slugs=_free_slugs(known, taken),
            )
            await _store_cast(connection, cast, created_at)
            rhythm = Rhythm(cast, options.seed, start_minute, minutes, options.requests, plan)
            simulator = Simulator(cast, rhythm, options.seed)
            loader = BulkLoader(connection.dialect)
            state = Progress(hours=simulator.hours)
            await _write_hours(
                connection, _Hours(simulator, loader), loader, state, options, began, progress
            )
    except (RowsConflict, sa_exc.IntegrityError) as error:
        raise DemoDataError(
            "the database already holds rows with the ids of this history (demo-data was run "
            "with the same --seed and --end before); nothing was written. Use another --seed "
            "or --end, or an empty database"
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
    )


async def _write_hours(
    connection: AsyncConnection,
    hours: _Hours,
    loader: BulkLoader,
    state: Progress,
    options: DemoOptions,
    began: float,
    progress: Callable[[Progress], None] | None,
) -> None:
    """Make the next block's rows in a worker thread while this block's are sent."""
    runs = blocks(hours.simulator)
    if not runs:
        return
    pending: asyncio.Future[tuple[int, list[PreparedRows]]] = asyncio.ensure_future(
        asyncio.to_thread(hours.rows, runs[0])
    )
    try:
        for index, run in enumerate(runs):
            waited = time.perf_counter()
            count, batches = await pending
            writing = time.perf_counter()
            state.waiting_for_rows += writing - waited
            if index + 1 < len(runs):
                pending = asyncio.ensure_future(asyncio.to_thread(hours.rows, runs[index + 1]))
            await loader.write(connection, batches)
            state.writing += time.perf_counter() - writing
            state.traces += count
            state.hours_done = run.stop
            for batch in batches:
                state.rows[batch.table] = state.rows.get(batch.table, 0) + len(batch.rows)
            state.through = min(options.start + timedelta(hours=run.stop), options.end)
            state.seconds = time.perf_counter() - began
            if progress is not None:
                progress(state)
    finally:
        if not pending.done():
            # A worker thread cannot be stopped: let it finish its hour, then drop the rows.
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await pending


def default_end(now: datetime | None = None) -> datetime:
    """The current minute, UTC: the history ends where the present begins."""
    now = now or datetime.now(UTC)
    return now.astimezone(UTC).replace(second=0, microsecond=0)

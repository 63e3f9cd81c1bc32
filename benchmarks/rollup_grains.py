"""What the hour and day roll-ups cost the recorder: `python -m benchmarks rollup_grains`.

At 2,000 requests/s the recorder writes a batch of 256 requests (its `batch_size`) about eight
times a second. Such batches (8 models, 12 keys, one request in twenty an error, 0.128 s of
traffic each) are written through `telemetry.writers.BatchWriter` into a fresh Postgres database
in three ways, in turn, the order rotated every round (the first two rounds are warm-up):

- `minute only`: no hour or day rows at all (the baseline);
- `summed by the writer`: the writer folds the minutes into hour and day rows and adds all three
  to the tables in every batch (how the recorder worked before);
- `folded every 10 s`: the writer adds the minute rows and marks their hour; every ten seconds
  of traffic (80 batches) `telemetry.rollup_folding.fold_pending` sums the marked hours and their
  days again (how it works now). Its cost is shared out over the batches of those ten seconds.
  The fold re-sums a whole day from its hour rows, so the database is first given a day of hour
  rows as large as the batches' (24 hours of every key, model and status).

Reported: the median wall time of a batch, the writer process's CPU time (median), and the CPU
time of the database backends serving the writer (read from /proc in 10 ms ticks, so a mean over
the rounds); the recorder's cost is the two CPU times together.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

import migrations
import telemetry.rollups as rollups
from benchmarks.console_lists import row
from benchmarks.machine import describe_machine, load_average
from benchmarks.stores import create_database, drop_database
from telemetry.db import create_engine
from telemetry.records import TraceBundle
from telemetry.rollup_folding import fold_pending
from telemetry.writers import BatchWriter
from tests.telemetry import MINUTE, make_bundle

RESULTS_DIR = Path(__file__).parent / "results"
BATCH = 256
BATCHES_A_SECOND = 2000 / BATCH
WARM_UP = 2
MODES = ("minute only", "summed by the writer", "folded every 10 s")
BATCHES_A_FOLD = 80


def _batch(draw: random.Random, offset: float) -> list[TraceBundle]:
    return [
        make_bundle(
            started_at=MINUTE + offset + draw.uniform(0, BATCH / 2000),
            model=draw.choice("abcdefgh"),
            api_key_id=draw.choice([f"k{n}" for n in range(12)]),
            status="error" if draw.random() < 0.05 else "ok",
            latency_ms=draw.lognormvariate(5, 1),
        )
        for _ in range(BATCH)
    ]


@contextmanager
def _mode(mode: str) -> Iterator[None]:
    """Make the writer keep the roll-ups the way `mode` names."""
    aggregate = rollups.aggregate_yielding
    add_on_postgres = rollups.add_on_postgres

    async def folded_by_the_writer(
        bundles: list[TraceBundle],
        caps: rollups.NameCaps | None = None,
        *,
        fold: bool = True,
        chunk: int = 128,
    ) -> rollups.Aggregate:
        return await aggregate(bundles, caps, fold=True, chunk=chunk)

    async def unmarked(connection: Any, summed: rollups.Aggregate, *, mark: bool = True) -> None:
        await add_on_postgres(connection, summed, mark=False)

    if mode != "folded every 10 s":
        rollups.add_on_postgres = unmarked
    if mode == "summed by the writer":
        rollups.aggregate_yielding = folded_by_the_writer
    try:
        yield
    finally:
        rollups.aggregate_yielding = aggregate
        rollups.add_on_postgres = add_on_postgres


def _server_cpu_ms(pids: list[int]) -> float:
    """User and system CPU time of these Postgres backends so far, in milliseconds."""
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks * 1000 / os.sysconf("SC_CLK_TCK")


async def _backends(engine: AsyncEngine) -> list[int]:
    async with engine.connect() as connection:
        found = await connection.execute(
            sa.text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        )
        return [int(pid) for (pid,) in found]


Found = dict[str, tuple[list[float], list[float], list[float]]]


async def _a_day_of_hour_rows(engine: AsyncEngine) -> None:
    """Hour rows for the 24 hours of the batches' day, every key, model and status each."""
    day = MINUTE // 86400 * 86400
    rows = [
        make_bundle(
            started_at=day + hour * 3600 + 1.0,
            model=model,
            api_key_id=f"k{key}",
            status=status,
            latency_ms=100.0,
        )
        for hour in range(24)
        for model in "abcdefgh"
        for key in range(12)
        for status in ("ok", "error")
    ]
    async with engine.begin() as connection:
        summed = rollups.aggregate(rows)
        hour_rows = [row for row in summed.rollups if row["grain"] == "hour"]
        await connection.execute(rollups.upsert_statement("postgresql"), hour_rows)


async def _measure(url: str, rounds: int) -> tuple[Found, list[float]]:
    engine = create_engine(url)
    writer = BatchWriter(engine)
    await _a_day_of_hour_rows(engine)
    draw = random.Random(5)
    found: Found = {mode: ([], [], []) for mode in MODES}
    folds: list[float] = []
    try:
        for n in range(rounds + WARM_UP):
            for turn in range(len(MODES)):
                mode = MODES[(n + turn) % len(MODES)]
                backends = await _backends(engine)
                bundles = _batch(draw, (n * len(MODES) + turn) * BATCH / 2000)
                with _mode(mode):
                    wall, cpu = time.perf_counter(), time.process_time()
                    server = _server_cpu_ms(backends)
                    await writer.write(bundles)
                    server = _server_cpu_ms(backends) - server
                    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                if n >= WARM_UP:
                    found[mode][0].append(wall * 1000)
                    found[mode][1].append(cpu * 1000)
                    found[mode][2].append(server)
            backends = await _backends(engine)
            cpu, server = time.process_time(), _server_cpu_ms(backends)
            assert await fold_pending(engine)
            spent = (time.process_time() - cpu) * 1000 + _server_cpu_ms(backends) - server
            if n >= WARM_UP:
                folds.append(spent)
    finally:
        await engine.dispose()
    fold = statistics.fmean(folds) / BATCHES_A_FOLD
    folded = found["folded every 10 s"]
    folded[2][:] = [server + fold for server in folded[2]]
    return found, folds


def _report(found: Found, folds: list[float], rounds: int, load_at_start: str) -> list[str]:
    wall = {mode: statistics.median(values[0]) for mode, values in found.items()}
    writer = {mode: statistics.median(values[1]) for mode, values in found.items()}
    server = {mode: statistics.fmean(values[2]) for mode, values in found.items()}
    recorder = {
        mode: statistics.fmean(values[1]) + statistics.fmean(values[2])
        for mode, values in found.items()
    }

    def change(values: dict[str, float], mode: str) -> str:
        return f"{(values[mode] / values['minute only'] - 1) * 100:+.1f} %"

    return [
        "# The hour and day roll-ups' cost to the recorder (Postgres)",
        "",
        f"{dt.date.today().isoformat()}, `python -m benchmarks rollup_grains --rounds {rounds}`:"
        f" batches of {BATCH} requests (the recorder's batch at 2,000 requests/s, about"
        f" {BATCHES_A_SECOND:.0f} a second); {rounds} rounds of each way. Wall and writer CPU are"
        " medians, the database server's CPU (10 ms ticks) and the recorder's (writer plus"
        " server) means. The fold's CPU (writer and server, mean"
        f" {statistics.fmean(folds):.1f} ms a fold of an hour and its day) is counted in the"
        f" server column of `folded every 10 s`, one {BATCHES_A_FOLD}th to a batch.",
        "",
        row(
            (
                "roll-ups",
                "wall ms a batch",
                "writer CPU ms",
                "server CPU ms",
                "recorder CPU ms",
                "recorder, % of a core at 2,000 requests/s",
            )
        ),
        row(("---", "---:", "---:", "---:", "---:", "---:")),
        *(
            row(
                (
                    mode,
                    f"{wall[mode]:.1f}",
                    f"{writer[mode]:.2f}",
                    f"{server[mode]:.2f}",
                    f"{recorder[mode]:.2f}",
                    f"{recorder[mode] * BATCHES_A_SECOND / 10:.1f}",
                )
            )
            for mode in MODES
        ),
        "",
        *(
            f"Against minute rows only, hour and day rows {mode}: {change(wall, mode)} wall time,"
            f" {change(writer, mode)} writer CPU, {change(server, mode)} server CPU,"
            f" {change(recorder, mode)} recorder CPU (writer plus server)."
            for mode in MODES[1:]
        ),
        "",
        "Machine: "
        + "; ".join(f"{k}: {v}" for k, v in describe_machine(load_at_start) if k != "wrk"),
        "",
    ]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks rollup_grains", description=__doc__)
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    load_at_start = load_average()
    url = create_database(args.postgres_url)
    try:
        migrations.upgrade(url)
        found, folds = asyncio.run(_measure(url, args.rounds))
    finally:
        drop_database(args.postgres_url, url)
    lines = _report(found, folds, args.rounds, load_at_start)
    print("\n".join(lines))
    if not args.no_save:
        RESULTS_DIR.mkdir(exist_ok=True)
        path = RESULTS_DIR / f"{dt.date.today().isoformat()}-rollup-grains.md"
        path.write_text("\n".join(lines))
        print(f"written to {path}")
    return 0

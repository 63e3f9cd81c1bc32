"""What the hour and day roll-ups cost the writer: `python -m benchmarks rollup_grains`.

The same kind of batch (1,000 varied requests over about a second: 8 models, 12 keys, one in
twenty an error) is written through `telemetry.writers.BatchWriter` into a fresh Postgres
database, alternately with all three grains and with minute rows only, the order swapped every
round; the first two rounds of each are warm-up. Reported: the median wall time of a batch and
the writer process's CPU time for it (the database server's work shows in the wall time only).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import statistics
import time
from pathlib import Path

import migrations
import telemetry.rollups as rollups
from benchmarks.console_lists import row
from benchmarks.machine import describe_machine, load_average
from benchmarks.stores import create_database, drop_database
from telemetry.db import create_engine
from telemetry.records import TraceBundle
from telemetry.writers import BatchWriter
from tests.telemetry import MINUTE, make_bundle

RESULTS_DIR = Path(__file__).parent / "results"
BATCH = 1000
WARM_UP = 2


def _batch(draw: random.Random, offset: float) -> list[TraceBundle]:
    return [
        make_bundle(
            started_at=MINUTE + offset + draw.uniform(0, 1.0),
            model=draw.choice("abcdefgh"),
            api_key_id=draw.choice([f"k{n}" for n in range(12)]),
            status="error" if draw.random() < 0.05 else "ok",
            latency_ms=draw.lognormvariate(5, 1),
        )
        for _ in range(BATCH)
    ]


async def _measure(url: str, rounds: int) -> dict[str, tuple[list[float], list[float]]]:
    grains = rollups._GRAIN_SECONDS
    engine = create_engine(url)
    writer = BatchWriter(engine)
    draw = random.Random(5)
    found: dict[str, tuple[list[float], list[float]]] = {"all": ([], []), "minute": ([], [])}
    try:
        for n in range(rounds + WARM_UP):
            for mode in ("all", "minute") if n % 2 else ("minute", "all"):
                rollups._GRAIN_SECONDS = grains if mode == "all" else grains[:1]  # type: ignore[misc,assignment]
                bundles = _batch(draw, n * 2.0)
                wall, cpu = time.perf_counter(), time.process_time()
                await writer.write(bundles)
                if n >= WARM_UP:
                    found[mode][0].append((time.perf_counter() - wall) * 1000)
                    found[mode][1].append((time.process_time() - cpu) * 1000)
    finally:
        rollups._GRAIN_SECONDS = grains  # type: ignore[misc]
        await engine.dispose()
    return found


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks rollup_grains", description=__doc__)
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--rounds", type=int, default=14)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    load_at_start = load_average()
    url = create_database(args.postgres_url)
    try:
        migrations.upgrade(url)
        found = asyncio.run(_measure(url, args.rounds))
    finally:
        drop_database(args.postgres_url, url)
    wall = {mode: statistics.median(values[0]) for mode, values in found.items()}
    cpu = {mode: statistics.median(values[1]) for mode, values in found.items()}
    lines = [
        "# The hour and day roll-ups' cost to the writer (Postgres)",
        "",
        f"{dt.date.today().isoformat()}, `python -m benchmarks rollup_grains --rounds"
        f" {args.rounds}`: batches of {BATCH:,} requests, medians of {args.rounds} rounds each.",
        "",
        row(("roll-ups kept", "wall ms a batch", "writer CPU ms a batch", "requests/s")),
        row(("---", "---:", "---:", "---:")),
        *(
            row(
                (
                    "minute, hour and day" if mode == "all" else "minute only",
                    f"{wall[mode]:.1f}",
                    f"{cpu[mode]:.1f}",
                    f"{BATCH / wall[mode] * 1000:,.0f}",
                )
            )
            for mode in ("minute", "all")
        ),
        "",
        f"Hour and day rows add {(wall['all'] / wall['minute'] - 1) * 100:+.1f} % wall time and"
        f" {(cpu['all'] / cpu['minute'] - 1) * 100:+.1f} % writer CPU.",
        "",
        "Machine: "
        + "; ".join(f"{k}: {v}" for k, v in describe_machine(load_at_start) if k != "wrk"),
        "",
    ]
    print("\n".join(lines))
    if not args.no_save:
        RESULTS_DIR.mkdir(exist_ok=True)
        path = RESULTS_DIR / f"{dt.date.today().isoformat()}-rollup-grains.md"
        path.write_text("\n".join(lines))
        print(f"written to {path}")
    return 0

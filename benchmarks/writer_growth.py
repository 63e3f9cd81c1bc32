"""`python -m benchmarks writer_growth`: how the SQLite writer's rate changes as the file grows.

Writes `--bundles` chat-sized trace bundles (`benchmarks.writer.chat_bundle`) with
`BatchWriter` into one fresh SQLite file per variant, in batches of `--batch-size`, and prints
the bundles per second of every `--step` bundles with the file's size. The variants:

- `--cache-kib`: SQLite's page cache per connection (0: SQLite's default, 2 MiB), to tell a
  working set that outgrows the cache from other causes;
- `--span-ids`: `random` span ids (as the gateway makes them: the spans' primary key index
  takes each insert at a random place) or `ordered` (time-ordered, so each lands at the end).

Request ids are time-ordered, as the gateway makes them when the client sends none.

The first step's rate against the last's is the slowdown a long-running embedded install sees.
Variants run one after the other, not in turns: growth is what is measured, so compare ratios
rather than rates on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event

import migrations
from benchmarks import writer as writer_bench
from telemetry import writers
from telemetry.db import create_engine
from telemetry.ids import uuid7_hex
from telemetry.records import TraceBundle

SPAN_IDS = ("random", "ordered")


@dataclass(frozen=True)
class Step:
    bundles: int
    """Bundles in the file once this step was written."""
    per_second: float
    file_mb: float


def ordered_span_ids() -> Callable[[], str]:
    """16 hex digits that grow with time: milliseconds, then a counter."""
    counter = itertools.count()

    def next_id() -> str:
        value = (int(time.time() * 1000) << 20) | (next(counter) & 0xFFFFF)
        return f"{value & 0xFFFF_FFFF_FFFF_FFFF:016x}"

    return next_id


@contextmanager
def span_ids(kind: str) -> Iterator[None]:
    """The bundles built meanwhile get `kind` span ids."""
    original = writer_bench.span_id_hex
    if kind == "ordered":
        writer_bench.span_id_hex = ordered_span_ids()
    try:
        yield
    finally:
        writer_bench.span_id_hex = original


def gateway_request_ids(bundles: list[TraceBundle]) -> list[TraceBundle]:
    """Request ids as the gateway makes them for a client that sends none: time-ordered."""
    for bundle in bundles:
        bundle.trace.request_id = uuid7_hex()
    return bundles


async def grow(
    path: Path, *, bundles: int, step: int, batch_size: int, cache_kib: int, ids: str
) -> list[Step]:
    url = f"sqlite:///{path}"
    await asyncio.to_thread(migrations.upgrade, url)
    engine = create_engine(url)
    if cache_kib:

        def set_cache(connection: Any, _record: Any) -> None:
            connection.execute(f"PRAGMA cache_size = -{cache_kib}")

        event.listen(engine.sync_engine, "connect", set_cache)
    writer = writers.BatchWriter(engine)
    steps: list[Step] = []
    written = 0
    try:
        while written < bundles:
            size = min(step, bundles - written)
            with span_ids(ids):
                batches = [
                    gateway_request_ids(writer_bench.chat_bundles(min(batch_size, size - start)))
                    for start in range(0, size, batch_size)
                ]
            started = time.perf_counter()
            for batch in batches:
                await writer.write(batch)
            elapsed = time.perf_counter() - started
            written += size
            stat = await asyncio.to_thread(path.stat)
            steps.append(Step(written, size / elapsed, stat.st_size / 1e6))
    finally:
        await engine.dispose()
    return steps


def cache_sizes(text: str) -> list[int]:
    """KiB per size, comma-separated; 0 is SQLite's default."""
    return [int(part) for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks writer_growth", description=__doc__)
    parser.add_argument("--bundles", type=int, default=600_000, help="bundles per variant")
    parser.add_argument("--step", type=int, default=50_000, help="bundles per timed step")
    parser.add_argument("--batch-size", type=int, default=1024, help="bundles a write (1024)")
    parser.add_argument(
        "--cache-kib", type=cache_sizes, default=[0], help="page cache sizes, comma-separated"
    )
    parser.add_argument(
        "--span-ids", default="random", help="random, ordered or both: random,ordered"
    )
    args = parser.parse_args(argv)
    kinds = [kind for kind in args.span_ids.split(",") if kind]
    unknown = [kind for kind in kinds if kind not in SPAN_IDS]
    if unknown or args.bundles < 1 or args.step < 1 or args.batch_size < 1:
        parser.error("--span-ids takes random and ordered; the sizes must be at least 1")
    for cache_kib in args.cache_kib:
        for ids in kinds:
            label = f"cache {cache_kib or 'default'} KiB, {ids} span ids"
            with tempfile.TemporaryDirectory() as folder:
                steps = asyncio.run(
                    grow(
                        Path(folder) / "growth.db",
                        bundles=args.bundles,
                        step=args.step,
                        batch_size=args.batch_size,
                        cache_kib=cache_kib,
                        ids=ids,
                    )
                )
            for step in steps:
                print(
                    f"{label}: {step.bundles:9,} bundles  {step.per_second:8,.0f}/s  "
                    f"file {step.file_mb:7,.0f} MB",
                    flush=True,
                )
            print(
                f"{label}: last step {steps[-1].per_second / steps[0].per_second:.2f}x the first",
                flush=True,
            )
    return 0

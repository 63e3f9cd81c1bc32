"""`python -m benchmarks partitions`: what the day partitions cost the telemetry writer.

Two fresh Postgres databases, one migrated to the newest schema (the trace tables partitioned by
day, migration 0019) and one to 0018 (plain tables), take turns being written the same
chat-sized batches with `BatchWriter`, round after round, so a busy machine's drift falls on
both alike. Prints the median bundles per second of each and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import migrations
from benchmarks.stores import create_database, drop_database
from benchmarks.writer import chat_bundles
from telemetry.db import create_engine
from telemetry.writers import BatchWriter

_DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
SCHEMAS = {"partitioned": "head", "plain (0018)": "0018"}


async def _rates(
    urls: dict[str, str], rounds: int, batches: int, size: int
) -> dict[str, list[float]]:
    engines = {}
    try:
        for name, revision in SCHEMAS.items():
            await asyncio.to_thread(migrations.upgrade, urls[name], revision)
            engines[name] = create_engine(urls[name])
        rates: dict[str, list[float]] = {name: [] for name in SCHEMAS}
        for round_number in range(rounds):
            order = list(SCHEMAS)[:: 1 if round_number % 2 == 0 else -1]
            for name in order:
                writer = BatchWriter(engines[name])
                data = [chat_bundles(size) for _ in range(batches)]
                started = time.perf_counter()
                for batch in data:
                    await writer.write(batch)
                rates[name].append(size * batches / (time.perf_counter() - started))
        return rates
    finally:
        for engine in engines.values():
            await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks partitions", description=__doc__)
    parser.add_argument("--rounds", type=int, default=12, help="rounds (default 12)")
    parser.add_argument("--batches", type=int, default=8, help="batches per round (default 8)")
    parser.add_argument("--batch-size", type=int, default=256, help="bundles a batch (256)")
    parser.add_argument("--postgres-url", default=_DEFAULT_POSTGRES)
    args = parser.parse_args(argv)
    urls = {name: create_database(args.postgres_url) for name in SCHEMAS}
    try:
        rates = asyncio.run(_rates(urls, args.rounds, args.batches, args.batch_size))
    finally:
        for url in urls.values():
            drop_database(args.postgres_url, url)
    medians = {name: statistics.median(values) for name, values in rates.items()}
    base = medians["plain (0018)"]
    for name, values in rates.items():
        print(
            f"postgres {name:14} median {medians[name]:7,.0f} bundles/s "
            f"({medians[name] / base:.3f} of plain; {len(values)} rounds)"
        )
    return 0

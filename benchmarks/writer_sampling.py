"""`python -m benchmarks.writer_sampling`: what trace sampling does to the telemetry writer.

Writes batches of chat-sized bundles (`benchmarks.writer.chat_bundle`) with `BatchWriter` into
a fresh SQLite file and a fresh Postgres database. Each round runs every variant next to the
writer without sampling (the default): `ratio: 0.1` (most bundles written as their trace row
and figures only), and a policy that decides for every bundle and keeps them all (`ratio: 1`
given to the writer directly; the config turns sampling off instead), which is what deciding
costs by itself. Prints each variant's median bundles per second, the median of the runs
without sampling paired with it, and the median ratio of the pairs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import migrations
from benchmarks.stores import create_database, drop_database
from benchmarks.writer import chat_bundles
from telemetry.db import create_engine
from telemetry.trace_sampling import TraceSampling
from telemetry.writers import BatchWriter

_DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
VARIANTS: dict[str, TraceSampling] = {
    "ratio 0.1": TraceSampling(ratio=0.1, slow_ms=10_000.0),
    "decided, all kept": TraceSampling(ratio=1.0, slow_ms=10_000.0),
}


Paired = dict[str, list[tuple[float, float]]]
"""Per variant: (bundles/s without sampling, bundles/s of the variant), one pair a round."""


async def _write_rate(writer: BatchWriter, batches: int, batch_size: int) -> float:
    data = [chat_bundles(batch_size) for _ in range(batches)]
    started = time.perf_counter()
    for batch in data:
        await writer.write(batch)
    return batch_size * batches / (time.perf_counter() - started)


async def _rates(url: str, rounds: int, batches: int, batch_size: int) -> Paired:
    """Each round runs every variant next to a run without sampling, the two in turn first, so
    a drift of the machine or of the database's state falls on both sides of each pair."""
    await asyncio.to_thread(migrations.upgrade, url)
    engine = create_engine(url)
    off = BatchWriter(engine)
    paired: Paired = {name: [] for name in VARIANTS}
    try:
        for round_number in range(rounds):
            for name, policy in VARIANTS.items():
                variant = BatchWriter(engine, sampling=policy)
                if round_number % 2:
                    other = await _write_rate(variant, batches, batch_size)
                    base = await _write_rate(off, batches, batch_size)
                else:
                    base = await _write_rate(off, batches, batch_size)
                    other = await _write_rate(variant, batches, batch_size)
                paired[name].append((base, other))
    finally:
        await engine.dispose()
    return paired


@contextlib.contextmanager
def _fresh_database(backend: str, postgres_url: str) -> Iterator[str]:
    """The URL of an empty database of the backend, removed afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{Path(folder) / 'writer.db'}"
    elif backend == "postgres":
        url = create_database(postgres_url)
        try:
            yield url
        finally:
            drop_database(postgres_url, url)
    else:
        raise ValueError(f"unknown backend {backend!r}; choose sqlite, postgres")


def _report(backend: str, paired: Paired) -> None:
    for name, pairs in paired.items():
        base = statistics.median(b for b, _ in pairs)
        rate = statistics.median(r for _, r in pairs)
        ratio = statistics.median(r / b for b, r in pairs)
        print(
            f"{backend:8} {name:17} median {rate:7,.0f} bundles/s against {base:7,.0f} without "
            f"sampling: {ratio:.3f} (median of {len(pairs)} paired rounds)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.writer_sampling", description=__doc__
    )
    parser.add_argument("--rounds", type=int, default=12, help="rounds per variant (default 12)")
    parser.add_argument("--batches", type=int, default=8, help="batches per round (default 8)")
    parser.add_argument("--batch-size", type=int, default=256, help="bundles a batch (256)")
    parser.add_argument("--postgres-url", default=_DEFAULT_POSTGRES)
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args(argv)
    for backend in args.backends.split(","):
        with _fresh_database(backend, args.postgres_url) as url:
            rates = asyncio.run(_rates(url, args.rounds, args.batches, args.batch_size))
        _report(backend, rates)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

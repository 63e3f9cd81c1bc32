"""What the writer process (`telemetry.writer: process`) costs per request, on each side.

`python -m benchmarks.writer_process_cost [--batches 20] [--batch-size 1024] [--rounds 3]`.
Writes batches of chat-sized bundles (`benchmarks.writer.chat_bundles`) through a
`ProcessWriter` into a fresh SQLite file and a fresh Postgres database (`--postgres-url`), the
child built as `steerway serve` builds it (`server.telemetry_writer.child_batch_writer`). Per
store, medians over rounds:

- the serving process's CPU per bundle for encoding and sending (`time.process_time` around the
  writes, which also counts waiting on the socket's event loop);
- the child's CPU per bundle (user + system from `/proc`, decoding, rows, driver);
- wall-clock time per bundle.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import statistics
import tempfile
import time
from pathlib import Path

import uvloop

from benchmarks.stores import StoreUnavailable, create_database, drop_database
from benchmarks.writer import chat_bundles
from migrations import upgrade
from server.telemetry_writer import child_batch_writer
from telemetry.writer_process import ProcessWriter, WriterSpec

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


def process_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def one_round(url: str, batches: int, batch_size: int) -> tuple[float, float, float]:
    spec = WriterSpec(
        url, functools.partial(child_batch_writer, sampling=None, refresh_interval=5.0)
    )
    writer = ProcessWriter(spec)
    try:
        await writer.write(chat_bundles(1))  # the child started and connected
        assert writer.pid is not None
        data = [chat_bundles(batch_size) for _ in range(batches)]
        child_before = process_cpu_seconds(writer.pid)
        ours_before = time.process_time()
        started = time.perf_counter()
        for batch in data:
            await writer.write(batch)
        wall = time.perf_counter() - started
        ours = time.process_time() - ours_before
        child = process_cpu_seconds(writer.pid) - child_before
    finally:
        await writer.close()
    count = batches * batch_size
    return ours / count * 1e6, child / count * 1e6, wall / count * 1e6


def stores(postgres_admin: str, folder: Path) -> list[tuple[str, str]]:
    sqlite = f"sqlite:///{folder / 'writer.db'}"
    upgrade(sqlite)
    found = [("sqlite", sqlite)]
    with contextlib.suppress(StoreUnavailable):
        url = create_database(postgres_admin)
        upgrade(url)
        found.append(("postgres", url))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        found = stores(args.postgres_url, Path(folder))
        try:
            for name, url in found:
                rounds = [
                    uvloop.run(one_round(url, args.batches, args.batch_size))
                    for _ in range(args.rounds)
                ]
                ours, child, wall = (
                    statistics.median(values) for values in zip(*rounds, strict=True)
                )
                print(
                    f"{name}: serving process {ours:.1f} µs/bundle, child {child:.1f} µs/bundle, "
                    f"wall {wall:.1f} µs/bundle (medians of {args.rounds} rounds of "
                    f"{args.batches} x {args.batch_size})",
                    flush=True,
                )
        finally:
            for name, url in found:
                if name == "postgres":
                    drop_database(args.postgres_url, url)


if __name__ == "__main__":
    main()

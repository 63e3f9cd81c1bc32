"""`python -m benchmarks recorder_backpressure`: how long requests wait for a recorder behind.

In process, without HTTP: `--clients` tasks each loop over `congested`/`await room()` (what the
proxy does before a request), one `record()`, and a `--think-ms` sleep, offering far more
bundles a second than the writer takes into a fresh SQLite file; the writer runs on the same
loop. Rounds take turns between everyone held going on once the backlog (the queue and the
batch being written) is back under the high-water mark (`ROOM_AGAIN_AT` 1.0, now) and once it
is down to three quarters of it (0.75); in between, held requests go at the writer's pace
(`telemetry.backpressure`). Per round: bundles recorded a second, and the wait before each
record (p50, p99, worst).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import uvloop

import migrations
from benchmarks.writer import chat_bundles
from telemetry import recorder as recorder_module
from telemetry.db import create_engine
from telemetry.recorder import Recorder

VARIANTS = {"go on under the mark": 1.0, "go on at 3/4 of it": 0.75}


async def _client(recorder: Recorder, think_s: float, until: float, waits: list[float]) -> int:
    bundles = chat_bundles(64)
    sent = 0
    while time.perf_counter() < until:
        started = time.perf_counter()
        if recorder.congested:
            await recorder.room()
        waits.append((time.perf_counter() - started) * 1000.0)
        recorder.record(bundles[sent % len(bundles)])
        sent += 1
        await asyncio.sleep(think_s)
    return sent


async def _round(
    url: str, clients: int, think_s: float, seconds: float
) -> tuple[float, list[float]]:
    engine = create_engine(url)
    recorder = Recorder(engine)
    await recorder.start()
    waits: list[float] = []
    until = time.perf_counter() + seconds
    started = time.perf_counter()
    sent = await asyncio.gather(*(_client(recorder, think_s, until, waits) for _ in range(clients)))
    elapsed = time.perf_counter() - started
    await recorder.stop()
    await engine.dispose()
    return sum(sent) / elapsed, waits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks recorder_backpressure", description=__doc__
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds per variant (3)")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--think-ms", type=float, default=2.0)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args(argv)
    found: dict[str, list[tuple[float, float, float, float]]] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'backpressure.db'}"
        migrations.upgrade(url)
        for index in range(args.rounds):
            names = list(VARIANTS)[index % 2 :] + list(VARIANTS)[: index % 2]
            for name in names:
                recorder_module.ROOM_AGAIN_AT = VARIANTS[name]
                with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                    rate, waits = runner.run(
                        _round(url, args.clients, args.think_ms / 1000.0, args.seconds)
                    )
                waits.sort()
                row = (rate, waits[len(waits) // 2], waits[int(len(waits) * 0.99)], waits[-1])
                found[name].append(row)
                print(
                    f"[backpressure] round {index + 1} {name}: {rate:,.0f} bundles/s, wait p50 "
                    f"{row[1]:.2f} ms, p99 {row[2]:.1f} ms, worst {row[3]:.1f} ms",
                    flush=True,
                )
    for name, rows in found.items():
        rate, p50, p99, worst = (statistics.median(column) for column in zip(*rows, strict=True))
        print(
            f"{name:22} {rate:7,.0f} bundles/s  wait p50 {p50:6.2f} ms  p99 {p99:7.1f} ms  "
            f"worst {worst:7.1f} ms  ({len(rows)} rounds, medians)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

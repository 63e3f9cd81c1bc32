"""`python -m benchmarks recorder_lag`: what the recorder costs the event loop it is fed from.

In process, without HTTP: the recorder fed chat-sized bundles (`benchmarks.writer.chat_bundle`,
built before the round) at `--rate` a second in 2 ms ticks, as requests would, for `--seconds`,
with its writer running on the caller's loop (`on loop`) and not running at all (`no writer`,
the feed's and the probe's own cost), taking turns round by round on a fresh SQLite file and a
fresh Postgres database. Meanwhile a probe task on
the same loop sleeps 5 ms over and over and notes how late it wakes. Per round: the worst and
the 99th-percentile lag, the CPU time of the loop's thread and of the whole process per bundle
(CPU time, unlike lag, hardly moves with other work on a shared machine), and how long the
writer needed after the feed to have everything written.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import uvloop

import migrations
from benchmarks.stores import StoreUnavailable, create_database, drop_database
from benchmarks.writer import chat_bundles
from telemetry.db import create_engine
from telemetry.recorder import Recorder

_DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
_TICK_S = 0.002
_PROBE_S = 0.005
MODES: dict[str, bool] = {"on loop": True, "no writer": False}
"""Whether the writer runs; `no writer` feeds a recorder that is never started: the floor, what
the feed and the probe cost the loop by themselves."""


@dataclass(frozen=True)
class Round:
    lag_worst_ms: float
    lag_p99_ms: float
    loop_cpu_us: float
    process_cpu_us: float
    drain_s: float
    dropped: int


async def _probe(lags: list[float]) -> None:
    while True:
        started = time.perf_counter()
        await asyncio.sleep(_PROBE_S)
        lags.append((time.perf_counter() - started - _PROBE_S) * 1000.0)


async def _round(url: str, writing: bool, rate: int, seconds: float) -> Round:
    total = int(rate * seconds)
    bundles = chat_bundles(total)
    engine = create_engine(url)
    recorder = Recorder(engine, queue_size=total + 1)
    if writing:
        await recorder.start()
    lags: list[float] = []
    probe = asyncio.create_task(_probe(lags))
    loop_cpu, process_cpu = time.thread_time(), time.process_time()
    started = time.perf_counter()
    sent = 0
    while sent < total:
        due = min(total, int((time.perf_counter() - started) * rate) + 1)
        while sent < due:
            recorder.record(bundles[sent])
            sent += 1
        await asyncio.sleep(_TICK_S)
    fed = time.perf_counter()
    if writing:
        await recorder.flush()
    drained = time.perf_counter()
    loop_cpu, process_cpu = time.thread_time() - loop_cpu, time.process_time() - process_cpu
    probe.cancel()
    if writing:
        await recorder.stop()
    await engine.dispose()
    lags.sort()
    return Round(
        lag_worst_ms=lags[-1],
        lag_p99_ms=lags[int(len(lags) * 0.99)],
        loop_cpu_us=loop_cpu / total * 1e6,
        process_cpu_us=process_cpu / total * 1e6,
        drain_s=drained - fed,
        dropped=recorder.stats.dropped,
    )


def _run_store(name: str, url: str, rounds: int, rate: int, seconds: float) -> None:
    migrations.upgrade(url)
    results: dict[str, list[Round]] = {mode: [] for mode in MODES}
    for index in range(rounds):
        order = list(MODES)[index % len(MODES) :] + list(MODES)[: index % len(MODES)]
        for mode in order:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                measured = runner.run(_round(url, MODES[mode], rate, seconds))
            results[mode].append(measured)
            print(
                f"[recorder_lag] {name} round {index + 1} {mode}: worst {measured.lag_worst_ms:.1f}"
                f" ms, p99 {measured.lag_p99_ms:.1f} ms, loop CPU {measured.loop_cpu_us:.0f} us,"
                f" process CPU {measured.process_cpu_us:.0f} us a bundle, drained in "
                f"{measured.drain_s:.2f} s, dropped {measured.dropped}",
                flush=True,
            )
    for mode, rows in results.items():

        def median(field: str, rows: list[Round] = rows) -> float:
            return statistics.median(getattr(row, field) for row in rows)

        print(
            f"{name:8} {mode:9} lag worst {median('lag_worst_ms'):6.1f} ms  p99 "
            f"{median('lag_p99_ms'):5.1f} ms  loop CPU {median('loop_cpu_us'):4.0f} us/bundle  "
            f"process CPU {median('process_cpu_us'):4.0f} us/bundle  drain "
            f"{median('drain_s'):5.2f} s  ({len(rows)} rounds, medians)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks recorder_lag", description=__doc__)
    parser.add_argument("--rounds", type=int, default=4, help="rounds per mode (default 4)")
    parser.add_argument("--rate", type=int, default=1500, help="bundles a second (1500)")
    parser.add_argument("--seconds", type=float, default=6.0, help="seconds of feed (6)")
    parser.add_argument("--postgres-url", default=_DEFAULT_POSTGRES)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument(
        "--switch-interval",
        type=float,
        help="sys.setswitchinterval for the run, in seconds (Python's default: 0.005)",
    )
    args = parser.parse_args(argv)
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    for backend in args.backends.split(","):
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as folder:
                url = f"sqlite:///{Path(folder) / 'recorder.db'}"
                _run_store(backend, url, args.rounds, args.rate, args.seconds)
        elif backend == "postgres":
            try:
                url = create_database(args.postgres_url)
            except StoreUnavailable as error:
                print(f"postgres: not measured ({error})")
                continue
            try:
                _run_store(backend, url, args.rounds, args.rate, args.seconds)
            finally:
                drop_database(args.postgres_url, url)
        else:
            parser.error(f"unknown backend {backend!r}; choose sqlite, postgres")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

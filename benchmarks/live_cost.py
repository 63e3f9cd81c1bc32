"""`python -m benchmarks live`: what the live feed costs each request, watched and not.

The recorder takes the same trace bundles, one at a time with a turn of the event loop after each
(as requests give it), in four settings that alternate round by round:

- `off`: a recorder without a live feed (before the feed existed);
- `unwatched`: with the feed, nobody watching;
- `watched`: one viewer taking every trace, encoding each as the stream does;
- `shared` (with `--redis-url`): as `watched`, plus another worker listening through Redis, so
  every trace is also published.

Two figures per setting, in CPU time (`time.process_time`, so a busy machine blurs them less):
`record` is the recorder call itself, the part inside a request's answer; `total` adds what the
event loop does for the feed afterwards (summaries, fan-out, the viewer's encoding, publishing).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import msgspec
import uvloop

from benchmarks.writer import chat_bundles
from telemetry.db import create_engine
from telemetry.live import LiveHub
from telemetry.live_filter import LiveFilter
from telemetry.live_relay import LiveRelay
from telemetry.recorder import Recorder

SETTINGS = ("off", "unwatched", "watched", "shared")


async def _viewer_reads(hub: LiveHub, stop: asyncio.Event) -> None:
    viewer = hub.attach(LiveFilter())
    try:
        while not stop.is_set():
            for trace in await viewer.next_batch(0.05):
                msgspec.json.encode(trace)
    finally:
        hub.detach(viewer)


async def _round(
    setting: str, requests: int, folder: Path, redis_url: str | None
) -> tuple[float, float]:
    """CPU microseconds per request: (the record call, everything)."""
    bundles = chat_bundles(requests)
    engine = create_engine(f"sqlite:///{folder / 'unused.db'}")
    hub = LiveHub(worker="bench", viewer_queue=requests + 1) if setting != "off" else None
    relay = None
    if hub is not None:
        hub.start()
    if setting == "shared" and hub is not None and redis_url:
        relay = LiveRelay(hub, redis_url, channel_prefix=f"steerway-bench:{uuid.uuid4().hex}")
        await relay.start()
        for _ in range(500):  # five seconds to reach Redis
            if relay.connected:
                break
            await asyncio.sleep(0.01)
        if not relay.connected:
            raise SystemExit(f"cannot reach Redis at {redis_url}")
        hub.remote_watching(True)  # as if another worker had announced a viewer
    recorder = Recorder(engine, queue_size=requests + 1, live=hub)
    stop = asyncio.Event()
    reader = None
    if setting in ("watched", "shared") and hub is not None:
        reader = asyncio.create_task(_viewer_reads(hub, stop))
        await asyncio.sleep(0)
    gc.collect()
    in_record = 0
    started = time.process_time()
    for bundle in bundles:
        before = time.perf_counter_ns()
        recorder.record(bundle)
        in_record += time.perf_counter_ns() - before
        await asyncio.sleep(0)
    await asyncio.sleep(0.06)  # the viewer's last batch
    stop.set()
    if reader is not None:
        await reader
    total = time.process_time() - started
    if relay is not None:
        await relay.close()
    await engine.dispose()
    return in_record / requests / 1000, total / requests * 1e6


async def _measure(
    rounds: int, requests: int, redis_url: str | None
) -> dict[str, list[tuple[float, float]]]:
    chosen = [name for name in SETTINGS if name != "shared" or redis_url]
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in chosen}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(rounds):
            for name in chosen:
                results[name].append(await _round(name, requests, Path(folder), redis_url))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks live", description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--requests", type=int, default=5000, help="requests per round")
    parser.add_argument(
        "--redis-url", default=None, help="also time `shared` (publishing through this Redis)"
    )
    args = parser.parse_args(argv)
    results = uvloop.run(_measure(args.rounds, args.requests, args.redis_url))
    baseline = [total for _, total in results["off"]]
    print(f"{args.rounds} rounds of {args.requests} requests; CPU microseconds per request")
    print(f"{'setting':<10} {'record':>8} {'total':>8} {'total - off (paired median)':>30}")
    for name, figures in results.items():
        record = statistics.median(value for value, _ in figures)
        total = statistics.median(value for _, value in figures)
        paired = statistics.median(t - b for (_, t), b in zip(figures, baseline, strict=True))
        print(f"{name:<10} {record:>8.2f} {total:>8.2f} {paired:>+30.2f}")
    return 0

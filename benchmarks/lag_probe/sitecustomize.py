"""Loaded by Python at start-up when this folder is on `PYTHONPATH` (the `recorder` scenario puts
it there for the gateways it measures; see `benchmarks.loop_lag`). With `STEERWAY_BENCH_LAG_LOG`
set, the first uvloop event loop the process makes (uvicorn's) runs a probe task that sleeps
5 ms over and over and appends `<unix time> <lag ms>` (how much later than asked it woke up) to
that file, flushed twice a second; `STEERWAY_BENCH_SWITCH_INTERVAL` sets the interpreter's thread switch interval
(seconds). Without the variables nothing happens. Self-contained: the measured process may
run another checkout's code, whose `benchmarks` package has no probe."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

PROBE_SLEEP_S = 0.005
_FLUSH_EVERY_S = 0.5


async def _probe(path: str) -> None:
    # Opened once, at start-up; the writes that follow go to the file object's buffer.
    with open(path, "a", buffering=1 << 16) as log:  # noqa: ASYNC230
        flushed = time.monotonic()
        while True:
            started = time.perf_counter()
            await asyncio.sleep(PROBE_SLEEP_S)
            lag_ms = (time.perf_counter() - started - PROBE_SLEEP_S) * 1000.0
            log.write(f"{time.time():.4f} {lag_ms:.3f}\n")
            if time.monotonic() - flushed >= _FLUSH_EVERY_S:
                log.flush()
                flushed = time.monotonic()


def _install(path: str) -> None:
    import uvloop

    make_loop = uvloop.new_event_loop
    tasks: list[asyncio.Task[None]] = []
    probed: list[Any] = []

    def start(loop: Any) -> None:
        tasks.append(loop.create_task(_probe(path), name="bench-loop-lag-probe"))

    def new_event_loop() -> Any:
        loop = make_loop()
        if not probed:  # the first loop is uvicorn's; later ones (the recorder's writer) are not
            probed.append(loop)
            loop.call_soon(start, loop)
        return loop

    uvloop.new_event_loop = new_event_loop


if os.environ.get("STEERWAY_BENCH_LAG_LOG"):
    _install(os.environ["STEERWAY_BENCH_LAG_LOG"])
    if os.environ.get("STEERWAY_BENCH_SWITCH_INTERVAL"):
        import sys

        sys.setswitchinterval(float(os.environ["STEERWAY_BENCH_SWITCH_INTERVAL"]))

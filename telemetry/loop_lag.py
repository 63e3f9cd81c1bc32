"""Event-loop lag: how late a task that asks to wake every few milliseconds actually wakes.

Work that holds the event loop (a long synchronous call, a burst of callbacks) delays every
request the worker is serving; the probe sees it as the time between when its sleep should have
ended and when it ran again. Each wake-up is observed in `steerway_event_loop_lag_seconds`, and
the worst one since the worker started is kept in `steerway_event_loop_lag_max_seconds`.

The clock is `time.perf_counter`, not `loop.time()`: uvloop's loop time is libuv's, cached at the
start of each loop iteration in whole milliseconds, which would hide part of the delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from telemetry import metrics

DEFAULT_INTERVAL_S = 0.01
"""100 wake-ups a second: fine enough to catch a 20 ms stall, a few µs of CPU each."""


class LoopLagProbe:
    """Sleeps `interval_s` in a loop and records how late each wake-up came."""

    def __init__(
        self,
        interval_s: float = DEFAULT_INTERVAL_S,
        observe: Callable[[float], None] | None = None,
        record_worst: Callable[[float], None] | None = None,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        self.interval_s = interval_s
        self._observe = observe or metrics.event_loop_lag.observe
        self._record_worst = record_worst or metrics.event_loop_lag_max.set
        self.worst_s = 0.0
        self.wakeups = 0
        self._task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        interval = self.interval_s
        clock = time.perf_counter
        while True:
            due = clock() + interval
            await asyncio.sleep(interval)
            lag = clock() - due
            if lag < 0.0:
                lag = 0.0
            self.wakeups += 1
            self._observe(lag)
            if lag > self.worst_s:
                self.worst_s = lag
                self._record_worst(lag)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self.run(), name="steerway-loop-lag-probe"
            )

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@asynccontextmanager
async def loop_lag_probe(_app: object = None) -> AsyncIterator[LoopLagProbe]:
    """A probe running for the lifetime of the block (an ASGI lifespan hook takes the app)."""
    probe = LoopLagProbe()
    probe.start()
    try:
        yield probe
    finally:
        await probe.stop()

"""The live feed: each recorded request, summarised, handed to whoever is watching.

The recorder calls `LiveHub.publish` with every trace bundle it receives, but only while
`watched` is true: with nobody watching (on this worker or, through the relay, on another)
the request path pays one attribute read and nothing else. While someone watches, `publish`
appends the bundle to a list and schedules one drain on the event loop; the drain (after the
request's answer has gone) summarises the bundles, offers each summary to every local viewer and
hands the batch to the relay when viewers on other workers are listening.

A viewer has a bounded queue. A viewer whose queue is full when a matching trace arrives is
dropped: it leaves the hub at once (so the hub holds nothing more for it), and its stream ends
with a `dropped` event; the client reconnects. A viewer may also have a row rate: matching
traces beyond it are counted in its statistics but not sent, so a busy gateway cannot flood a
browser.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Callable
from typing import Final, Protocol

from telemetry import metrics
from telemetry.live_filter import LiveFilter
from telemetry.live_stats import RollingStats
from telemetry.live_summary import LiveTrace, summarise
from telemetry.records import TraceBundle

logger = logging.getLogger("steerway.telemetry.live")

PENDING_LIMIT: Final = 10_000
"""Bundles waiting for the drain; only reached if the event loop stalls."""


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class TooManyViewers(Exception):
    """The worker already serves `max_viewers` viewers."""


class Relay(Protocol):
    """Shares summaries with other workers (see `telemetry.live_relay`)."""

    @property
    def connected(self) -> bool: ...

    def send(self, traces: list[LiveTrace]) -> None: ...

    def local_viewers_changed(self, present: bool) -> None: ...


class Viewer:
    """One connected client: its filter, its queue and its statistics."""

    def __init__(
        self, live_filter: LiveFilter, *, capacity: int, rows_per_second: float, now: float
    ) -> None:
        self.filter = live_filter
        self.stats = RollingStats(now)
        self.ended: str | None = None
        """Why the hub let go of this viewer: `dropped` (it fell behind) or `shutdown`."""
        self.capacity = capacity
        self._queue: deque[LiveTrace] = deque()
        self._wake = asyncio.Event()
        self._rate = rows_per_second
        self._allowance = rows_per_second
        self._last = now

    def offer(self, trace: LiveTrace, now: float) -> bool:
        """Queue the trace if it matches; False when the queue is full (drop this viewer)."""
        if not self.filter.matches(trace):
            return True
        shown = self._take_row(now)
        self.stats.add(now, trace.duration_ms, error=trace.status == "error", shown=shown)
        if not shown:
            return True
        if len(self._queue) >= self.capacity:
            return False
        self._queue.append(trace)
        self._wake.set()
        return True

    def end(self, reason: str) -> None:
        self.ended = reason
        self._queue.clear()
        self._wake.set()

    async def next_batch(self, wait: float) -> list[LiveTrace]:
        """What is queued, waiting up to `wait` seconds for something; [] when nothing came
        (or the viewer has ended: see `ended`)."""
        if not self._queue and self.ended is None:
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()
        batch = list(self._queue)
        self._queue.clear()
        return batch

    @property
    def queued(self) -> int:
        return len(self._queue)

    def _take_row(self, now: float) -> bool:
        rate = self._rate
        if rate <= 0:
            return True
        allowance = min(rate, self._allowance + (now - self._last) * rate)
        self._last = now
        if allowance < 1.0:
            self._allowance = allowance
            return False
        self._allowance = allowance - 1.0
        return True


class LiveHub:
    def __init__(
        self,
        *,
        worker: str | None = None,
        workers: int = 1,
        viewer_queue: int = 256,
        max_viewers: int = 32,
        rows_per_second: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if viewer_queue < 1 or max_viewers < 1:
            raise ValueError("viewer_queue and max_viewers must be at least 1")
        self.worker = worker or worker_name()
        self.workers = workers
        """Worker processes serving beside this one's (this one included)."""
        self.viewer_queue = viewer_queue
        self.max_viewers = max_viewers
        self.rows_per_second = rows_per_second
        self.watched = False
        """Read by the recorder on every request: True while anyone, here or elsewhere, watches."""
        self._clock = clock
        self._viewers: tuple[Viewer, ...] = ()
        self._pending: list[TraceBundle] = []
        self._scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._relay: Relay | None = None
        self._remote_watching = False
        self._failing = False

    # -- the request path ------------------------------------------------------------------

    def publish(self, bundle: TraceBundle) -> None:
        """Hand one request's records to the feed; never blocks, never raises."""
        pending = self._pending
        if len(pending) >= PENDING_LIMIT:
            return
        pending.append(bundle)
        if not self._scheduled:
            loop = self._loop
            if loop is None:
                pending.clear()
                return
            self._scheduled = True
            loop.call_soon(self._drain)

    # -- viewers ---------------------------------------------------------------------------

    def start(self) -> None:
        """Bind to the running event loop (call from it)."""
        self._loop = asyncio.get_running_loop()

    def attach(self, live_filter: LiveFilter) -> Viewer:
        if len(self._viewers) >= self.max_viewers:
            raise TooManyViewers()
        if self._loop is None:
            self.start()
        viewer = Viewer(
            live_filter,
            capacity=self.viewer_queue,
            rows_per_second=self.rows_per_second,
            now=self._clock(),
        )
        first = not self._viewers
        self._viewers = (*self._viewers, viewer)
        metrics.live_viewers.inc()
        self._update_watched()
        if first and self._relay is not None:
            self._relay.local_viewers_changed(True)
        return viewer

    def detach(self, viewer: Viewer) -> None:
        if viewer not in self._viewers:
            return
        self._viewers = tuple(v for v in self._viewers if v is not viewer)
        metrics.live_viewers.dec()
        self._update_watched()
        if not self._viewers and self._relay is not None:
            self._relay.local_viewers_changed(False)

    def close(self) -> None:
        """End every viewer's stream (the server is stopping)."""
        for viewer in self._viewers:
            self.detach(viewer)
            viewer.end("shutdown")

    @property
    def viewers(self) -> int:
        return len(self._viewers)

    @property
    def shared(self) -> bool:
        """True while viewers here also receive other workers' requests."""
        return self._relay is not None and self._relay.connected

    @property
    def complete(self) -> bool:
        """True while viewers here receive every worker's requests (or this is the only one)."""
        return self.workers == 1 or self.shared

    # -- the relay -------------------------------------------------------------------------

    def attach_relay(self, relay: Relay) -> None:
        self._relay = relay

    def remote_watching(self, watching: bool) -> None:
        """The relay's news: viewers on other workers are (or no longer are) listening."""
        self._remote_watching = watching
        self._update_watched()

    def deliver(self, traces: list[LiveTrace]) -> None:
        """Summaries another worker published: to the local viewers only."""
        self._fan_out(traces)

    # -- the drain -------------------------------------------------------------------------

    def _update_watched(self) -> None:
        self.watched = bool(self._viewers) or self._remote_watching
        if not self.watched:
            self._pending.clear()

    def _drain(self) -> None:
        self._scheduled = False
        bundles = self._pending
        if not bundles:
            return
        self._pending = []
        traces = []
        for bundle in bundles:
            try:
                traces.append(summarise(bundle, self.worker))
            except Exception as error:  # a malformed bundle must not stop the feed
                self._note_failure(error)
        if len(traces) == len(bundles):
            self._failing = False
        if not traces:
            return
        metrics.live_summaries_total.inc(len(traces))
        self._fan_out(traces)
        relay = self._relay
        if relay is not None and self._remote_watching:
            relay.send(traces)

    def _fan_out(self, traces: list[LiveTrace]) -> None:
        if not self._viewers:
            return
        now = self._clock()
        for viewer in self._viewers:
            for trace in traces:
                if not viewer.offer(trace, now):
                    self.detach(viewer)
                    viewer.end("dropped")
                    metrics.live_viewers_dropped_total.inc()
                    break

    def _note_failure(self, error: Exception) -> None:
        if not self._failing:  # once until a drain succeeds again
            logger.error("live feed: could not summarise a trace (%s)", type(error).__name__)
            self._failing = True

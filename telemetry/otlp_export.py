"""The OTLP span exporter: a second consumer of the bundles the recorder's writer takes.

The recorder's writer task hands each batch it takes to `offer`, which keeps the sampled traces
in a bounded queue of its own and returns at once; a task of the exporter encodes them (in a
worker thread) and POSTs them as `application/x-protobuf` to the collector. A slow or dead
collector therefore holds up neither the database writer nor any request: the queue fills, and
the traces that find it full are dropped and counted.

An export request is retried on 429, 502, 503, 504, timeouts and connection errors, waiting
`Retry-After` when the collector sends one (at most `max_backoff`), else an exponential backoff;
after `max_attempts` its spans are dropped and counted. Other answers are not retried: the same
request would be refused again. Traces that reached the gateway through OTLP ingest are not
exported again, so a collector that also sends to the gateway cannot make a loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Protocol

import httpx
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from telemetry.batch_waits import SettledWaiters, wait_to_fill
from telemetry.otlp_http import (
    ExportFailure,
    describe,
    host_of,
    new_client,
    post,
    request_headers,
)
from telemetry.otlp_spans import SpanEncoder, export_trace_id, sampled
from telemetry.records import TraceBundle

logger = logging.getLogger("steerway.telemetry.otlp")

_INGESTED: Final = "otlp"


class ExportObserver(Protocol):
    """Hook for metrics about the export (the gateway feeds Prometheus from it)."""

    def exported(self, spans: int) -> None: ...
    def dropped(self, reason: str, spans: int) -> None: ...
    def failed(self, reason: str) -> None: ...
    def queue_depth(self, depth: int) -> None: ...


@dataclass(frozen=True, slots=True)
class ExportStats:
    queued_traces: int
    exported_spans: int
    dropped_spans: dict[str, int]
    failed_attempts: int
    queue_depth: int


class OtlpExporter:
    """Exports sampled traces to one OTLP/HTTP traces URL, in batches, off the request path."""

    def __init__(
        self,
        encoder: SpanEncoder,
        *,
        url: str,
        headers: Mapping[str, str] | None = None,
        sampling_ratio: float = 1.0,
        compression: str = "gzip",
        timeout: float = 10.0,
        queue_size: int = 10_000,
        batch_size: int = 512,
        max_attempts: int = 5,
        max_backoff: float = 30.0,
        first_backoff: float = 0.5,
        flush_interval: float = 1.0,
        stop_timeout: float = 10.0,
        observer: ExportObserver | None = None,
    ) -> None:
        if queue_size < 1 or batch_size < 1 or max_attempts < 1:
            raise ValueError("queue_size, batch_size and max_attempts must be at least 1")
        self._encoder = encoder
        self._url = url
        self._gzip = compression == "gzip"
        self._headers = request_headers(headers or {}, gzip=self._gzip)
        self._ratio = sampling_ratio
        self._timeout = timeout
        self._capacity = queue_size
        self._batch_size = batch_size
        self._max_attempts = max_attempts
        self._max_backoff = max_backoff
        self._first_backoff = first_backoff
        self._flush_interval = flush_interval
        self._stop_timeout = stop_timeout
        self._observer = observer

        self._queue: deque[TraceBundle] = deque()
        self._in_flight: list[TraceBundle] = []
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._failing = False

        self._queued = 0
        self._settled = 0
        self._exported = 0
        self._dropped: dict[str, int] = {}
        self._failed_attempts = 0
        self._flush_waiters = SettledWaiters()

    # -- the recorder's writer task ------------------------------------------------------------

    def offer(self, bundles: Iterable[TraceBundle]) -> None:
        """Queue the sampled traces among `bundles`; never blocks or raises. Those that find
        the queue full are dropped and counted."""
        queue = self._queue
        full = 0
        for bundle in bundles:
            trace = bundle.trace
            if trace.source == _INGESTED or not sampled(export_trace_id(trace), self._ratio):
                continue
            if len(queue) >= self._capacity:
                full += len(bundle.spans)
                continue
            queue.append(bundle)
            self._queued += 1
        if full:
            self._drop("queue_full", full)
        if queue:
            self._wake.set()
        self._report_depth()

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is not None:
            return
        self._client = new_client(self._timeout)
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name="steerway-otlp-exporter"
        )

    async def flush(self) -> None:
        """Wait until every trace queued so far is exported or dropped."""
        target = self._queued
        if self._settled >= target:
            return
        if self._task is None or self._task.done():
            raise RuntimeError("the exporter is not running: call start() first")
        await self._flush_waiters.wait(target, self._wake)

    async def stop(self) -> None:
        """Export what is queued (within `stop_timeout`; the rest is dropped and counted)."""
        self._capacity = 0
        task = self._task
        if task is not None:
            self._stopping = True
            self._wake.set()
            try:
                await asyncio.wait_for(asyncio.shield(task), self._stop_timeout)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        left = self._in_flight + list(self._queue)
        self._in_flight = []
        self._queue.clear()
        if left:
            self._drop("shutdown", sum(len(b.spans) for b in left))
            self._settle(len(left))
        self._flush_waiters.settled(self._settled, everything=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @property
    def stats(self) -> ExportStats:
        return ExportStats(
            queued_traces=self._queued,
            exported_spans=self._exported,
            dropped_spans=dict(self._dropped),
            failed_attempts=self._failed_attempts,
            queue_depth=len(self._queue),
        )

    # -- the export task -----------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            if not self._queue:
                if self._stopping:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            await self._collect()
            batch = [self._queue.popleft() for _ in range(min(self._batch_size, len(self._queue)))]
            self._report_depth()
            self._in_flight = batch
            try:
                await self._export(batch)
            except Exception as error:  # never let one bad batch end the export task
                logger.error("OTLP export: %d traces lost to %s", len(batch), type(error).__name__)
                self._drop("failed", sum(len(b.spans) for b in batch))
            self._in_flight = []
            self._settle(len(batch))

    async def _collect(self) -> None:
        """Give the batch up to `flush_interval` to fill, unless someone waits for it."""
        await wait_to_fill(self._wake, self._batch_ready, self._flush_interval)

    def _batch_ready(self) -> bool:
        return len(self._queue) >= self._batch_size or self._flush_waiters.waiting or self._stopping

    async def _export(self, batch: list[TraceBundle]) -> None:
        spans = sum(len(b.spans) for b in batch)
        if not spans:
            return
        body = await asyncio.to_thread(self._encode, batch)
        started = time.monotonic()
        for attempt in range(1, self._max_attempts + 1):
            try:
                rejected = await self._post(body)
            except ExportFailure as failure:
                self._note_failure(failure)
                if not failure.retry or attempt == self._max_attempts:
                    break
                delay = failure.delay
                if delay is None:
                    delay = self._first_backoff * 2 ** (attempt - 1)
                delay = min(delay, self._max_backoff)
                if self._stopping and time.monotonic() - started + delay > self._stop_timeout:
                    break
                await asyncio.sleep(delay)
                continue
            if self._failing:
                logger.warning("OTLP export to %s works again", host_of(self._url))
                self._failing = False
            accepted = max(0, spans - rejected)
            self._exported += accepted
            if self._observer is not None:
                with contextlib.suppress(Exception):
                    self._observer.exported(accepted)
            if rejected:
                self._drop("rejected", min(rejected, spans))
            return
        self._drop("failed", spans)

    def _encode(self, batch: list[TraceBundle]) -> bytes:
        body = self._encoder.request(batch).SerializeToString()
        return gzip.compress(body, compresslevel=5) if self._gzip else body

    async def _post(self, body: bytes) -> int:
        """Send one request; the number of spans the collector rejected in a partial success."""
        assert self._client is not None
        return _rejected_spans(await post(self._client, self._url, body, self._headers))

    # -- bookkeeping ---------------------------------------------------------------------------

    def _note_failure(self, failure: ExportFailure) -> None:
        self._failed_attempts += 1
        if not self._failing:
            logger.warning("OTLP export to %s failed (%s)", host_of(self._url), describe(failure))
            self._failing = True
        if self._observer is not None:
            with contextlib.suppress(Exception):
                self._observer.failed(failure.reason)

    def _drop(self, reason: str, spans: int) -> None:
        if spans <= 0:
            return
        self._dropped[reason] = self._dropped.get(reason, 0) + spans
        if self._observer is not None:
            with contextlib.suppress(Exception):
                self._observer.dropped(reason, spans)

    def _report_depth(self) -> None:
        if self._observer is not None:
            with contextlib.suppress(Exception):
                self._observer.queue_depth(len(self._queue))

    def _settle(self, traces: int) -> None:
        self._settled += traces
        self._flush_waiters.settled(self._settled)


def _rejected_spans(content: bytes) -> int:
    if not content:
        return 0
    try:
        answer = ExportTraceServiceResponse.FromString(content)
    except DecodeError:
        return 0  # a collector answering 2xx with something else still took the spans
    return int(answer.partial_success.rejected_spans)

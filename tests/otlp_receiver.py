"""A local OTLP/HTTP traces receiver: decodes every `ExportTraceServiceRequest` it is sent.

It runs its own event loop in a thread (for synchronous and async tests alike) on 127.0.0.1,
keeps each request's headers and decoded spans, and answers with the statuses it is scripted
with (then 200), so tests can make a collector that throttles, fails or refuses.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.threaded_server import ThreadedServer


@dataclass
class Received:
    """One export request as it arrived."""

    path: str
    headers: dict[str, str]
    body_bytes: int
    request: ExportTraceServiceRequest | None
    status: int
    metrics: ExportMetricsServiceRequest | None = None


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    rejected_spans: int = 0


def value_of(value: AnyValue) -> Any:
    """An attribute's value as Python: arrays as lists."""
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [value_of(item) for item in value.array_value.values]
    if kind is None:
        return None
    return getattr(value, kind)


def attributes_of(pairs: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for pair in pairs:
        assert isinstance(pair, KeyValue)
        found[pair.key] = value_of(pair.value)
    return found


class OtlpReceiver(ThreadedServer):
    client_max_size = 64 * 1024**2
    auto_decompress = False  # bodies are read as sent, so a test sees they really were gzipped

    def __init__(self, answers: list[Answer] | None = None) -> None:
        super().__init__()
        self._answers: deque[Answer] = deque(answers or [])
        self._lock = threading.Lock()
        self.received: list[Received] = []

    def route(self, app: web.Application) -> None:
        app.router.add_route("POST", "/{tail:.*}", self._handle)

    def spans(self) -> list[tuple[dict[str, Any], Span]]:
        """Every span accepted so far, with its resource's attributes."""
        with self._lock:
            requests = [r.request for r in self.received if r.status == 200 and r.request]
        return [
            (attributes_of(resource_spans.resource.attributes), span)
            for request in requests
            for resource_spans in request.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]

    def wait_spans(self, span_ids: set[str], *, timeout: float = 15.0) -> dict[str, Span]:
        """Poll until the spans with these ids (hex) have arrived; those that did, by id."""
        deadline = time.monotonic() + timeout
        while True:
            found = {s.span_id.hex(): s for _, s in self.spans() if s.span_id.hex() in span_ids}
            if len(found) == len(span_ids) or time.monotonic() >= deadline:
                return found

            time.sleep(0.05)

    def metric_exports(self) -> list[ExportMetricsServiceRequest]:
        with self._lock:
            return [r.metrics for r in self.received if r.metrics is not None]

    def wait_requests(self, count: int, timeout: float = 15.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                received = list(self.received)
            if len(received) >= count or time.monotonic() >= deadline:
                return received
            time.sleep(0.05)

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        body = gzip.decompress(raw) if request.headers.get("content-encoding") == "gzip" else raw
        answer = self._answers.popleft() if self._answers else Answer()
        decoded: ExportTraceServiceRequest | None = None
        metrics: ExportMetricsServiceRequest | None = None
        if request.headers.get("content-type") != "application/x-protobuf":
            pass
        elif request.path.endswith("/v1/metrics"):
            metrics = ExportMetricsServiceRequest.FromString(body)
        else:
            decoded = ExportTraceServiceRequest.FromString(body)
        with self._lock:
            self.received.append(
                Received(
                    path=request.path,
                    headers={k.lower(): v for k, v in request.headers.items()},
                    body_bytes=len(raw),
                    request=decoded,
                    status=answer.status,
                    metrics=metrics,
                )
            )
        reply = ExportTraceServiceResponse()
        if answer.rejected_spans:
            reply.partial_success.rejected_spans = answer.rejected_spans
            reply.partial_success.error_message = "some spans were refused"
        return web.Response(
            status=answer.status,
            body=reply.SerializeToString() if answer.status == 200 else b"",
            headers={"content-type": "application/x-protobuf", **answer.headers},
        )

"""The request path's last step, for every request whether it got through or not: the trace
handed to the recorder (one enqueue) and the request's metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from gateway.exchange import Exchange
from gateway.upstream.routing import Router
from telemetry import metrics
from telemetry.records import TraceBundle, TraceRecord
from telemetry.sampling import PerMinuteSampler
from telemetry.schema import DEFAULT_WORKSPACE_ID

logger = logging.getLogger("steerway.proxy")

_requests_total = metrics.Labelled(metrics.requests_total)
_gateway_overhead = metrics.Labelled(metrics.gateway_overhead)
_unauthenticated = metrics.Labelled(metrics.unauthenticated_requests)


class Recording:
    __slots__ = ("_refused_sample", "record", "router")

    def __init__(
        self,
        record: Callable[[TraceBundle], bool],
        router: Router,
        unauthenticated_traces_per_minute: int = 0,
    ) -> None:
        self.record = record
        self.router = router
        self._refused_sample = (
            PerMinuteSampler(unauthenticated_traces_per_minute)
            if unauthenticated_traces_per_minute > 0
            else None
        )

    def finish(self, exchange: Exchange) -> None:
        ended = time.perf_counter()
        if exchange.key is not None or self._keep_refused(exchange):
            self._record(exchange, ended)
        model = exchange.requested_model
        model_label = model if model is not None and model in self.router else "unknown"
        _requests_total(exchange.route, model_label, str(exchange.http_status)).inc()
        if exchange.overhead_ms is not None:
            _gateway_overhead(exchange.route).observe(exchange.overhead_ms / 1000.0)

    def _keep_refused(self, exchange: Exchange) -> bool:
        """Count a request refused before a key was accepted; whether to store it too.

        Anyone can send these, as fast as they like: stored one by one they would grow the
        database and the recorder's queue at the sender's pace.
        """
        reason = exchange.error_type
        _unauthenticated(
            exchange.route, reason if reason in metrics.REFUSAL_REASONS else "other"
        ).inc()
        sample = self._refused_sample
        return sample is not None and sample.take()

    def _record(self, exchange: Exchange, ended: float) -> None:
        if exchange.response_started:
            exchange.trace.add_span(
                "response",
                "gateway",
                exchange.responded_at,
                ended,
                status=exchange.status,
                attributes={"http.status_code": exchange.http_status, "stream": exchange.stream},
            )
        key = exchange.key
        workspace = key.workspace_id if key is not None else DEFAULT_WORKSPACE_ID
        trace = TraceRecord(
            trace_id=exchange.trace.trace_id,
            workspace_id=workspace,
            api_key_id=key.key_id if key is not None else None,
            request_id=exchange.request_id,
            end_user=exchange.end_user,
            route=exchange.route,
            method=exchange.method,
            started_at=exchange.trace.start_wall,
            ended_at=exchange.trace.wall(ended),
            status=exchange.status,
            http_status=exchange.http_status,
            requested_model=exchange.requested_model,
            provider=exchange.provider,
            provider_model=exchange.provider_model,
            stream=exchange.stream,
            error_type=exchange.error_type,
            error_message=exchange.error_message,
            overhead_ms=exchange.overhead_ms,
            tags=exchange.tags,
            metadata=exchange.metadata,
            features=exchange.features,
            parent_trace_id=exchange.trace.parent_trace_id,
            parent_span_id=exchange.trace.parent_span_id,
        )
        try:
            self.record(exchange.trace.bundle(trace, ended))
        except Exception:
            logger.exception("could not hand trace %s to the recorder", trace.trace_id)

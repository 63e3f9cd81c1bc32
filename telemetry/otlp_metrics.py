"""Prometheus series about the OTLP span export (`steerway_otlp_*`).

Defined in their own module, imported only when `telemetry.otlp` is configured, so a gateway
that does not export shows none of them.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

spans_exported = Counter(
    "steerway_otlp_spans_exported_total",
    "Spans the OTLP collector accepted.",
)
spans_dropped = Counter(
    "steerway_otlp_spans_dropped_total",
    "Spans not exported, by reason: queue_full (the export queue was full), failed (the "
    "collector did not take them after every attempt), rejected (the collector refused them "
    "in a partial success), shutdown (still queued when the process stopped).",
    ["reason"],
)
export_errors = Counter(
    "steerway_otlp_export_errors_total",
    "Failed export attempts (retried or not), by reason: connection, timeout, throttled (429), "
    "unavailable (502, 503, 504), refused (any other answer that is not a success).",
    ["reason"],
)
queue_depth = Gauge(
    "steerway_otlp_queue_depth",
    "Traces waiting in the OTLP export queue.",
    multiprocess_mode="livesum",
)


class PrometheusExportObserver:
    """Feeds the exporter's events into the `steerway_otlp_*` series."""

    def exported(self, spans: int) -> None:
        spans_exported.inc(spans)

    def dropped(self, reason: str, spans: int) -> None:
        spans_dropped.labels(reason).inc(spans)

    def failed(self, reason: str) -> None:
        export_errors.labels(reason).inc()

    def queue_depth(self, depth: int) -> None:
        queue_depth.set(depth)

"""Prometheus series as OTLP metrics, sent to a local receiver that decodes the protobuf:
counters, gauges and histograms with their labels and values, headers, gzip, and a collector
that is down."""

from __future__ import annotations

from opentelemetry.proto.metrics.v1.metrics_pb2 import AGGREGATION_TEMPORALITY_CUMULATIVE, Metric
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from telemetry.otlp_metric_export import MetricExporter
from telemetry.otlp_spans import SpanEncoder
from tests.otlp_receiver import OtlpReceiver, attributes_of
from tests.ports import closed_port
from tests.telemetry.test_otlp_export import CountingObserver


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    requests = Counter(
        "steerway_test_requests_total", "Requests.", ["route", "status_code"], registry=registry
    )
    requests.labels("/v1/chat/completions", "200").inc(7)
    requests.labels("/v1/embeddings", "502").inc(2)
    Gauge("steerway_test_queue_depth", "Depth.", registry=registry).set(42)
    latency = Histogram(
        "gen_ai_test_duration_seconds", "Latency.", ["model"], buckets=(0.1, 1.0), registry=registry
    )
    for seconds in (0.05, 0.5, 0.7, 3.0):
        latency.labels("mock-gpt").observe(seconds)
    Counter("other_series_total", "Not ours.", registry=registry).inc()
    return registry


def _exporter(url: str, registry: CollectorRegistry, **options: object) -> MetricExporter:
    encoder = SpanEncoder(service_name="metrics-test")
    return MetricExporter(
        url=f"{url}/v1/metrics",
        resource=encoder.resource,
        scope=encoder.scope,
        interval=3600,
        registry=registry,
        **options,  # type: ignore[arg-type]
    )


async def test_series_arrive_as_cumulative_otlp_metrics() -> None:
    with OtlpReceiver() as receiver:
        exporter = _exporter(receiver.url, _registry(), headers={"x-api-key": "k-123"})
        assert await exporter.export()
        (sent,) = receiver.received
        (request,) = receiver.metric_exports()
    assert sent.path == "/v1/metrics"
    assert sent.headers["x-api-key"] == "k-123"
    assert sent.headers["content-encoding"] == "gzip"
    (resource_metrics,) = request.resource_metrics
    assert attributes_of(resource_metrics.resource.attributes)["service.name"] == "metrics-test"
    (scope_metrics,) = resource_metrics.scope_metrics
    assert scope_metrics.scope.name == "steerway"
    metrics: dict[str, Metric] = {m.name: m for m in scope_metrics.metrics}
    assert set(metrics) == {
        "steerway_test_requests",
        "steerway_test_queue_depth",
        "gen_ai_test_duration_seconds",
    }

    requests = metrics["steerway_test_requests"].sum
    assert requests.is_monotonic
    assert requests.aggregation_temporality == AGGREGATION_TEMPORALITY_CUMULATIVE
    assert {
        (
            attributes_of(p.attributes)["route"],
            attributes_of(p.attributes)["status_code"],
        ): p.as_double
        for p in requests.data_points
    } == {("/v1/chat/completions", "200"): 7.0, ("/v1/embeddings", "502"): 2.0}
    assert all(p.start_time_unix_nano < p.time_unix_nano for p in requests.data_points)

    (depth,) = metrics["steerway_test_queue_depth"].gauge.data_points
    assert depth.as_double == 42.0

    (latency,) = metrics["gen_ai_test_duration_seconds"].histogram.data_points
    assert attributes_of(latency.attributes) == {"model": "mock-gpt"}
    assert list(latency.explicit_bounds) == [0.1, 1.0]
    assert list(latency.bucket_counts) == [1, 2, 1]
    assert latency.count == 4
    assert latency.sum == 0.05 + 0.5 + 0.7 + 3.0


async def test_a_collector_that_is_down_is_counted() -> None:
    observer = CountingObserver()
    exporter = _exporter(
        f"http://127.0.0.1:{closed_port()}", _registry(), observer=observer, compression="none"
    )
    assert not await exporter.export()
    assert observer.failures == ["connection"]
    assert exporter.exports == 0

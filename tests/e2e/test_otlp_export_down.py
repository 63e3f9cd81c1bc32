"""OTLP export through running gateways of their own, on SQLite and Postgres: to a collector
that is down (requests are served and recorded as usual, and the spans are dropped and
counted), and from two workers (each exports its own spans and metrics)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.e2e.conftest import Database, GatewayProcess, MockProcess, mock_config
from tests.e2e.test_otlp_export import chat, metric
from tests.otlp_receiver import OtlpReceiver, attributes_of
from tests.ports import closed_port


def test_a_collector_that_is_down_costs_counted_spans_and_no_records(
    backend_database: Database,
    mock_provider: MockProcess,
    start_gateway: Callable[..., GatewayProcess],
) -> None:
    gateway = start_gateway(
        backend_database,
        mock_config(
            mock_provider,
            telemetry={
                "otlp": {
                    "endpoint": f"http://127.0.0.1:{closed_port()}",
                    "max_attempts": 2,
                    "max_backoff_seconds": 0.1,
                }
            },
        ),
        master_key="sk-master-" + secrets.token_hex(8),
    )
    trace_ids = [chat(gateway) for _ in range(3)]
    rows = backend_database.wait_rows(
        "SELECT trace_id FROM traces WHERE trace_id IN (:a, :b, :c)",
        count=3,
        a=trace_ids[0],
        b=trace_ids[1],
        c=trace_ids[2],
    )
    assert len(rows) == 3
    stored = backend_database.rows(
        "SELECT count(*) AS n FROM spans WHERE trace_id IN (:a, :b, :c)",
        a=trace_ids[0],
        b=trace_ids[1],
        c=trace_ids[2],
    )[0]["n"]
    dropped = 0.0
    deadline = time.monotonic() + 15
    while dropped < stored and time.monotonic() < deadline:
        time.sleep(0.1)
        dropped = metric(gateway, "steerway_otlp_spans_dropped_total", reason="failed")
    assert dropped == stored
    assert metric(gateway, "steerway_otlp_spans_exported_total") == 0
    assert metric(gateway, "steerway_otlp_export_errors_total", reason="connection") >= 2
    assert metric(gateway, "steerway_telemetry_dropped_total") == 0


def test_each_worker_exports_its_own_spans_and_metrics(
    backend_database: Database,
    mock_provider: MockProcess,
    start_gateway: Callable[..., GatewayProcess],
) -> None:
    with OtlpReceiver() as receiver:
        gateway = start_gateway(
            backend_database,
            mock_config(
                mock_provider,
                telemetry={"otlp": {"endpoint": receiver.url, "metrics_interval_seconds": 0.3}},
            ),
            master_key="sk-master-" + secrets.token_hex(8),
            workers=2,
        )
        trace_ids = {chat(gateway) for _ in range(6)}
        deadline = time.monotonic() + 30
        instances: set[str] = set()
        while time.monotonic() < deadline and len(instances) < 2:
            time.sleep(0.2)
            instances = {
                str(
                    attributes_of(export.resource_metrics[0].resource.attributes)[
                        "service.instance.id"
                    ]
                )
                for export in receiver.metric_exports()
            }
        assert len(instances) == 2
        deadline = time.monotonic() + 30
        exported: set[str] = set()
        while time.monotonic() < deadline and exported != trace_ids:
            time.sleep(0.2)
            exported = {
                str(attributes_of(span.attributes)["steerway.trace_id"])
                for _, span in receiver.spans()
                if span.kind == Span.SPAN_KIND_SERVER
            }
        assert exported == trace_ids

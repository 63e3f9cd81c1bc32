"""OTLP export through a running gateway, on SQLite and Postgres: requests made with the openai
SDK to the mock provider arrive at a local OTLP/HTTP receiver (which decodes the protobuf) as
spans whose structure, trace ids and GenAI attributes match what the gateway stored."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import Database, GatewayProcess, MockProcess, mock_config
from tests.otlp_receiver import OtlpReceiver, attributes_of

CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"
RULE = {
    "id": "otlp-tagged",
    "name": "Traffic tagged otlp",
    "when": {"tags": {"contains": "otlp"}},
    "then": {"tag": "exported"},
}


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        yield running


@pytest.fixture(scope="module")
def token() -> str:
    return "otlp-" + secrets.token_hex(12)


@pytest.fixture(scope="module")
def exporting(
    backend_database: Database,
    mock_provider: MockProcess,
    receiver: OtlpReceiver,
    token: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GatewayProcess]:
    config = mock_config(
        mock_provider,
        rules=[RULE],
        telemetry={
            "spill_dir": str(tmp_path_factory.mktemp("spill")),
            "otlp": {
                "endpoint": receiver.url,
                "headers": {"Authorization": "Bearer ${OTLP_TOKEN}"},
                "service_name": "steerway-e2e",
                "metrics_interval_seconds": 0.5,
            },
        },
    )
    process = GatewayProcess(
        backend_database,
        config,
        tmp_path_factory.mktemp("otlp"),
        master_key="sk-master-" + secrets.token_hex(8),
        env={"OTLP_TOKEN": token},
    )
    try:
        yield process
    finally:
        output = process.stop()
        assert token not in output


def metric(gateway: GatewayProcess, name: str, **labels: str) -> float:
    text = httpx.get(f"{gateway.url}/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def _exported(
    receiver: OtlpReceiver, database: Database, trace_id: str
) -> tuple[dict[str, Span], list[dict[str, Any]]]:
    """The spans received for one request (by span id) and the span rows stored for it."""
    stored = database.wait_rows(
        "SELECT span_id, parent_span_id, name FROM spans WHERE trace_id = :t", count=3, t=trace_id
    )
    return receiver.wait_spans({row["span_id"] for row in stored}), stored


def _root(spans: dict[str, Span]) -> Span:
    (root,) = [s for s in spans.values() if s.kind == Span.SPAN_KIND_SERVER]
    return root


def _clients(spans: dict[str, Span]) -> list[Span]:
    return [s for s in spans.values() if s.kind == Span.SPAN_KIND_CLIENT]


def chat(gateway: GatewayProcess, *, stream: bool = False, **extra: Any) -> str:
    client = gateway.client()
    messages: Any = [{"role": "user", "content": f"say {secrets.token_hex(4)}"}]
    if stream:
        with client.chat.completions.with_streaming_response.create(
            model="mock-gpt", messages=messages, stream=True, **extra
        ) as response:
            assert "data: [DONE]" in list(response.iter_lines())
            return str(response.headers["x-steerway-trace-id"])
    raw = client.chat.completions.with_raw_response.create(
        model="mock-gpt", messages=messages, **extra
    )
    return str(raw.headers["x-steerway-trace-id"])


def test_spans_match_what_the_gateway_stored(
    exporting: GatewayProcess, receiver: OtlpReceiver, mock_provider: MockProcess, token: str
) -> None:
    database = exporting.database
    plain = chat(exporting)
    streamed = chat(exporting, stream=True, stream_options={"include_usage": True})
    for trace_id in (plain, streamed):
        spans, stored = _exported(receiver, database, trace_id)
        assert set(spans) == {row["span_id"] for row in stored}
        root = _root(spans)
        assert {s.trace_id.hex() for s in spans.values()} == {trace_id}
        assert root.parent_span_id == b""
        assert root.name == "POST /v1/chat/completions"
        for row in stored:
            if row["span_id"] != root.span_id.hex():
                assert spans[row["span_id"]].parent_span_id == root.span_id
        root_attributes = attributes_of(root.attributes)
        assert root_attributes["steerway.trace_id"] == trace_id
        assert root_attributes["http.response.status_code"] == 200
        assert root_attributes["steerway.rule.matched"] == []

        (call,) = _clients(spans)
        (interaction,) = database.wait_rows(
            "SELECT span_id, operation, provider_model, prompt_tokens, completion_tokens,"
            " finish_reason, stream FROM ai_interactions WHERE trace_id = :t",
            t=trace_id,
        )
        assert call.span_id.hex() == interaction["span_id"]
        attributes = attributes_of(call.attributes)
        assert call.name == f"chat {interaction['provider_model']}"
        assert attributes["gen_ai.operation.name"] == interaction["operation"] == "chat"
        assert attributes["gen_ai.provider.name"] == "openai"
        assert attributes["gen_ai.request.model"] == interaction["provider_model"]
        assert attributes["gen_ai.response.model"] == interaction["provider_model"]
        assert attributes["gen_ai.usage.input_tokens"] == interaction["prompt_tokens"]
        assert attributes["gen_ai.usage.output_tokens"] == interaction["completion_tokens"]
        assert interaction["prompt_tokens"] > 0 and interaction["completion_tokens"] > 0
        assert attributes["gen_ai.response.finish_reasons"] == [interaction["finish_reason"]]
        assert attributes["steerway.stream"] is bool(interaction["stream"])
        mock = urlsplit(mock_provider.url)
        assert (attributes["server.address"], attributes["server.port"]) == (
            mock.hostname,
            mock.port,
        )
        assert "error.type" not in attributes

    sent = receiver.wait_requests(1)
    assert {r.headers.get("authorization") for r in sent} == {f"Bearer {token}"}
    assert {r.headers.get("content-encoding") for r in sent} == {"gzip"}
    resources = {tuple(sorted(resource.items())) for resource, _ in receiver.spans()}
    assert all(dict(r)["service.name"] == "steerway-e2e" for r in resources)
    assert metric(exporting, "steerway_otlp_spans_exported_total") >= 2 * 3


def test_a_callers_traceparent_puts_the_spans_in_its_trace(
    exporting: GatewayProcess, receiver: OtlpReceiver
) -> None:
    trace_id = chat(exporting, extra_headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"})
    spans, stored = _exported(receiver, exporting.database, trace_id)
    assert set(spans) == {row["span_id"] for row in stored}
    assert {s.trace_id.hex() for s in spans.values()} == {CALLER_TRACE}
    root = _root(spans)
    assert root.parent_span_id.hex() == CALLER_SPAN
    assert attributes_of(root.attributes)["steerway.trace_id"] == trace_id


def test_a_provider_error_is_an_error_span(
    exporting: GatewayProcess, receiver: OtlpReceiver
) -> None:
    client = exporting.client()
    with pytest.raises(Exception) as raised:
        client.chat.completions.with_raw_response.create(
            model="mock-gpt",
            messages=[{"role": "user", "content": "fail"}],
            extra_body={"mock": {"error": 400}},
        )
    response = getattr(raised.value, "response", None)
    assert response is not None
    trace_id = response.headers["x-steerway-trace-id"]
    spans, _ = _exported(receiver, exporting.database, trace_id)
    (call,) = _clients(spans)
    (interaction,) = exporting.database.wait_rows(
        "SELECT error_type, http_status FROM ai_interactions WHERE trace_id = :t", t=trace_id
    )
    attributes = attributes_of(call.attributes)
    assert interaction["error_type"]
    assert attributes["error.type"] == interaction["error_type"]
    assert call.status.code == Status.STATUS_CODE_ERROR
    assert "gen_ai.response.model" not in attributes
    root = _root(spans)
    assert attributes_of(root.attributes)["http.response.status_code"] == response.status_code
    assert root.status.code == Status.STATUS_CODE_ERROR


def test_a_rule_match_and_a_cache_hit_are_steerway_attributes(
    exporting: GatewayProcess, receiver: OtlpReceiver
) -> None:
    options: dict[str, Any] = {
        "temperature": 0,
        "extra_headers": {"x-steerway-tags": "otlp"},
    }
    content = f"cache me {secrets.token_hex(6)}"
    trace_ids = []
    client = exporting.client()
    for _ in range(2):
        raw = client.chat.completions.with_raw_response.create(
            model="mock-gpt", messages=[{"role": "user", "content": content}], **options
        )
        trace_ids.append(raw.headers["x-steerway-trace-id"])
    assert raw.headers["x-steerway-cache"] == "HIT"
    missed, hit = (_exported(receiver, exporting.database, t)[0] for t in trace_ids)
    for spans, status in ((missed, "MISS"), (hit, "HIT")):
        root = attributes_of(_root(spans).attributes)
        assert root["steerway.rule.matched"] == ["otlp-tagged"]
        assert root["steerway.rule.names"] == ["Traffic tagged otlp"]
        assert root["steerway.cache.status"] == status
        assert root["steerway.cache.hit"] is (status == "HIT")
        events = [e.name for e in _root(spans).events]
        assert "steerway.decision.rule_evaluation" in events
        assert "steerway.decision.cache_decision" in events
    assert len(_clients(missed)) == 1
    assert _clients(hit) == []


def test_metrics_are_sent_with_the_values_of_metrics(
    exporting: GatewayProcess, receiver: OtlpReceiver, token: str
) -> None:
    for _ in range(2):
        chat(exporting)
    expected = metric(exporting, "steerway_requests_total", route="/v1/chat/completions")
    assert expected >= 2
    deadline = time.monotonic() + 15
    sent = 0.0
    while sent != expected and time.monotonic() < deadline:
        time.sleep(0.2)
        exports = receiver.metric_exports()
        if not exports:
            continue
        (scope_metrics,) = exports[-1].resource_metrics[0].scope_metrics
        requests = {m.name: m for m in scope_metrics.metrics}["steerway_requests"]
        sent = sum(
            point.as_double
            for point in requests.sum.data_points
            if attributes_of(point.attributes).get("route") == "/v1/chat/completions"
        )
    assert sent == expected
    resource = attributes_of(receiver.metric_exports()[-1].resource_metrics[0].resource.attributes)
    assert resource["service.name"] == "steerway-e2e"
    metric_requests = [r for r in receiver.received if r.path == "/v1/metrics"]
    assert {r.headers.get("authorization") for r in metric_requests} == {f"Bearer {token}"}

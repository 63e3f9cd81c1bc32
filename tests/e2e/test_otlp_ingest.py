"""`POST /v1/traces` on a running gateway, on SQLite and Postgres: spans from an application that
calls the mock provider directly become traces of `source = otlp` in the key's workspace."""

from __future__ import annotations

import gzip
import json
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from tests.e2e.conftest import Database, GatewayProcess, MockProcess, mock_config
from tests.e2e.otlp_app import instrumented_app
from tests.e2e.otlp_payloads import SpanSpec, genai_attributes, json_request, protobuf_request
from tests.e2e.test_keys import create_key

PROTOBUF = "application/x-protobuf"
MAX_BODY = 600_000
MAX_SPANS = 50
PRICES = json.loads((Path(__file__).parents[2] / "providers" / "prices.json").read_text())["models"]


def expected_cost(model: str, prompt: int, completion: int) -> Decimal:
    """From the shipped price table, read here on its own: dollars per million tokens."""
    price = PRICES[model]
    return (prompt * Decimal(price["input"]) + completion * Decimal(price["output"])) / 10**6


@pytest.fixture(scope="module")
def otlp_gateway(
    backend_database: Database,
    mock_provider: MockProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GatewayProcess]:
    config = mock_config(
        mock_provider, otlp_ingest={"max_body_bytes": MAX_BODY, "max_spans": MAX_SPANS}
    )
    process = GatewayProcess(
        backend_database,
        config,
        tmp_path_factory.mktemp("otlp"),
        master_key="sk-master-" + secrets.token_hex(8),
    )
    try:
        yield process
    finally:
        process.stop()


def post(
    gateway: GatewayProcess,
    body: bytes,
    *,
    key: str | None,
    content_type: str = PROTOBUF,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    sent = {"Content-Type": content_type, **(headers or {})}
    if key is not None:
        sent["Authorization"] = f"Bearer {key}"
    return httpx.post(f"{gateway.url}/v1/traces", content=body, headers=sent, timeout=30)


def span_counts(gateway: GatewayProcess) -> dict[str, float]:
    """`steerway_otlp_ingested_spans_total` by result, from the gateway's `/metrics`."""
    text = httpx.get(f"{gateway.url}/metrics", timeout=10).text
    found = re.findall(r'^steerway_otlp_ingested_spans_total\{result="(\w+)"\} (\S+)$', text, re.M)
    return {result: float(value) for result, value in found}


def interactions_of(database: Database, workspace_id: str, count: int) -> list[dict[str, Any]]:
    return database.wait_rows(
        "SELECT i.*, t.source, t.parent_trace_id, t.parent_span_id, t.metadata AS trace_metadata"
        " FROM ai_interactions i JOIN traces t ON t.trace_id = i.trace_id"
        " WHERE i.workspace_id = :w ORDER BY i.started_at",
        count,
        w=workspace_id,
    )


def as_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def as_decimal(value: Any) -> Decimal:
    """Costs read with plain SQL: NUMERIC on Postgres, an integer count of 1e-10 USD on SQLite
    (`telemetry.schema.Money`)."""
    if isinstance(value, int):
        return Decimal(value).scaleb(-10)
    return Decimal(str(value))


def new_key(gateway: GatewayProcess, workspace: str | None = None) -> Any:
    slug = workspace or "apps-" + secrets.token_hex(3)
    return create_key(gateway, "otlp sender", "--workspace", slug)


# --- the official path ------------------------------------------------------------------------


def test_calls_of_an_instrumented_application_are_recorded_with_model_tokens_and_cost(
    otlp_gateway: GatewayProcess, mock_provider: MockProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")
    key = new_key(otlp_gateway)
    question = "What is the capital of Iceland? " + secrets.token_hex(4)
    with instrumented_app(
        mock_provider.base_url, f"{otlp_gateway.url}/v1/traces", key.plaintext
    ) as app:
        plain = app.client.chat.completions.create(
            model="mock-gpt", messages=[{"role": "user", "content": question}]
        )
        large = app.client.chat.completions.create(
            model="mock-gpt-large",
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "hi"},
            ],
        )
        streamed_usage = None
        for chunk in app.client.chat.completions.create(
            model="mock-gpt",
            messages=[{"role": "user", "content": "count to three"}],
            stream=True,
            stream_options={"include_usage": True},
        ):
            streamed_usage = chunk.usage or streamed_usage
        assert app.flush()
        sent = sorted(app.spans(), key=lambda span: span.start_time or 0)
    assert plain.usage is not None and large.usage is not None and streamed_usage is not None
    usages = [
        ("mock-gpt", plain.usage.prompt_tokens, plain.usage.completion_tokens),
        ("mock-gpt-large", large.usage.prompt_tokens, large.usage.completion_tokens),
        ("mock-gpt", streamed_usage.prompt_tokens, streamed_usage.completion_tokens),
    ]
    assert len(sent) == 3

    rows = interactions_of(otlp_gateway.database, key.workspace_id, 3)
    assert len(rows) == 3
    for row, (model, prompt, completion), span in zip(rows, usages, sent, strict=True):
        assert row["source"] == "otlp"
        assert row["api_key_id"] == key.key_id
        assert (row["provider"], row["requested_model"], row["provider_model"]) == (
            "openai",
            model,
            model,
        )
        assert (row["prompt_tokens"], row["completion_tokens"]) == (prompt, completion)
        assert as_decimal(row["cost_usd"]) == expected_cost(model, prompt, completion)
        assert row["status"] == "ok" and row["finish_reason"] == "stop"
        context = span.get_span_context()
        assert row["parent_trace_id"] == f"{context.trace_id:032x}"
        assert row["parent_span_id"] == f"{context.span_id:016x}"
        assert row["trace_id"] != row["parent_trace_id"]  # our own key, never the sender's id
        assert span.start_time is not None and span.end_time is not None
        assert row["latency_ms"] == pytest.approx((span.end_time - span.start_time) / 1e6, abs=1)
        assert as_json(row["trace_metadata"]) == {"service.name": "support-bot"}
    assert as_json(rows[0]["prompt"]) == [{"role": "user", "content": question}]
    answer = plain.choices[0].message.content
    assert as_json(rows[0]["response"])[0]["content"] == answer
    assert as_json(rows[1]["prompt"])[0] == {"role": "system", "content": "Be brief."}

    total = sum((expected_cost(*usage) for usage in usages), Decimal(0))
    with otlp_gateway.http() as admin:
        cost = admin.get(
            "/admin/api/analytics/cost",
            params={"last": "1h", "key": key.key_id, "group_by": "source"},
        ).json()
        requests = admin.get(
            "/admin/api/analytics/requests",
            params={"last": "1h", "key": key.key_id, "group_by": "source"},
        ).json()
        listed = admin.get("/admin/api/traces", params={"limit": 100}).text
        first = rows[0]["trace_id"]
        detail = admin.get(f"/admin/api/traces/{first}").json()
        page = admin.get(f"/admin/traces/{first}")
        list_page = admin.get("/admin/traces")
    assert [series["group"] for series in cost["series"]] == [{"source": "otlp"}]
    assert Decimal(cost["total"]) == total
    assert Decimal(requests["total"]) == 3
    for row in rows:
        assert f'"{row["trace_id"]}"' in listed
    (interaction,) = detail["interactions"]
    assert (interaction["provider_model"], interaction["prompt_tokens"]) == (
        "mock-gpt",
        usages[0][1],
    )
    assert page.status_code == 200 and list_page.status_code == 200
    assert question in page.text  # the stored prompt, on the trace's console page
    assert f'href="/admin/traces/{first}"' in list_page.text


# --- hand-built bodies ------------------------------------------------------------------------


def test_json_with_gzip_and_content_as_span_events_is_recorded(
    otlp_gateway: GatewayProcess,
) -> None:
    key = new_key(otlp_gateway)
    spec = SpanSpec(
        "chat claude-3-5-haiku",
        {
            **genai_attributes("claude-3-5-haiku", 1200, 85),
            "gen_ai.provider.name": "anthropic",
            "gen_ai.response.finish_reasons": ["end_turn"],
            "gen_ai.response.time_to_first_chunk": 0.25,
        },
        events=[
            ("gen_ai.system.message", {"content": "You sort tickets."}),
            ("gen_ai.user.message", {"content": "My invoice is wrong"}),
            (
                "gen_ai.choice",
                {"index": 0, "finish_reason": "end_turn", "message": '{"content": "billing"}'},
            ),
        ],
    )
    response = post(
        otlp_gateway,
        gzip.compress(json_request([spec])),
        key=key.plaintext,
        content_type="application/json",
        headers={"Content-Encoding": "gzip"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {}

    (row,) = interactions_of(otlp_gateway.database, key.workspace_id, 1)
    assert (row["provider"], row["provider_model"]) == ("anthropic", "claude-3-5-haiku")
    assert (row["prompt_tokens"], row["completion_tokens"]) == (1200, 85)
    assert as_decimal(row["cost_usd"]) == expected_cost("claude-3-5-haiku", 1200, 85)
    assert row["finish_reason"] == "end_turn"
    assert row["ttft_ms"] == pytest.approx(250.0)
    assert (row["parent_trace_id"], row["parent_span_id"]) == (spec.trace_id, spec.span_id)
    assert as_json(row["prompt"]) == [
        {"role": "system", "content": "You sort tickets."},
        {"role": "user", "content": "My invoice is wrong"},
    ]
    assert as_json(row["response"]) == [{"role": "assistant", "content": "billing"}]


def test_gzipped_protobuf_with_ordinary_and_failed_spans(otlp_gateway: GatewayProcess) -> None:
    key = new_key(otlp_gateway)
    ordinary = SpanSpec("GET /orders", {"http.request.method": "GET"})
    tool = SpanSpec("execute_tool lookup", {"gen_ai.operation.name": "execute_tool"})
    failed = SpanSpec(
        "chat mock-gpt",
        {**genai_attributes("mock-gpt", 40, 0), "error.type": "RateLimitError"},
        error="429 rate limited",
    )
    response = post(
        otlp_gateway,
        gzip.compress(protobuf_request([ordinary, tool, failed])),
        key=key.plaintext,
        headers={"Content-Encoding": "gzip"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == PROTOBUF
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert not answer.HasField("partial_success")

    (row,) = interactions_of(otlp_gateway.database, key.workspace_id, 1)
    assert (row["status"], row["error_type"], row["error_message"]) == (
        "error",
        "RateLimitError",
        "429 rate limited",
    )
    traces = otlp_gateway.database.rows(
        "SELECT source, status FROM traces WHERE workspace_id = :w", w=key.workspace_id
    )
    assert traces == [{"source": "otlp", "status": "error"}]


def test_spans_that_cannot_be_used_are_rejected_alone_with_the_reason(
    otlp_gateway: GatewayProcess,
) -> None:
    key = new_key(otlp_gateway)
    good = SpanSpec("chat mock-gpt", genai_attributes("mock-gpt", 10, 20))
    future = SpanSpec(
        "chat mock-gpt", genai_attributes("mock-gpt", 10, 20), ended=time.time() + 86_400
    )
    ancient = SpanSpec(
        "chat mock-gpt", genai_attributes("mock-gpt", 10, 20), ended=time.time() - 30 * 86_400
    )
    ordinary = SpanSpec("GET /health", {"http.request.method": "GET"})
    before = span_counts(otlp_gateway)
    body = json_request([good, future, ancient, ordinary])
    response = post(otlp_gateway, body, key=key.plaintext, content_type="application/json")
    after = span_counts(otlp_gateway)
    for result, added in (("accepted", 1), ("rejected", 2), ("ignored", 1)):
        assert after[result] - before.get(result, 0.0) == added, (result, before, after)
    assert response.status_code == 200, response.text
    partial = response.json()["partialSuccess"]
    assert partial["rejectedSpans"] == 2
    assert "in the future" in partial["errorMessage"]
    assert "ago, longer than" in partial["errorMessage"]
    interactions_of(otlp_gateway.database, key.workspace_id, 1)
    time.sleep(0.5)  # time for a wrongly accepted span to be written too
    rows = interactions_of(otlp_gateway.database, key.workspace_id, 1)
    assert len(rows) == 1
    assert rows[0]["parent_span_id"] == good.span_id


def test_a_large_export_is_recorded_whole(
    otlp_gateway: GatewayProcess,
) -> None:
    key = new_key(otlp_gateway)
    long_text = "lorem ipsum " * 35_000  # 420 kB: past the size decoded in a worker thread
    messages = json.dumps([{"role": "user", "parts": [{"type": "text", "content": long_text}]}])
    spec = SpanSpec(
        "chat mock-gpt",
        genai_attributes("mock-gpt", 90_000, 10, **{"gen_ai.input.messages": messages}),
    )
    body = protobuf_request([spec])
    assert 400_000 < len(body) < MAX_BODY
    response = post(otlp_gateway, body, key=key.plaintext)
    assert response.status_code == 200, response.content[:300]
    (row,) = interactions_of(otlp_gateway.database, key.workspace_id, 1)
    assert as_json(row["prompt"]) == [{"role": "user", "content": long_text}]
    assert row["prompt_tokens"] == 90_000


# --- refusals ---------------------------------------------------------------------------------


def status_of(response: httpx.Response) -> Status:
    assert response.headers["content-type"] == PROTOBUF
    return Status.FromString(response.content)


def test_bad_requests_are_refused_in_otlps_shape(otlp_gateway: GatewayProcess) -> None:
    key = new_key(otlp_gateway).plaintext
    good = protobuf_request([SpanSpec("chat mock-gpt", genai_attributes("mock-gpt", 1, 1))])

    garbage = post(otlp_gateway, b"\xff\xff\xff\xff not protobuf", key=key)
    assert garbage.status_code == 400
    assert "not a protobuf ExportTraceServiceRequest" in status_of(garbage).message
    assert status_of(garbage).code == 3

    bad_json = post(otlp_gateway, b'{"resourceSpans": 7}', key=key, content_type="application/json")
    assert bad_json.status_code == 400
    assert bad_json.json()["code"] == 3
    assert "resourceSpans" in bad_json.json()["message"]

    wrong_type = post(otlp_gateway, good, key=key, content_type="text/plain")
    assert wrong_type.status_code == 415
    assert "application/x-protobuf" in wrong_type.json()["message"]

    deflate = post(otlp_gateway, good, key=key, headers={"Content-Encoding": "br"})
    assert deflate.status_code == 415

    not_gzip = post(otlp_gateway, good, key=key, headers={"Content-Encoding": "gzip"})
    assert not_gzip.status_code == 400
    assert status_of(not_gzip).message == "The body is not valid gzip."

    truncated = post(
        otlp_gateway, gzip.compress(good)[:-12], key=key, headers={"Content-Encoding": "gzip"}
    )
    assert truncated.status_code == 400
    assert "truncated" in status_of(truncated).message

    bomb = gzip.compress(b"\0" * 50_000_000)
    assert len(bomb) < MAX_BODY
    exploded = post(otlp_gateway, bomb, key=key, headers={"Content-Encoding": "gzip"})
    assert exploded.status_code == 413
    assert status_of(exploded).message == (
        f"The decompressed request body is larger than the limit of {MAX_BODY} bytes."
    )

    too_big = post(otlp_gateway, b"\0" * (MAX_BODY + 1), key=key)
    assert too_big.status_code == 413
    assert status_of(too_big).code == 8

    many = [SpanSpec("GET /", {"http.request.method": "GET"}) for _ in range(MAX_SPANS + 1)]
    too_many = post(otlp_gateway, protobuf_request(many), key=key)
    assert too_many.status_code == 413
    assert f"holds {MAX_SPANS + 1} spans; at most {MAX_SPANS}" in status_of(too_many).message

    wrong_method = httpx.get(f"{otlp_gateway.url}/v1/traces", headers={"Authorization": key})
    assert wrong_method.status_code == 405


def test_an_export_without_a_valid_key_is_refused_and_writes_nothing(
    otlp_gateway: GatewayProcess,
) -> None:
    marker = "svc-" + secrets.token_hex(6)
    body = protobuf_request(
        [SpanSpec("chat mock-gpt", genai_attributes("mock-gpt", 1, 1))], service=marker
    )
    missing = post(otlp_gateway, body, key=None)
    assert missing.status_code == 401
    assert status_of(missing).code == 16
    wrong = post(otlp_gateway, body, key="sk-sw-" + secrets.token_hex(20))
    assert wrong.status_code == 401
    assert status_of(wrong).message == "Incorrect API key provided."
    time.sleep(1.0)
    rows = otlp_gateway.database.rows(
        "SELECT trace_id FROM traces WHERE source = 'otlp' AND CAST(metadata AS TEXT) LIKE :m",
        m=f"%{marker}%",
    )
    assert rows == []


def test_a_key_writes_into_its_own_workspace_only(otlp_gateway: GatewayProcess) -> None:
    team_a = new_key(otlp_gateway, "team-a-" + secrets.token_hex(3))
    team_b = new_key(otlp_gateway, "team-b-" + secrets.token_hex(3))
    assert team_a.workspace_id != team_b.workspace_id
    spans = [SpanSpec("chat mock-gpt", genai_attributes("mock-gpt", 3, 4)) for _ in range(2)]
    response = post(otlp_gateway, protobuf_request(spans), key=team_a.plaintext)
    assert response.status_code == 200

    rows = interactions_of(otlp_gateway.database, team_a.workspace_id, 2)
    assert {row["parent_span_id"] for row in rows} == {spec.span_id for spec in spans}
    span_ids = tuple(spec.span_id for spec in spans)
    placed = otlp_gateway.database.rows(
        "SELECT workspace_id, api_key_id FROM traces WHERE parent_span_id IN (:a, :b)",
        a=span_ids[0],
        b=span_ids[1],
    )
    assert placed == [{"workspace_id": team_a.workspace_id, "api_key_id": team_a.key_id}] * 2
    assert interactions_of(otlp_gateway.database, team_b.workspace_id, 0) == []


# --- content and telemetry.store_content -------------------------------------------------------


def stored_text(database: Database, workspace_id: str) -> str:
    """Every row the workspace's traces left, as text."""
    rows = [
        *database.rows("SELECT * FROM traces WHERE workspace_id = :w", w=workspace_id),
        *database.rows("SELECT * FROM spans WHERE workspace_id = :w", w=workspace_id),
        *database.rows("SELECT * FROM ai_interactions WHERE workspace_id = :w", w=workspace_id),
    ]
    return json.dumps(rows, default=str)


def test_redacted_content_is_stored_with_personal_data_masked(
    backend_database: Database,
    mock_provider: MockProcess,
    start_gateway: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gateway: GatewayProcess = start_gateway(
        backend_database,
        mock_config(mock_provider, telemetry={"store_content": "redacted"}),
        master_key="sk-master-" + secrets.token_hex(8),
        ready_timeout=120.0,  # the PII scanner's language model loads at start
    )
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")
    key = new_key(gateway)
    email = f"jane.{secrets.token_hex(4)}@example.com"
    with instrumented_app(mock_provider.base_url, f"{gateway.url}/v1/traces", key.plaintext) as app:
        app.client.chat.completions.create(
            model="mock-gpt", messages=[{"role": "user", "content": f"Refund {email} please"}]
        )
        assert app.flush()
    (row,) = interactions_of(gateway.database, key.workspace_id, 1)
    (message,) = as_json(row["prompt"])
    assert message["role"] == "user"
    assert message["content"].startswith("Refund ") and message["content"].endswith(" please")
    assert email not in stored_text(gateway.database, key.workspace_id)
    assert row["prompt_tokens"] and row["cost_usd"] is not None


def test_no_content_is_stored_when_store_content_is_none(
    backend_database: Database, mock_provider: MockProcess, start_gateway: Any
) -> None:
    gateway: GatewayProcess = start_gateway(
        backend_database,
        mock_config(mock_provider, telemetry={"store_content": "none"}),
        master_key="sk-master-" + secrets.token_hex(8),
    )
    key = new_key(gateway)
    phrase = "private-" + secrets.token_hex(8)
    messages = json.dumps([{"role": "user", "parts": [{"type": "text", "content": phrase}]}])
    answer = json.dumps(
        [
            {
                "role": "assistant",
                "parts": [{"type": "text", "content": phrase}],
                "finish_reason": "stop",
            }
        ]
    )
    spec = SpanSpec(
        "chat mock-gpt",
        genai_attributes(
            "mock-gpt",
            7,
            9,
            **{"gen_ai.input.messages": messages, "gen_ai.output.messages": answer},
        ),
        events=[("gen_ai.user.message", {"content": phrase})],
    )
    response = post(gateway, protobuf_request([spec]), key=key.plaintext)
    assert response.status_code == 200
    (row,) = interactions_of(gateway.database, key.workspace_id, 1)
    assert row["prompt"] is None and row["response"] is None
    assert (row["prompt_tokens"], row["completion_tokens"], row["finish_reason"]) == (7, 9, "stop")
    assert as_decimal(row["cost_usd"]) == expected_cost("mock-gpt", 7, 9)
    assert phrase not in stored_text(gateway.database, key.workspace_id)


# --- the documentation's example --------------------------------------------------------------


def documented_example() -> str:
    """The Python block of docs/otlp-ingest.md's section on applications without OpenTelemetry."""
    text = (Path(__file__).parents[2] / "docs" / "otlp-ingest.md").read_text()
    section = text.split("## An application without OpenTelemetry", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_documented_example_for_applications_without_opentelemetry_records_its_call(
    otlp_gateway: GatewayProcess, mock_provider: MockProcess, tmp_path: Path
) -> None:
    key = new_key(otlp_gateway)
    script = tmp_path / "ticket_sorter.py"
    script.write_text(documented_example())
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith("OTEL_")},
        "ANTHROPIC_BASE_URL": mock_provider.url,
        "ANTHROPIC_API_KEY": "sk-provider",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{otlp_gateway.url}/v1/traces",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS": f"Authorization=Bearer%20{key.plaintext}",
    }
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()

    (row,) = interactions_of(otlp_gateway.database, key.workspace_id, 1)
    assert (row["provider"], row["provider_model"]) == ("anthropic", "claude-3-5-haiku")
    assert row["prompt_tokens"] > 0 and row["completion_tokens"] > 0
    expected = expected_cost("claude-3-5-haiku", row["prompt_tokens"], row["completion_tokens"])
    assert as_decimal(row["cost_usd"]) == expected
    assert as_json(row["trace_metadata"]) == {"service.name": "ticket-sorter"}

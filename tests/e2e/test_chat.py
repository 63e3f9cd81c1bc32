"""Chat completions through the gateway with the official openai SDK, on SQLite and Postgres."""

from __future__ import annotations

import base64
import struct

import httpx

from tests.e2e.conftest import GatewayProcess, MockProcess

HELLO = [{"role": "user", "content": "hello there"}]


def _interaction(gateway: GatewayProcess, trace_id: str) -> dict:
    rows = gateway.database.wait_rows(
        "SELECT * FROM ai_interactions WHERE trace_id = :t", t=trace_id
    )
    assert len(rows) == 1, rows
    return rows[0]


def test_non_streaming_answer_headers_and_records(gateway: GatewayProcess) -> None:
    client = gateway.client()
    raw = client.chat.completions.with_raw_response.create(
        model="mock-gpt", messages=HELLO, extra_headers={"x-request-id": "req-e2e-1"}
    )
    completion = raw.parse()
    assert completion.choices[0].message.content
    assert "hello there" in completion.choices[0].message.content
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    assert raw.headers["x-request-id"] == "req-e2e-1"
    assert raw.headers["x-steerway-provider"] == "mock"
    assert raw.headers["x-steerway-model"] == "mock-gpt"
    assert float(raw.headers["x-steerway-overhead-ms"]) >= 0
    trace_id = raw.headers["x-steerway-trace-id"]
    assert len(trace_id) == 32

    row = _interaction(gateway, trace_id)
    assert row["provider"] == "mock"
    assert row["requested_model"] == "mock-gpt"
    assert row["prompt_tokens"] == completion.usage.prompt_tokens
    assert row["completion_tokens"] == completion.usage.completion_tokens
    assert row["cost_usd"] is not None and row["cost_usd"] > 0
    assert row["status"] == "ok"
    assert row["finish_reason"] == "stop"
    assert row["attempt"] == 1
    assert row["latency_ms"] > 0

    traces = gateway.database.rows("SELECT * FROM traces WHERE trace_id = :t", t=trace_id)
    assert traces[0]["request_id"] == "req-e2e-1"
    assert traces[0]["http_status"] == 200
    assert traces[0]["status"] == "ok"
    assert traces[0]["requested_model"] == "mock-gpt"
    spans = gateway.database.rows(
        "SELECT name, parent_span_id, span_id FROM spans WHERE trace_id = :t", t=trace_id
    )
    names = {span["name"] for span in spans}
    assert {"gateway.request", "auth", "route", "provider.chat", "response"} == names
    root = next(s for s in spans if s["name"] == "gateway.request")
    assert all(s["parent_span_id"] == root["span_id"] for s in spans if s is not root)
    decisions = gateway.database.rows(
        "SELECT type, output, reasoning FROM decisions WHERE trace_id = :t", t=trace_id
    )
    assert [d["type"] for d in decisions] == ["model_selection"]


def test_unknown_fields_pass_through_and_model_is_rewritten(
    gateway: GatewayProcess, mock_provider: MockProcess
) -> None:
    gateway.client().chat.completions.create(
        model="mock-gpt",
        messages=HELLO,
        extra_body={"vendor_knob": {"depth": 3}, "seed": 7},
        temperature=0.2,
    )
    forwarded = mock_provider.last_request()["body"]
    assert forwarded["vendor_knob"] == {"depth": 3}
    assert forwarded["seed"] == 7
    assert forwarded["temperature"] == 0.2
    assert forwarded["model"] == "mock-gpt"


def test_weighted_route_records_its_choice(gateway: GatewayProcess) -> None:
    chosen = set()
    for _ in range(30):
        raw = gateway.client().chat.completions.with_raw_response.create(
            model="split", messages=HELLO
        )
        chosen.add(raw.headers["x-steerway-model"])
    assert chosen == {"mock-gpt", "mock-gpt-large"}
    trace_id = raw.headers["x-steerway-trace-id"]
    decision = gateway.database.wait_rows(
        "SELECT reasoning FROM decisions WHERE trace_id = :t", t=trace_id
    )[0]
    assert "weighted random among 2 deployments" in decision["reasoning"]


def test_unknown_price_is_recorded_as_null(gateway: GatewayProcess) -> None:
    raw = gateway.client().chat.completions.with_raw_response.create(
        model="unpriced", messages=HELLO
    )
    row = _interaction(gateway, raw.headers["x-steerway-trace-id"])
    assert row["prompt_tokens"] is not None
    assert row["cost_usd"] is None


def test_traceparent_is_kept_as_the_parent_and_propagated(
    gateway: GatewayProcess, mock_provider: MockProcess
) -> None:
    caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    raw = gateway.client().chat.completions.with_raw_response.create(
        model="mock-gpt",
        messages=HELLO,
        extra_headers={"traceparent": f"00-{caller_trace}-00f067aa0ba902b7-01"},
    )
    trace_id = raw.headers["x-steerway-trace-id"]
    assert len(trace_id) == 32 and trace_id != caller_trace
    upstream = mock_provider.last_request()["headers"]["traceparent"]
    version, upstream_trace, parent, flags = upstream.split("-")
    assert (version, upstream_trace, flags) == ("00", caller_trace, "01")
    span = gateway.database.wait_rows(
        "SELECT name, trace_id FROM spans WHERE span_id = :s", s=parent
    )
    assert span == [{"name": "provider.chat", "trace_id": trace_id}]
    (trace,) = gateway.database.rows(
        "SELECT parent_trace_id, parent_span_id FROM traces WHERE trace_id = :t", t=trace_id
    )
    assert trace == {"parent_trace_id": caller_trace, "parent_span_id": "00f067aa0ba902b7"}


def test_without_traceparent_our_trace_goes_upstream(
    gateway: GatewayProcess, mock_provider: MockProcess
) -> None:
    raw = gateway.client().chat.completions.with_raw_response.create(
        model="mock-gpt", messages=HELLO
    )
    trace_id = raw.headers["x-steerway-trace-id"]
    upstream = mock_provider.last_request()["headers"]["traceparent"]
    assert upstream.split("-")[1] == trace_id
    (trace,) = gateway.database.wait_rows(
        "SELECT parent_trace_id, parent_span_id FROM traces WHERE trace_id = :t", t=trace_id
    )
    assert trace == {"parent_trace_id": None, "parent_span_id": None}


def test_streaming_with_usage(gateway: GatewayProcess) -> None:
    stream = gateway.client().chat.completions.create(
        model="mock-gpt", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "hello there" in text
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    finish = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finish == ["stop"]


def test_streaming_without_usage_still_records_tokens(gateway: GatewayProcess) -> None:
    with (
        gateway.http() as http,
        http.stream(
            "POST",
            "/v1/chat/completions",
            json={"model": "mock-gpt", "messages": HELLO, "stream": True},
        ) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        body = "".join(response.iter_text())
        trace_id = response.headers["x-steerway-trace-id"]
    events = [e for e in body.split("\n\n") if e.strip()]
    assert events[-1] == "data: [DONE]"
    assert '"usage":{' not in body  # the client did not ask for the usage chunk
    row = _interaction(gateway, trace_id)
    assert row["stream"] in (True, 1)
    assert row["completion_tokens"] and row["completion_tokens"] > 0
    assert row["ttft_ms"] is not None and row["ttft_ms"] >= 0
    assert row["tokens_per_second"] is not None
    assert row["finish_reason"] == "stop"
    assert row["response"] is not None


def test_tool_calls(gateway: GatewayProcess) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
        }
    ]
    client = gateway.client()
    completion = client.chat.completions.create(model="mock-gpt", messages=HELLO, tools=tools)
    call = completion.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert completion.choices[0].finish_reason == "tool_calls"

    with client.chat.completions.stream(model="mock-gpt", messages=HELLO, tools=tools) as stream:
        final = stream.get_final_completion()
    streamed = final.choices[0].message.tool_calls[0]
    assert streamed.function.name == "get_weather"
    assert streamed.function.arguments == call.function.arguments


def test_n_response_format_and_images(gateway: GatewayProcess) -> None:
    client = gateway.client()
    many = client.chat.completions.create(model="mock-gpt", messages=HELLO, n=2)
    assert [c.index for c in many.choices] == [0, 1]
    structured = client.chat.completions.create(
        model="mock-gpt", messages=HELLO, response_format={"type": "json_object"}
    )
    import json

    assert isinstance(json.loads(structured.choices[0].message.content), dict)
    image = "data:image/png;base64," + base64.b64encode(b"\x89PNG fake").decode()
    with_image = client.chat.completions.create(
        model="mock-gpt",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this"},
                    {"type": "image_url", "image_url": {"url": image}},
                ],
            }
        ],
    )
    assert with_image.choices[0].message.content


def test_embeddings(gateway: GatewayProcess) -> None:
    client = gateway.client()
    result = client.embeddings.create(model="mock-embedding", input=["a", "b"], dimensions=8)
    assert [len(d.embedding) for d in result.data] == [8, 8]
    encoded = client.embeddings.with_raw_response.create(
        model="mock-embedding", input="a", dimensions=8, encoding_format="base64"
    )
    raw = encoded.http_response.json()["data"][0]["embedding"]
    floats = struct.unpack("<8f", base64.b64decode(raw))
    assert floats == tuple(result.data[0].embedding)
    row = _interaction(gateway, encoded.headers["x-steerway-trace-id"])
    assert row["operation"] == "embeddings"
    assert row["prompt_tokens"] > 0


def test_models_lists_public_names(gateway: GatewayProcess) -> None:
    names = {m.id for m in gateway.client().models.list()}
    assert names == {"mock-gpt", "mock-embedding", "split", "unpriced"}


def test_health_readiness_and_metrics(gateway: GatewayProcess) -> None:
    assert httpx.get(f"{gateway.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{gateway.url}/readyz").status_code == 200
    gateway.client().chat.completions.create(model="mock-gpt", messages=HELLO)
    text = httpx.get(f"{gateway.url}/metrics").text
    assert "gen_ai_client_operation_duration_seconds_bucket" in text
    assert 'gen_ai_client_token_usage_bucket{gen_ai_operation_name="chat"' in text
    assert "steerway_requests_total" in text
    assert 'model="mock-gpt"' in text
    assert "steerway_telemetry_dropped_total" in text


def test_usage_rollups_add_up(gateway: GatewayProcess) -> None:
    counted = (
        "SELECT grain, SUM(requests) AS n FROM usage_rollups WHERE model = 'mock-embedding' "
        "GROUP BY grain"
    )
    gateway.database.fold()  # what earlier tests' requests added, in every grain
    before = {row["grain"]: row["n"] for row in gateway.database.rows(counted)}
    for _ in range(3):
        gateway.client().embeddings.create(model="mock-embedding", input="x")
    gateway.database.wait_rows(
        "SELECT SUM(requests) AS n FROM usage_rollups "
        "WHERE model = 'mock-embedding' AND grain = 'minute' HAVING SUM(requests) >= :want",
        want=before.get("minute", 0) + 3,
    )
    gateway.database.fold()
    after = {row["grain"]: row["n"] for row in gateway.database.rows(counted)}
    assert after == {grain: before.get(grain, 0) + 3 for grain in ("minute", "hour", "day")}

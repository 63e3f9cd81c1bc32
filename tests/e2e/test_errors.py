"""Bad input, upstream failures, client disconnects and secrets, through a running gateway.

Every case checks what the client sees (status, OpenAI's error shape, the SDK's exception class,
`param`) and what the gateway recorded (the trace's status and HTTP status, the interaction's
error type), and that the gateway goes on serving afterwards.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.e2e.conftest import Database, GatewayProcess, MockProcess, free_port

HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello there"}]
ERROR_FIELDS = {"message", "type", "param", "code"}
_HEX_ID = re.compile(r"[0-9a-f]{32}")


# --- helpers ----------------------------------------------------------------------------------


class HttpResponse(Protocol):
    """What the tests read from a response: httpx's, or the one an SDK exception carries."""

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def text(self) -> str: ...

    def json(self) -> Any: ...


def openai_error(response: HttpResponse) -> dict[str, Any]:
    """The `error` object of an OpenAI-shaped error body, after checking the shape."""
    assert response.headers["content-type"].startswith("application/json"), response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == ERROR_FIELDS, error
    assert isinstance(error["message"], str) and error["message"], error
    assert "Traceback" not in error["message"]
    return dict(error)


def trace_id_of(response: HttpResponse) -> str:
    trace_id = response.headers["x-steerway-trace-id"]
    assert _HEX_ID.fullmatch(trace_id), trace_id
    return str(trace_id)


def traces_by_id(database: Database, trace_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The trace rows of these requests, once the recorder has written all of them."""
    assert all(_HEX_ID.fullmatch(t) for t in trace_ids)
    listed = ", ".join(f"'{t}'" for t in trace_ids)
    rows = database.wait_rows(
        f"SELECT * FROM traces WHERE trace_id IN ({listed})", count=len(set(trace_ids))
    )
    found = {row["trace_id"]: row for row in rows}
    missing = set(trace_ids) - set(found)
    assert not missing, f"traces not recorded: {sorted(missing)}"
    return found


def recorded_trace(database: Database, trace_id: str) -> dict[str, Any]:
    return traces_by_id(database, [trace_id])[trace_id]


def recorded_interaction(database: Database, trace_id: str) -> dict[str, Any]:
    rows = database.wait_rows("SELECT * FROM ai_interactions WHERE trace_id = :t", t=trace_id)
    assert len(rows) == 1, rows
    return rows[0]


def assert_still_serving(gateway: GatewayProcess) -> None:
    completion = gateway.client().chat.completions.create(model="mock-gpt", messages=HELLO)
    assert completion.choices[0].message.content
    assert "hello there" in completion.choices[0].message.content


def assert_failed_attempt(
    gateway: GatewayProcess, trace_id: str, *, http_status: int, error_type: str
) -> dict[str, Any]:
    """The trace and its single provider attempt both say what went wrong."""
    trace = recorded_trace(gateway.database, trace_id)
    assert trace["status"] == "error"
    assert trace["http_status"] == http_status
    assert trace["error_type"]
    interaction = recorded_interaction(gateway.database, trace_id)
    assert interaction["status"] == "error"
    assert interaction["error_type"] == error_type
    assert interaction["error_message"]
    return interaction


def poll(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


# --- bad input --------------------------------------------------------------------------------


def test_unparseable_bodies_are_400_invalid_json(gateway: GatewayProcess) -> None:
    bodies = [b"{not json", b"[1, 2, 3]", b'"just a string"', b"42", b"null"]
    trace_ids = []
    with gateway.http() as http:
        for body in bodies:
            response = http.post(
                "/v1/chat/completions",
                content=body,
                headers={"content-type": "application/json"},
            )
            assert response.status_code == 400, (body, response.text)
            error = openai_error(response)
            assert error["type"] == "invalid_request_error"
            assert error["code"] == "invalid_json", (body, error)
            trace_ids.append(trace_id_of(response))
        empty = http.post("/v1/chat/completions", content=b"")
        assert empty.status_code == 400
        assert "empty" in openai_error(empty)["message"]
        trace_ids.append(trace_id_of(empty))
    for trace in traces_by_id(gateway.database, trace_ids).values():
        assert (trace["status"], trace["http_status"]) == ("error", 400)
    assert_still_serving(gateway)


CHAT_CASES: list[tuple[str, dict[str, Any], str, str | None]] = [
    (
        "messages is a string",
        {"model": "mock-gpt", "messages": "hello"},
        "messages",
        "invalid_type",
    ),
    ("model is a number", {"model": 5, "messages": HELLO}, "model", "invalid_type"),
    ("model is missing", {"messages": HELLO}, "model", None),
    (
        "stream is 'yes'",
        {"model": "mock-gpt", "messages": HELLO, "stream": "yes"},
        "stream",
        "invalid_type",
    ),
    ("n is 0", {"model": "mock-gpt", "messages": HELLO, "n": 0}, "n", "invalid_value"),
    ("n is 1.5", {"model": "mock-gpt", "messages": HELLO, "n": 1.5}, "n", "invalid_type"),
    ("messages is missing", {"model": "mock-gpt"}, "messages", None),
    ("messages is empty", {"model": "mock-gpt", "messages": []}, "messages", "empty_array"),
    (
        "a message is a string",
        {"model": "mock-gpt", "messages": ["hi"]},
        "messages[0]",
        "invalid_type",
    ),
    (
        "a message has no role",
        {"model": "mock-gpt", "messages": [*HELLO, {"content": "no role"}]},
        "messages[1].role",
        None,
    ),
    (
        "a message has an unknown role",
        {"model": "mock-gpt", "messages": [{"role": "robot", "content": "beep"}]},
        "messages[0].role",
        "invalid_value",
    ),
    (
        "content is a number",
        {"model": "mock-gpt", "messages": [{"role": "user", "content": 7}]},
        "messages[0].content",
        "invalid_type",
    ),
    (
        "stream_options without stream",
        {"model": "mock-gpt", "messages": HELLO, "stream_options": {"include_usage": True}},
        "stream_options",
        None,
    ),
    (
        "temperature is a string",
        {"model": "mock-gpt", "messages": HELLO, "temperature": "hot"},
        "temperature",
        "invalid_type",
    ),
    (
        "tools is an object",
        {"model": "mock-gpt", "messages": HELLO, "tools": {}},
        "tools",
        "invalid_type",
    ),
    (
        "max_tokens is a bool",
        {"model": "mock-gpt", "messages": HELLO, "max_tokens": True},
        "max_tokens",
        "invalid_type",
    ),
]

EMBEDDING_CASES: list[tuple[str, dict[str, Any], str, str | None]] = [
    ("input is missing", {"model": "mock-embedding"}, "input", None),
    ("input is a number", {"model": "mock-embedding", "input": 3}, "input", "invalid_type"),
    ("input is empty", {"model": "mock-embedding", "input": []}, "input", "empty_array"),
    ("model is missing", {"input": "x"}, "model", None),
    (
        "dimensions is a string",
        {"model": "mock-embedding", "input": ["x"], "dimensions": "8"},
        "dimensions",
        "invalid_type",
    ),
]


@pytest.mark.parametrize(
    ("path", "cases"),
    [("/v1/chat/completions", CHAT_CASES), ("/v1/embeddings", EMBEDDING_CASES)],
    ids=["chat", "embeddings"],
)
def test_invalid_fields_are_400_naming_the_param(
    gateway: GatewayProcess,
    mock_provider: MockProcess,
    path: str,
    cases: list[tuple[str, dict[str, Any], str, str | None]],
) -> None:
    upstream_before = mock_provider.stats()["requests_total"]
    trace_ids = []
    with gateway.http() as http:
        for case, body, param, code in cases:
            response = http.post(path, json=body)
            assert response.status_code == 400, (case, response.text)
            error = openai_error(response)
            assert error["type"] == "invalid_request_error", case
            assert error["param"] == param, (case, error)
            assert error["code"] == code, (case, error)
            trace_ids.append(trace_id_of(response))
    assert mock_provider.stats()["requests_total"] == upstream_before, "bad input reached upstream"
    traces = traces_by_id(gateway.database, trace_ids)
    for (case, *_), trace_id in zip(cases, trace_ids, strict=True):
        trace = traces[trace_id]
        assert (trace["status"], trace["http_status"]) == ("error", 400), case
        assert trace["route"] == path
        assert trace["error_message"], case
    assert_still_serving(gateway)


def test_embedding_options_are_checked_whatever_the_input(
    gateway: GatewayProcess, mock_provider: MockProcess
) -> None:
    """`dimensions` is checked for an array input; a single string input must not skip it."""
    upstream_before = mock_provider.stats()["requests_total"]
    with gateway.http() as http:
        response = http.post(
            "/v1/embeddings", json={"model": "mock-embedding", "input": "x", "dimensions": "8"}
        )
    assert response.status_code == 400
    error = openai_error(response)
    assert (error["param"], error["code"]) == ("dimensions", "invalid_type"), error
    assert mock_provider.stats()["requests_total"] == upstream_before, "bad input reached upstream"


_DEPTH = 5_000
HOSTILE_CASES = [
    pytest.param(
        {"content": b'{"model": "mock-gpt", "messages": ' + b"[" * _DEPTH + b"]" * _DEPTH + b"}"},
        None,
        id="deeply-nested-body",
    ),
    pytest.param(
        {"json": {"model": "mock-gpt", "messages": [{"role": ["user"], "content": "x"}]}},
        "messages[0].role",
        id="role-is-an-array",
    ),
    pytest.param(
        {"json": {"model": "mock-gpt", "messages": [{"role": {"a": 1}, "content": "x"}]}},
        "messages[0].role",
        id="role-is-an-object",
    ),
    pytest.param(
        {
            "json": {"model": "mock-gpt", "messages": HELLO},
            "headers": {"x-steerway-metadata": "[" * 2_000 + "]" * 2_000},
        },
        "x-steerway-metadata",
        id="deeply-nested-metadata-header",
    ),
]


@pytest.mark.parametrize(("request_args", "param"), HOSTILE_CASES)
def test_hostile_input_is_a_400_never_a_500(
    gateway: GatewayProcess, request_args: dict[str, Any], param: str | None
) -> None:
    """Input built to trip a parser: a clear 400, not an internal error."""
    with gateway.http() as http:
        response = http.post("/v1/chat/completions", **request_args)
    assert response.status_code == 400, response.text
    error = openai_error(response)
    assert error["type"] == "invalid_request_error"
    if param is not None:
        assert error["param"] == param, error
    assert_still_serving(gateway)


def test_bad_trace_headers(gateway: GatewayProcess) -> None:
    with gateway.http() as http:
        for metadata in ("not json", '["a list"]', '"text"'):
            response = http.post(
                "/v1/chat/completions",
                json={"model": "mock-gpt", "messages": HELLO},
                headers={"x-steerway-metadata": metadata},
            )
            assert response.status_code == 400, (metadata, response.text)
            assert openai_error(response)["param"] == "x-steerway-metadata"
        for traceparent in (
            "garbage",
            "00-" + "0" * 32 + "-00f067aa0ba902b7-01",
            "ff-" + "a" * 32 + "-00f067aa0ba902b7-01",
        ):
            response = http.post(
                "/v1/chat/completions",
                json={"model": "mock-gpt", "messages": HELLO},
                headers={"traceparent": traceparent},
            )
            assert response.status_code == 200, (traceparent, response.text)
            trace_id = trace_id_of(response)
            assert trace_id not in traceparent
            assert recorded_trace(gateway.database, trace_id)["status"] == "ok"


def test_sdk_raises_bad_request_error_with_param(gateway: GatewayProcess) -> None:
    client = gateway.client()
    attempts: list[tuple[str, Callable[[], object], str | None]] = [
        (
            "messages",
            lambda: client.chat.completions.create(model="mock-gpt", messages=[]),
            "empty_array",
        ),
        (
            "messages[0].role",
            lambda: client.chat.completions.create(
                model="mock-gpt",
                messages=[{"role": "robot", "content": "beep"}],  # type: ignore[list-item, misc]
            ),
            "invalid_value",
        ),
        (
            "n",
            lambda: client.chat.completions.create(model="mock-gpt", messages=HELLO, n=0),
            "invalid_value",
        ),
        (
            "stream_options",
            lambda: client.chat.completions.create(
                model="mock-gpt", messages=HELLO, stream_options={"include_usage": True}
            ),
            None,
        ),
        (
            "input",
            lambda: client.embeddings.create(model="mock-embedding", input=[]),
            "empty_array",
        ),
    ]
    trace_ids = []
    for param, call, code in attempts:
        with pytest.raises(openai.BadRequestError) as caught:
            call()
        error = caught.value
        assert error.status_code == 400
        assert error.param == param
        assert error.code == code
        assert error.type == "invalid_request_error"
        trace_ids.append(trace_id_of(error.response))
    for trace in traces_by_id(gateway.database, trace_ids).values():
        assert trace["http_status"] == 400


def test_unknown_model_is_404_model_not_found(gateway: GatewayProcess) -> None:
    client = gateway.client()
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="no-such-model", messages=HELLO)
    assert caught.value.code == "model_not_found"
    assert caught.value.param == "model"
    assert "no-such-model" in caught.value.message
    with pytest.raises(openai.NotFoundError) as embedding:
        client.embeddings.create(model="no-such-embedding", input="x")
    assert embedding.value.code == "model_not_found"

    trace = recorded_trace(gateway.database, trace_id_of(caught.value.response))
    assert (trace["status"], trace["http_status"]) == ("error", 404)
    assert trace["requested_model"] == "no-such-model"
    assert trace["error_type"] == "model_not_found"


def test_oversize_body_is_413(gateway: GatewayProcess, mock_provider: MockProcess) -> None:
    upstream_before = mock_provider.stats()["requests_total"]
    huge: list[ChatCompletionMessageParam] = [{"role": "user", "content": "x" * 1_000_100}]
    with pytest.raises(openai.APIStatusError) as caught:
        gateway.client().chat.completions.create(model="mock-gpt", messages=huge)
    assert caught.value.status_code == 413
    assert caught.value.code == "request_too_large"
    trace_ids = [trace_id_of(caught.value.response)]

    def chunks() -> Iterator[bytes]:
        yield b'{"model": "mock-gpt", "messages": [{"role": "user", "content": "'
        for _ in range(5):
            yield b"y" * 250_000
        yield b'"}]}'

    with gateway.http() as http:
        chunked = http.post("/v1/chat/completions", content=chunks())
    assert chunked.status_code == 413, chunked.text
    assert openai_error(chunked)["code"] == "request_too_large"
    trace_ids.append(trace_id_of(chunked))

    assert mock_provider.stats()["requests_total"] == upstream_before
    for trace in traces_by_id(gateway.database, trace_ids).values():
        assert (trace["status"], trace["http_status"]) == ("error", 413)
    assert_still_serving(gateway)


def refused_count(gateway: GatewayProcess, route: str, reason: str) -> float:
    """`steerway_unauthenticated_requests_total` for one route and reason."""
    text = httpx.get(f"{gateway.url}/metrics").text
    for line in text.splitlines():
        if line.startswith("steerway_unauthenticated_requests_total{") and (
            f'reason="{reason}"' in line and f'route="{route}"' in line
        ):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def assert_not_stored(gateway: GatewayProcess, trace_ids: list[str]) -> None:
    """Refused before a key was accepted: counted, not stored (the default keeps no sample).
    A request served afterwards is stored, so the recorder has written everything before it."""
    with gateway.http() as http:
        served = http.get("/v1/models")
    assert served.status_code == 200
    recorded_trace(gateway.database, trace_id_of(served))
    listed = ", ".join(f"'{t}'" for t in trace_ids)
    assert gateway.database.rows(f"SELECT * FROM traces WHERE trace_id IN ({listed})") == []


def test_bad_credentials_are_401(gateway: GatewayProcess) -> None:
    chat_refused = refused_count(gateway, "/v1/chat/completions", "missing_api_key")
    wrong_refused = refused_count(gateway, "/v1/chat/completions", "invalid_api_key")
    with pytest.raises(openai.AuthenticationError) as wrong:
        gateway.client(api_key="sk-not-a-real-key").chat.completions.create(
            model="mock-gpt", messages=HELLO
        )
    assert wrong.value.code == "invalid_api_key"
    assert "sk-not-a-real-key" not in wrong.value.message
    trace_ids = [trace_id_of(wrong.value.response)]

    master = gateway.master_key
    assert master is not None
    header_cases = {
        "missing": {},
        "basic": {"Authorization": f"Basic {master}"},
        "scheme only": {"Authorization": "Bearer"},
        "token only": {"Authorization": master},
    }
    with httpx.Client(base_url=gateway.url, timeout=10) as http:
        for case, headers in header_cases.items():
            response = http.post(
                "/v1/chat/completions",
                json={"model": "mock-gpt", "messages": HELLO},
                headers=headers,
            )
            assert response.status_code == 401, (case, response.text)
            error = openai_error(response)
            assert error["code"] == "missing_api_key", (case, error)
            assert master not in response.text
            trace_ids.append(trace_id_of(response))
        models = http.get("/v1/models")
        assert models.status_code == 401
        trace_ids.append(trace_id_of(models))
    assert refused_count(gateway, "/v1/chat/completions", "invalid_api_key") == wrong_refused + 1
    assert refused_count(gateway, "/v1/chat/completions", "missing_api_key") == chat_refused + 4
    assert_not_stored(gateway, trace_ids)


def test_unknown_paths_and_methods(gateway: GatewayProcess) -> None:
    unknown_before = refused_count(gateway, "unmatched", "unknown_url")
    method_before = refused_count(gateway, "/v1/chat/completions", "method_not_allowed")
    with gateway.http() as http:
        unknown = http.post("/v1/completions/legacy", json={})
        assert unknown.status_code == 404
        assert openai_error(unknown)["code"] == "unknown_url"
        wrong_method = http.get("/v1/chat/completions")
        assert wrong_method.status_code == 405
        assert openai_error(wrong_method)["code"] == "method_not_allowed"
        post_models = http.post("/v1/models", json={})
        assert post_models.status_code == 405
        openai_error(post_models)
        outside = http.get("/not-a-route")
        assert outside.status_code == 404
        openai_error(outside)
    assert refused_count(gateway, "unmatched", "unknown_url") == unknown_before + 1
    assert refused_count(gateway, "/v1/chat/completions", "method_not_allowed") == method_before + 1
    assert_not_stored(gateway, [trace_id_of(unknown), trace_id_of(wrong_method)])


# --- upstream failures ------------------------------------------------------------------------


def test_upstream_429_passes_status_and_retry_after(gateway: GatewayProcess) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        gateway.client().chat.completions.create(
            model="mock-gpt", messages=HELLO, extra_body={"mock": {"error": 429, "retry_after": 2}}
        )
    response = caught.value.response
    assert caught.value.status_code == 429
    assert response.headers["retry-after"] == "2"
    assert response.headers["retry-after-ms"] == "2000"
    assert caught.value.code == "rate_limit_exceeded"
    assert_failed_attempt(gateway, trace_id_of(response), http_status=429, error_type="http_429")
    assert_still_serving(gateway)


@pytest.mark.parametrize("status", [500, 503])
def test_upstream_server_errors_are_502(gateway: GatewayProcess, status: int) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        gateway.client().chat.completions.create(
            model="mock-gpt", messages=HELLO, extra_body={"mock": {"error": status}}
        )
    assert caught.value.status_code == 502
    assert caught.value.code == "upstream_error"
    assert caught.value.response.headers["x-steerway-provider"] == "mock"
    assert_failed_attempt(
        gateway, trace_id_of(caught.value.response), http_status=502, error_type=f"http_{status}"
    )
    assert_still_serving(gateway)


def test_upstream_400_keeps_the_providers_message(gateway: GatewayProcess) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.client().chat.completions.create(
            model="mock-gpt", messages=HELLO, extra_body={"mock": {"error": 400}}
        )
    assert "The mock provider was asked to reject this request." in caught.value.message
    assert_failed_attempt(
        gateway, trace_id_of(caught.value.response), http_status=400, error_type="http_400"
    )


def test_upstream_404_is_model_not_found(gateway: GatewayProcess) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        gateway.client().chat.completions.create(
            model="mock-gpt", messages=HELLO, extra_body={"mock": {"error": 404}}
        )
    assert caught.value.code == "model_not_found"


@pytest.mark.parametrize("status", [401, 403])
def test_upstream_credential_errors_are_502_not_the_clients_fault(
    gateway: GatewayProcess, status: int
) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        gateway.client().chat.completions.create(
            model="mock-gpt", messages=HELLO, extra_body={"mock": {"error": status}}
        )
    assert caught.value.status_code == 502
    message = caught.value.message
    assert "credentials" in message
    assert "Bearer" not in message and "sk-" not in message
    assert_failed_attempt(
        gateway, trace_id_of(caught.value.response), http_status=502, error_type=f"http_{status}"
    )
    assert_still_serving(gateway)


def test_malformed_upstream_answer_is_502(gateway: GatewayProcess) -> None:
    client = gateway.client()
    with pytest.raises(openai.InternalServerError) as chat:
        client.chat.completions.create(
            model="mock-gpt", messages=HELLO, extra_body={"mock": {"malformed": True}}
        )
    assert chat.value.status_code == 502
    assert_failed_attempt(
        gateway, trace_id_of(chat.value.response), http_status=502, error_type="malformed"
    )
    with pytest.raises(openai.InternalServerError) as embeddings:
        client.embeddings.create(
            model="mock-embedding", input="x", extra_body={"mock": {"malformed": True}}
        )
    assert embeddings.value.status_code == 502
    assert_failed_attempt(
        gateway, trace_id_of(embeddings.value.response), http_status=502, error_type="malformed"
    )
    assert_still_serving(gateway)


def test_embeddings_upstream_error_is_502(gateway: GatewayProcess) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        gateway.client().embeddings.create(
            model="mock-embedding", input="x", extra_body={"mock": {"error": 500}}
        )
    interaction = assert_failed_attempt(
        gateway, trace_id_of(caught.value.response), http_status=502, error_type="http_500"
    )
    assert interaction["operation"] == "embeddings"


def test_hanging_upstream_is_504_after_the_first_byte_timeout(
    gateway: GatewayProcess, mock_provider: MockProcess
) -> None:
    cancelled_before = mock_provider.stats()["requests_cancelled"]
    started = time.monotonic()
    with pytest.raises(openai.InternalServerError) as caught:
        gateway.client().chat.completions.create(
            model="mock-gpt", messages=HELLO, extra_body={"mock": {"hang": True}}
        )
    elapsed = time.monotonic() - started
    assert caught.value.status_code == 504
    assert caught.value.code == "upstream_timeout"
    assert 1.5 <= elapsed < 8.0, elapsed
    assert_failed_attempt(
        gateway, trace_id_of(caught.value.response), http_status=504, error_type="timeout"
    )
    assert poll(lambda: mock_provider.stats()["requests_cancelled"] > cancelled_before), (
        "the gateway left the hanging upstream request open"
    )
    assert_still_serving(gateway)


def test_hanging_upstream_stream_is_504_before_the_stream_starts(gateway: GatewayProcess) -> None:
    started = time.monotonic()
    with pytest.raises(openai.InternalServerError) as caught:
        gateway.client().chat.completions.create(
            model="mock-gpt", messages=HELLO, stream=True, extra_body={"mock": {"hang": True}}
        )
    assert caught.value.status_code == 504
    assert time.monotonic() - started < 8.0
    assert_failed_attempt(
        gateway, trace_id_of(caught.value.response), http_status=504, error_type="timeout"
    )


def test_missing_usage_is_recorded_as_unknown(gateway: GatewayProcess) -> None:
    client = gateway.client()
    raw = client.chat.completions.with_raw_response.create(
        model="mock-gpt", messages=HELLO, extra_body={"mock": {"no_usage": True}}
    )
    assert raw.parse().choices[0].message.content
    stream = client.chat.completions.create(
        model="mock-gpt", messages=HELLO, stream=True, extra_body={"mock": {"no_usage": True}}
    )
    assert list(stream), "the stream was empty"
    for trace_id in (
        raw.headers["x-steerway-trace-id"],
        stream.response.headers["x-steerway-trace-id"],
    ):
        row = recorded_interaction(gateway.database, trace_id)
        assert row["status"] == "ok"
        assert row["prompt_tokens"] is None
        assert row["completion_tokens"] is None
        assert row["total_tokens"] is None
        assert row["cost_usd"] is None


def test_stream_cut_by_the_provider_ends_with_an_error_event(
    gateway: GatewayProcess, mock_provider: MockProcess
) -> None:
    control = {"mock": {"chunks": 6, "drop_after_chunks": 2}}
    dropped_before = mock_provider.stats()["streams_dropped"]
    stream = gateway.client().chat.completions.create(
        model="mock-gpt", messages=HELLO, stream=True, extra_body=control
    )
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            received.append(chunk)
    assert received, "no chunk arrived before the cut"
    assert "upstream" in caught.value.message
    assert mock_provider.stats()["streams_dropped"] == dropped_before + 1

    with (
        gateway.http() as http,
        http.stream(
            "POST",
            "/v1/chat/completions",
            json={"model": "mock-gpt", "messages": HELLO, "stream": True, **control},
        ) as response,
    ):
        assert response.status_code == 200
        body = response.read().decode()
        trace_id = trace_id_of(response)
    events = [e for e in body.split("\n\n") if e.strip()]
    assert "data: [DONE]" not in events
    last = json.loads(events[-1].removeprefix("data: "))
    assert set(last["error"]) == ERROR_FIELDS
    assert last["error"]["code"] == "upstream_error"

    interaction = recorded_interaction(gateway.database, trace_id)
    assert interaction["status"] == "error"
    assert interaction["error_type"] == "disconnected"
    assert interaction["stream"] in (True, 1)
    trace = recorded_trace(gateway.database, trace_id)
    assert trace["status"] == "error"
    assert trace["error_type"] == "upstream_error"
    assert_still_serving(gateway)


def test_malformed_stream_ends_with_an_error_event(gateway: GatewayProcess) -> None:
    stream = gateway.client().chat.completions.create(
        model="mock-gpt", messages=HELLO, stream=True, extra_body={"mock": {"malformed": True}}
    )
    with pytest.raises(openai.APIError) as caught:
        for _ in stream:
            pass
    assert caught.value.code == "upstream_error"
    trace_id = stream.response.headers["x-steerway-trace-id"]
    interaction = recorded_interaction(gateway.database, trace_id)
    assert (interaction["status"], interaction["error_type"]) == ("error", "malformed")
    assert_still_serving(gateway)


def test_streaming_upstream_429_fails_before_the_stream(gateway: GatewayProcess) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        gateway.client().chat.completions.create(
            model="mock-gpt",
            messages=HELLO,
            stream=True,
            extra_body={"mock": {"error": 429, "retry_after": 1}},
        )
    assert caught.value.response.headers["retry-after"] == "1"
    assert_failed_attempt(
        gateway, trace_id_of(caught.value.response), http_status=429, error_type="http_429"
    )


# --- client disconnects -----------------------------------------------------------------------


def test_client_disconnect_cancels_the_upstream_stream(
    gateway: GatewayProcess, mock_provider: MockProcess
) -> None:
    aborted_before = mock_provider.stats()["streams_aborted"]
    body = {
        "model": "mock-gpt",
        "messages": HELLO,
        "stream": True,
        "mock": {"chunks": 200, "chunk_interval_ms": 50},
    }
    with gateway.http() as http, http.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        trace_id = trace_id_of(response)
        first = next(line for line in response.iter_lines() if line.startswith("data:"))
        assert "chat.completion.chunk" in first
    # Leaving both blocks closed the half-read response and its connection.

    assert poll(lambda: mock_provider.stats()["streams_aborted"] > aborted_before), (
        "the upstream stream was not cancelled after the client went away"
    )
    rows = gateway.database.wait_rows(
        "SELECT * FROM traces WHERE trace_id = :t AND status = 'cancelled'", t=trace_id
    )
    assert len(rows) == 1, gateway.database.rows(
        "SELECT status, http_status FROM traces WHERE trace_id = :t", t=trace_id
    )
    assert rows[0]["http_status"] == 499
    assert rows[0]["error_type"] == "client_disconnected"
    interaction = recorded_interaction(gateway.database, trace_id)
    assert interaction["status"] == "cancelled"
    assert interaction["ended_at"] is not None
    assert_still_serving(gateway)


def test_client_disconnect_cancels_a_waiting_upstream_call(
    gateway: GatewayProcess, mock_provider: MockProcess
) -> None:
    """A client that gives up on a slow answer: the gateway should stop paying for it too.

    The upstream delay stays under the 2 s first-byte timeout, so only the gateway noticing the
    disconnect can cancel the upstream call before the mock answers.
    """
    cancelled_before = mock_provider.stats()["requests_cancelled"]
    request_id = "gone-" + secrets.token_hex(6)
    body = {"model": "mock-gpt", "messages": HELLO, "mock": {"latency_ms": 1_900}}
    with gateway.http() as http, pytest.raises(httpx.TimeoutException):
        http.post(
            "/v1/chat/completions",
            json=body,
            headers={"x-request-id": request_id},
            timeout=0.4,
        )
    cancelled = poll(lambda: mock_provider.stats()["requests_cancelled"] > cancelled_before, 1.0)
    trace = gateway.database.wait_rows(
        "SELECT status, http_status FROM traces WHERE request_id = :r", r=request_id
    )
    assert cancelled, f"the upstream call went on after the client disconnected: {trace}"
    assert trace == [{"status": "cancelled", "http_status": 499}]
    assert_still_serving(gateway)


# --- secrets ----------------------------------------------------------------------------------

SECRET = "sk-verysecretvalue123456"


class EchoingUpstream:
    """An upstream that rejects every call and echoes the credentials it got in its message.

    The worst a provider can do to a gateway's secrets: the test shows none of it gets through.
    The status comes from the request's `mock.error` (default 401).
    """

    def __init__(self) -> None:
        self.authorizations: list[str] = []
        seen = self.authorizations

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                status = int(body.get("mock", {}).get("error", 401))
                authorization = self.headers.get("authorization", "")
                seen.append(authorization)
                token = authorization.removeprefix("Bearer ")
                message = f"Incorrect API key provided: {token}. You sent: {authorization}"
                payload = json.dumps(
                    {
                        "error": {
                            "message": message,
                            "type": "invalid_request_error",
                            "param": None,
                            "code": "invalid_api_key",
                        }
                    }
                ).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def echoing_upstream() -> Iterator[EchoingUpstream]:
    upstream = EchoingUpstream()
    try:
        yield upstream
    finally:
        upstream.close()


def test_provider_secret_never_leaks(
    backend_database: Database,
    echoing_upstream: EchoingUpstream,
    start_gateway: Callable[..., GatewayProcess],
) -> None:
    """Upstream errors that echo the key, and a provider nobody listens for: no secret escapes."""
    config = {
        "providers": {
            "echo": {
                "type": "openai",
                "base_url": echoing_upstream.base_url,
                "api_key": "${SOME_SECRET}",
            },
            "nowhere": {
                "type": "openai",
                "base_url": f"http://127.0.0.1:{free_port()}/v1",
                "api_key": "${SOME_SECRET}",
            },
        },
        "models": {
            "echo-gpt": [{"provider": "echo", "model": "gpt-4o-mini"}],
            "nowhere-gpt": [{"provider": "nowhere", "model": "gpt-4o-mini"}],
        },
    }
    master = "sk-master-" + secrets.token_hex(8)
    gateway = start_gateway(
        backend_database, config, master_key=master, env={"SOME_SECRET": SECRET}
    )
    client = gateway.client()
    answers: list[HttpResponse] = []
    expectations = [
        (401, openai.InternalServerError),
        (403, openai.InternalServerError),
        (400, openai.BadRequestError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
    ]
    for status, error_class in expectations:
        with pytest.raises(error_class) as caught:
            client.chat.completions.create(
                model="echo-gpt", messages=HELLO, extra_body={"mock": {"error": status}}
            )
        answers.append(caught.value.response)
    with pytest.raises(openai.InternalServerError) as streamed:
        client.chat.completions.create(
            model="echo-gpt", messages=HELLO, stream=True, extra_body={"mock": {"error": 401}}
        )
    answers.append(streamed.value.response)
    with pytest.raises(openai.BadRequestError) as embedded:
        client.embeddings.create(model="echo-gpt", input="x", extra_body={"mock": {"error": 400}})
    answers.append(embedded.value.response)
    with pytest.raises(openai.InternalServerError) as unreachable:
        client.chat.completions.create(model="nowhere-gpt", messages=HELLO)
    assert unreachable.value.status_code == 502
    assert "cannot connect" in unreachable.value.message
    answers.append(unreachable.value.response)

    assert echoing_upstream.authorizations, "the upstream was never called"
    assert all(a == f"Bearer {SECRET}" for a in echoing_upstream.authorizations)
    for response in answers:
        assert SECRET not in response.text
        assert not any(SECRET in value for value in response.headers.values())
    assert "Incorrect API key provided" in answers[2].json()["error"]["message"]

    trace_ids = [trace_id_of(r) for r in answers]
    recorded = traces_by_id(backend_database, trace_ids)
    listed = ", ".join(f"'{t}'" for t in trace_ids)
    interactions = {
        row["trace_id"]: row
        for row in backend_database.wait_rows(
            f"SELECT * FROM ai_interactions WHERE trace_id IN ({listed})", count=len(trace_ids)
        )
    }
    assert all(row["status"] == "error" and row["error_message"] for row in interactions.values())
    assert interactions[trace_ids[-1]]["error_type"] == "connect"
    assert "Incorrect API key provided" in interactions[trace_ids[0]]["error_message"]
    output = gateway.stop()
    assert "Steerway listening" in output
    assert SECRET not in output
    assert all(SECRET not in repr(row) for row in recorded.values())
    for table in ("traces", "spans", "decisions", "ai_interactions", "api_keys", "workspaces"):
        for row in backend_database.rows(f"SELECT * FROM {table}"):
            assert SECRET not in repr(row), (table, row)

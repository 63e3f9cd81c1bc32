"""Malformed and hostile input on the `/v1` routes, through a running gateway on each backend.

Every field and header the gateway reads gets wrong types, huge, tiny and negative numbers,
odd Unicode and bytes that are not UTF-8 at all. Each must come back as a 400 in OpenAI's shape
naming the parameter, or (for what the gateway only passes through) be left to the provider,
whose own answer reaches the client; never a 5xx of the gateway's making, never a traceback in
its log, and every request recorded.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis

from tests.conftest import REDIS_URL, service_missing
from tests.e2e.conftest import Database, GatewayProcess, MockProcess, mock_config
from tests.e2e.logwatch import LogWatch, assert_no_traceback, watched_gateway
from tests.e2e.test_errors import openai_error, trace_id_of, traces_by_id

HELLO = [{"role": "user", "content": "hello there"}]
CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"
UPSTREAM = "upstream"
"""Expected status of a value the gateway does not read: whatever the provider answers."""

TPM = 2_000
GUARDED = "guarded"
"""Requests with this tag run every guardrail (see the `watched` gateway's rule)."""
"""The tokens per minute of the `small` deployment."""


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "mock-gpt", "messages": HELLO, **fields}


def raw_chat(fragment: bytes) -> bytes:
    """A chat body with `fragment` spliced in as the value of an extra field `x`."""
    return b'{"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}], "x": ' + (
        fragment + b"}"
    )


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


def deep_schema(depth: int) -> dict[str, Any]:
    """A JSON schema that `nested(depth)` satisfies."""
    schema: dict[str, Any] = {"type": "integer"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"a": schema}, "required": ["a"]}
    return schema


# (id, path, request arguments for httpx, expected status, expected param, expected code)
Case = tuple[str, str, dict[str, Any], int | str, str | None, str | None]

BODY_CASES: list[Case] = [
    (
        "invalid-utf8-in-content",
        CHAT,
        {"content": b'{"model": "mock-gpt", "messages": [{"role": "user", "content": "\xff"}]}'},
        400,
        "body",
        "invalid_json",
    ),
    (
        "invalid-utf8-in-a-key",
        CHAT,
        {"content": b'{"model": "mock-gpt", "\xc3": 1, "messages": []}'},
        400,
        "body",
        "invalid_json",
    ),
    (
        "overlong-utf8",
        CHAT,
        {"content": raw_chat(b'"\xc0\xaf"')},
        400,
        "body",
        "invalid_json",
    ),
    (
        "utf8-encoded-surrogate",
        CHAT,
        {"content": raw_chat(b'"\xed\xa0\x80"')},
        400,
        "body",
        "invalid_json",
    ),
    (
        "lone-surrogate-escape",
        CHAT,
        {"content": raw_chat(b'"\\ud800"')},
        400,
        "body",
        "invalid_json",
    ),
    (
        "lone-low-surrogate-escape",
        CHAT,
        {"content": raw_chat(b'"\\udc00 tail"')},
        400,
        "body",
        "invalid_json",
    ),
    (
        "surrogate-pair-escape-is-fine",
        CHAT,
        {"content": raw_chat(b'"\\ud83d\\ude00"')},
        200,
        None,
        None,
    ),
    (
        "ten-thousand-deep",
        CHAT,
        {"content": raw_chat(b"[" * 10_000 + b"]" * 10_000)},
        400,
        "body",
        "invalid_json",
    ),
    ("number-out-of-range", CHAT, {"content": raw_chat(b"1e400")}, 400, "body", "invalid_json"),
    ("nan-literal", CHAT, {"content": raw_chat(b"NaN")}, 400, "body", "invalid_json"),
    ("infinity-literal", CHAT, {"content": raw_chat(b"-Infinity")}, 400, "body", "invalid_json"),
    (
        "five-thousand-digit-integer",
        CHAT,
        {"content": raw_chat(b"9" * 5000)},
        400,
        "body",
        "invalid_json",
    ),
    (
        "big-integer-passes-through",
        CHAT,
        {"content": raw_chat(b"123456789012345678901234567890")},
        200,
        None,
        None,
    ),
    (
        "duplicate-keys-last-wins",
        CHAT,
        {
            "content": b'{"model": 5, "model": "mock-gpt", "messages": [{"role": "user", "content": "x"}]}'
        },
        200,
        None,
        None,
    ),
    (
        "bom-prefixed",
        CHAT,
        {"content": b"\xef\xbb\xbf" + json.dumps(chat()).encode()},
        400,
        "body",
        "invalid_json",
    ),
    (
        "utf16-body",
        CHAT,
        {"content": json.dumps(chat()).encode("utf-16")},
        400,
        "body",
        "invalid_json",
    ),
    ("not-an-object", CHAT, {"content": b"[1, 2]"}, 400, "body", "invalid_json"),
    (
        "embeddings-invalid-utf8",
        EMBEDDINGS,
        {"content": b'{"model": "mock-embedding", "input": "\xfe\xff"}'},
        400,
        "body",
        "invalid_json",
    ),
    (
        "embeddings-deep",
        EMBEDDINGS,
        {
            "content": b'{"model": "mock-embedding", "input": '
            + b"[" * 10_000
            + b"]" * 10_000
            + b"}"
        },
        400,
        "body",
        "invalid_json",
    ),
]

TOKEN_CASES: list[Case] = [
    *[
        (f"{name}-{label}", CHAT, {"json": chat(**{name: value})}, 400, name, code)
        for name in ("max_tokens", "max_completion_tokens")
        for label, value, code in [
            ("negative", -100_000, "invalid_value"),
            ("minus-one", -1, "invalid_value"),
            ("zero", 0, "invalid_value"),
            ("huge", 10**30, "invalid_value"),
            ("above-int32", 2**31, "invalid_value"),
            ("fraction", 1.5, "invalid_type"),
            ("whole-float", 16.0, "invalid_type"),
            ("tiny", 1e-300, "invalid_type"),
            ("boolean", True, "invalid_type"),
            ("string", "16", "invalid_type"),
            ("list", [16], "invalid_type"),
        ]
    ],
    ("max-tokens-null-is-absent", CHAT, {"json": chat(max_tokens=None)}, 200, None, None),
    ("max-tokens-one", CHAT, {"json": chat(max_tokens=1)}, 200, None, None),
    (
        "both-token-fields-one-bad",
        CHAT,
        {"json": chat(max_tokens=5, max_completion_tokens=-5)},
        400,
        "max_completion_tokens",
        "invalid_value",
    ),
    ("n-negative", CHAT, {"json": chat(n=-3)}, 400, "n", "invalid_value"),
    ("n-huge", CHAT, {"json": chat(n=10**30)}, 400, "n", "invalid_value"),
    ("n-above-128", CHAT, {"json": chat(n=129)}, 400, "n", "invalid_value"),
    ("n-boolean", CHAT, {"json": chat(n=True)}, 400, "n", "invalid_type"),
    ("n-string", CHAT, {"json": chat(n="2")}, 400, "n", "invalid_type"),
    ("n-two", CHAT, {"json": chat(n=2, max_tokens=4)}, 200, None, None),
]

FIELD_CASES: list[Case] = [
    ("model-empty", CHAT, {"json": chat(model="")}, 400, "model", "invalid_type"),
    ("model-list", CHAT, {"json": chat(model=["mock-gpt"])}, 400, "model", "invalid_type"),
    ("model-huge", CHAT, {"json": chat(model="m" * 100_000)}, 404, "model", "model_not_found"),
    (
        "model-odd-unicode",
        CHAT,
        {"json": chat(model="mock\u202egpt\U0001f600")},
        404,
        "model",
        "model_not_found",
    ),
    (
        "temperature-string",
        CHAT,
        {"json": chat(temperature="hot")},
        400,
        "temperature",
        "invalid_type",
    ),
    (
        "temperature-boolean",
        CHAT,
        {"json": chat(temperature=False)},
        400,
        "temperature",
        "invalid_type",
    ),
    ("temperature-huge", CHAT, {"json": chat(temperature=1e308)}, UPSTREAM, None, None),
    ("temperature-negative", CHAT, {"json": chat(temperature=-1e-300)}, UPSTREAM, None, None),
    ("top-p-object", CHAT, {"json": chat(top_p={})}, 400, "top_p", "invalid_type"),
    ("top-p-huge", CHAT, {"json": chat(top_p=10**40)}, UPSTREAM, None, None),
    ("stream-number", CHAT, {"json": chat(stream=1)}, 400, "stream", "invalid_type"),
    (
        "stream-options-list",
        CHAT,
        {"json": chat(stream=True, stream_options=[])},
        400,
        "stream_options",
        "invalid_type",
    ),
    (
        "stream-options-odd-values",
        CHAT,
        {"json": chat(stream=True, stream_options={"include_usage": "yes", "x": nested(50)})},
        UPSTREAM,
        None,
        None,
    ),
    ("tools-string", CHAT, {"json": chat(tools="all")}, 400, "tools", "invalid_type"),
    ("tools-odd-items", CHAT, {"json": chat(tools=[1, None, "x", []])}, UPSTREAM, None, None),
    (
        "tools-deep-schema",
        CHAT,
        {
            "json": chat(
                tools=[{"type": "function", "function": {"name": "f", "parameters": nested(200)}}]
            )
        },
        UPSTREAM,
        None,
        None,
    ),
    (
        "response-format-string",
        CHAT,
        {"json": chat(response_format="json")},
        400,
        "response_format",
        "invalid_type",
    ),
    (
        "response-format-odd-type",
        CHAT,
        {"json": chat(response_format={"type": 5})},
        UPSTREAM,
        None,
        None,
    ),
    (
        "response-format-deep-schema",
        CHAT,
        {
            "json": chat(
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": "s", "schema": nested(200)},
                }
            )
        },
        UPSTREAM,
        None,
        None,
    ),
    ("user-number", CHAT, {"json": chat(user=5)}, 400, "user", "invalid_type"),
    ("user-huge", CHAT, {"json": chat(user="u" * 100_000)}, 200, None, None),
    (
        "user-odd-unicode",
        CHAT,
        {"json": chat(user="\u0301\u202e\ufeff\U0010ffff")},
        200,
        None,
        None,
    ),
    (
        "messages-object",
        CHAT,
        {"json": chat(messages={"role": "user"})},
        400,
        "messages",
        "invalid_type",
    ),
    (
        "content-parts-odd",
        CHAT,
        {
            "json": chat(
                messages=[{"role": "user", "content": [5, None, {"type": 7}, {"text": []}]}]
            )
        },
        UPSTREAM,
        None,
        None,
    ),
    (
        "content-huge-unicode",
        CHAT,
        {"json": chat(messages=[{"role": "user", "content": "\U0001f600\u0301" * 50_000}])},
        200,
        None,
        None,
    ),
    (
        "unknown-field-passes-through",
        CHAT,
        {"json": chat(vendor_knob={"deep": nested(100)})},
        200,
        None,
        None,
    ),
    (
        "dimensions-negative",
        EMBEDDINGS,
        {"json": {"model": "mock-embedding", "input": "x", "dimensions": -1}},
        UPSTREAM,
        None,
        None,
    ),
    (
        "dimensions-boolean",
        EMBEDDINGS,
        {"json": {"model": "mock-embedding", "input": "x", "dimensions": True}},
        400,
        "dimensions",
        "invalid_type",
    ),
    (
        "input-odd-items",
        EMBEDDINGS,
        {"json": {"model": "mock-embedding", "input": [None, 1, [2]]}},
        UPSTREAM,
        None,
        None,
    ),
]

HEADER_CASES: list[Case] = [
    (
        "metadata-not-json",
        CHAT,
        {"json": chat(), "headers": {"x-steerway-metadata": "{"}},
        400,
        "x-steerway-metadata",
        None,
    ),
    (
        "metadata-deep",
        CHAT,
        {"json": chat(), "headers": {"x-steerway-metadata": "[" * 3_000 + "]" * 3_000}},
        400,
        "x-steerway-metadata",
        None,
    ),
    (
        "metadata-out-of-range-number",
        CHAT,
        {"json": chat(), "headers": {"x-steerway-metadata": '{"a": 1e400}'}},
        400,
        "x-steerway-metadata",
        None,
    ),
    (
        "metadata-lone-surrogate",
        CHAT,
        {"json": chat(), "headers": {"x-steerway-metadata": '{"a": "\\ud800"}'}},
        400,
        "x-steerway-metadata",
        None,
    ),
    (
        "metadata-latin1-bytes",
        CHAT,
        {"json": chat(), "headers": {"x-steerway-metadata": b'{"a": "\xff\xfe"}'}},
        200,
        None,
        None,
    ),
    (
        "metadata-huge",
        CHAT,
        {"json": chat(), "headers": {"x-steerway-metadata": json.dumps({"a": "b" * 10_000})}},
        400,
        "x-steerway-metadata",
        None,
    ),
    (
        "tags-many-and-long",
        CHAT,
        {"json": chat(), "headers": {"x-steerway-tags": ",".join(["t" * 300] * 200)}},
        200,
        None,
        None,
    ),
    (
        "tags-latin1-bytes",
        CHAT,
        {"json": chat(), "headers": {"x-steerway-tags": b"\xff,\xc3"}},
        200,
        None,
        None,
    ),
    (
        "cache-ttl-negative",
        CHAT,
        {"json": chat(), "headers": {"x-steerway-cache": "ttl=-1"}},
        400,
        "x-steerway-cache",
        "invalid_cache_header",
    ),
    (
        "cache-ttl-float",
        CHAT,
        {"json": chat(), "headers": {"x-steerway-cache": "ttl=1e400"}},
        400,
        "x-steerway-cache",
        "invalid_cache_header",
    ),
    (
        "cache-ttl-huge",
        CHAT,
        {"json": chat(), "headers": {"x-steerway-cache": "ttl=" + "9" * 60}},
        400,
        "x-steerway-cache",
        "invalid_cache_header",
    ),
    (
        "cache-ttl-unicode-digits",
        CHAT,
        {"json": chat(), "headers": {"x-steerway-cache": "ttl=\u0663".encode()}},
        400,
        "x-steerway-cache",
        "invalid_cache_header",
    ),
    (
        "traceparent-garbage",
        CHAT,
        {"json": chat(), "headers": {"traceparent": "00-" + "z" * 500}},
        200,
        None,
        None,
    ),
    (
        "request-id-huge",
        CHAT,
        {"json": chat(), "headers": {"x-request-id": "r" * 5000}},
        200,
        None,
        None,
    ),
]

DEEP_TEXT = "[" * 5_000 + "]" * 5_000


def tool_exchange(arguments: str, answer: str) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "look it up"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": arguments}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": answer},
    ]


TOOL_ARGUMENTS = "messages[1].tool_calls[0].function.arguments"
PROVIDER_CASES: list[Case] = [
    (
        f"{model}-tool-arguments-deep",
        CHAT,
        {"json": chat(model=model, messages=tool_exchange(DEEP_TEXT, "{}"))},
        400,
        TOOL_ARGUMENTS,
        None,
    )
    for model in ("sonnet", "flash")
] + [
    (
        f"{model}-tool-answer-deep",
        CHAT,
        {"json": chat(model=model, messages=tool_exchange("{}", DEEP_TEXT))},
        UPSTREAM,
        None,
        None,
    )
    for model in ("sonnet", "flash")
]

ANSWER_CASES: list[Case] = [
    (
        "answer-deep-json-object",
        CHAT,
        {"json": chat(response_format={"type": "json_object"}, mock={"content": DEEP_TEXT})},
        UPSTREAM,
        None,
        None,
    ),
    (
        "answer-for-a-deep-schema",
        CHAT,
        {
            "json": chat(
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": "s", "schema": deep_schema(400)},
                },
                mock={"content": json.dumps(nested(400))},
            )
        },
        UPSTREAM,
        None,
        None,
    ),
    (
        "answer-invalid-unicode-escape",
        CHAT,
        {
            "json": chat(
                response_format={"type": "json_object"}, mock={"content": '{"a": "\\ud800"}'}
            )
        },
        UPSTREAM,
        None,
        None,
    ),
]

ALL_CASES = BODY_CASES + TOKEN_CASES + FIELD_CASES + HEADER_CASES + PROVIDER_CASES + ANSWER_CASES


def guarded(case: Case) -> Case:
    """The case again on a request that runs every guardrail."""
    name, path, arguments, status, param, code = case
    headers = {**arguments.get("headers", {}), "x-steerway-tags": GUARDED}
    return (f"{name}+guarded", path, {**arguments, "headers": headers}, status, param, code)


@pytest.fixture(scope="module")
def watched(
    backend_database: Database,
    mock_provider: MockProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[GatewayProcess, LogWatch]]:
    config = mock_config(mock_provider)
    # A deployment of its own (capacity is counted per provider model, whichever route uses it).
    config["models"]["small"] = [{"provider": "mock", "model": "mock-small", "tpm": TPM}]
    config["cache"] = {"enabled": False}
    config["providers"]["claude"] = {
        "type": "anthropic",
        "base_url": mock_provider.base_url,
        "api_key": "sk-ant-test-key-000000",
    }
    config["providers"]["google"] = {
        "type": "gemini",
        "base_url": mock_provider.url + "/v1beta",
        "api_key": "AIzaTestKey00000000000000000",
    }
    config["models"]["sonnet"] = [{"provider": "claude", "model": "claude-sonnet-4-5-20250929"}]
    config["models"]["flash"] = [{"provider": "google", "model": "gemini-2.5-flash"}]
    # Every input and output guardrail, logging only, on requests tagged "guarded".
    config["guardrails"] = {
        "definitions": {
            "pii": {"kind": "pii", "action": "log", "direction": "both"},
            "injection": {"kind": "prompt_injection", "action": "log"},
            "words": {"kind": "deny_list", "words": ["forbidden"], "action": "log"},
            "schema": {"kind": "json_schema", "action": "log"},
        }
    }
    config["rules"] = [
        {
            "id": "guard-the-hostile",
            "when": {"tags": GUARDED},
            "then": {"guardrails": ["pii", "injection", "words", "schema"]},
        }
    ]
    with watched_gateway(
        backend_database, config, tmp_path_factory.mktemp("malformed"), master_key="sk-master-in"
    ) as running:
        yield running


def _send(http: httpx.Client, path: str, arguments: dict[str, Any]) -> httpx.Response:
    """Header values given as bytes go out as those bytes (not necessarily UTF-8)."""
    return http.post(path, **arguments)


def test_every_malformed_request_is_a_400_naming_its_param_or_left_to_the_provider(
    watched: tuple[GatewayProcess, LogWatch],
) -> None:
    gateway, watch = watched
    mark = watch.mark()
    trace_ids: list[str] = []
    failures: list[str] = []
    with gateway.http() as http:
        cases = ALL_CASES + [
            guarded(case)
            for case in ALL_CASES
            if "x-steerway-tags" not in case[2].get("headers", {})
        ]
        for case, path, arguments, status, param, code in cases:
            response = _send(http, path, arguments)
            if "x-steerway-trace-id" in response.headers:
                trace_ids.append(trace_id_of(response))
            if response.status_code >= 500:
                failures.append(f"{case}: {response.status_code} {response.text[:300]}")
                continue
            if status == UPSTREAM:
                if response.status_code not in (200, 400):
                    failures.append(f"{case}: {response.status_code} {response.text[:300]}")
                continue
            if response.status_code != status:
                failures.append(
                    f"{case}: expected {status}, got {response.status_code} {response.text[:300]}"
                )
                continue
            if status == 200:
                continue
            error = openai_error(response)
            if (error["param"], error["code"]) != (param, code):
                failures.append(
                    f"{case}: param/code {error['param']!r}/{error['code']!r}, "
                    f"expected {param!r}/{code!r} ({error['message'][:200]})"
                )
            if len(error["message"]) > 2_000:
                failures.append(f"{case}: a message of {len(error['message'])} characters")
    assert not failures, "\n".join(failures)
    traces_by_id(gateway.database, trace_ids)
    assert_no_traceback(watch.since(mark))


# --- max_tokens and the deployment's tokens per minute ----------------------------------------


def _wait_for_a_fresh_minute() -> None:
    """Deployment capacity is counted per wall-clock minute: start well inside one, so the
    checks below cannot straddle a reset."""
    left = 60 - time.time() % 60
    if left < 10:
        time.sleep(left + 0.5)


def test_a_negative_max_tokens_cannot_lower_a_deployments_tpm_count(
    watched: tuple[GatewayProcess, LogWatch],
) -> None:
    gateway, watch = watched
    mark = watch.mark()
    _wait_for_a_fresh_minute()
    with gateway.http() as http:
        filled = http.post(CHAT, json=chat(model="small", max_tokens=TPM - 100))
        assert filled.status_code == 200, filled.text
        full = http.post(CHAT, json=chat(model="small", max_tokens=TPM - 100))
        assert full.status_code == 503, full.text
        assert openai_error(full)["code"] == "no_deployment_available"
        for field in ("max_tokens", "max_completion_tokens"):
            for value in (-1_000_000, -(TPM * 10), 0):
                refused = http.post(CHAT, json=chat(model="small", **{field: value}))
                assert refused.status_code == 400, refused.text
                assert openai_error(refused)["param"] == field
        still_full = http.post(CHAT, json=chat(model="small", max_tokens=TPM - 100))
        assert still_full.status_code == 503, still_full.text
    assert_no_traceback(watch.since(mark))


@pytest.fixture(params=["in-process", "redis"])
def limiter_env(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.param == "in-process":
        return {}
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        client.ping()
        client.flushdb()
    except redis.RedisError as error:
        service_missing("Redis", error)
    return {"STEERWAY_REDIS_URL": REDIS_URL}


def test_no_token_field_can_lower_a_keys_tpm_count(
    backend_database: Database,
    mock_provider: MockProcess,
    start_gateway: Callable[..., GatewayProcess],
    limiter_env: dict[str, str],
) -> None:
    """The key's tokens-per-minute count, in-process or in Redis: a request that uses 900 of
    1,000 tokens leaves too little for another 500 whatever the requests between them send."""
    config = mock_config(mock_provider)
    config["cache"] = {"enabled": False}
    gateway = start_gateway(backend_database, config, master_key="sk-master-tpm", env=limiter_env)
    with gateway.http() as admin:
        created = admin.post("/admin/api/keys", json={"name": "tpm", "tpm_limit": 1_000})
        assert created.status_code == 201, created.text
    long_answer = {"chunks": 9, "tokens_per_chunk": 100}  # 900 completion tokens
    with gateway.http(created.json()["key"]) as http:
        used = http.post(CHAT, json=chat(max_tokens=900, mock=long_answer))
        assert used.status_code == 200, used.text
        assert used.json()["usage"]["completion_tokens"] == 900
        for fields in (
            {"max_tokens": -1_000_000},
            {"max_completion_tokens": -1_000_000},
            {"max_tokens": 5, "max_completion_tokens": -1_000_000},
            {"n": -1_000_000, "max_tokens": 5},
        ):
            refused = http.post(CHAT, json=chat(**fields))
            assert refused.status_code == 400, refused.text
        limited = http.post(CHAT, json=chat(max_tokens=500))
        assert limited.status_code == 429, limited.text
        assert "tokens per minute" in openai_error(limited)["message"]

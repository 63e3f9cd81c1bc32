"""Anthropic, Gemini and Azure OpenAI behind the gateway: the OpenAI SDK sees one API."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator

import openai
import pytest

from tests.e2e.conftest import Database, GatewayProcess, MockProcess

HELLO = [{"role": "user", "content": "hello there"}]
WEATHER = [
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


@pytest.fixture(scope="module")
def multi(
    backend_database: Database,
    mock_provider: MockProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GatewayProcess]:
    config = {
        "providers": {
            "claude": {
                "type": "anthropic",
                "base_url": mock_provider.base_url,
                "api_key": "sk-ant-test-key-000000",
                "forward_fields": ["mock"],
            },
            "google": {
                "type": "gemini",
                "base_url": mock_provider.url + "/v1beta",
                "api_key": "AIzaTestKey00000000000000000",
            },
            "azure": {
                "type": "azure",
                "base_url": mock_provider.url,
                "api_key": "azure-test-key",
                "api_version": "2024-10-21",
            },
        },
        "models": {
            "sonnet": [{"provider": "claude", "model": "claude-sonnet-4-5-20250929"}],
            "flash": [{"provider": "google", "model": "gemini-2.5-flash"}],
            "gemini-embed": [{"provider": "google", "model": "text-embedding-004"}],
            "azure-gpt": [{"provider": "azure", "model": "gpt-4o-mini"}],
            "azure-embed": [{"provider": "azure", "model": "text-embedding-3-small"}],
        },
    }
    process = GatewayProcess(
        backend_database,
        config,
        tmp_path_factory.mktemp("multi"),
        master_key="sk-multi-" + secrets.token_hex(8),
    )
    try:
        yield process
    finally:
        process.stop()


def _interaction(gateway: GatewayProcess, trace_id: str) -> dict:
    rows = gateway.database.wait_rows(
        "SELECT * FROM ai_interactions WHERE trace_id = :t", t=trace_id
    )
    assert len(rows) == 1
    return rows[0]


@pytest.mark.parametrize("model", ["sonnet", "flash", "azure-gpt"])
def test_chat_through_each_provider(multi: GatewayProcess, model: str) -> None:
    raw = multi.client().chat.completions.with_raw_response.create(model=model, messages=HELLO)
    completion = raw.parse()
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.prompt_tokens > 0
    row = _interaction(multi, raw.headers["x-steerway-trace-id"])
    assert row["prompt_tokens"] == completion.usage.prompt_tokens
    assert row["completion_tokens"] == completion.usage.completion_tokens
    assert row["cost_usd"] is not None  # every model here is in the price table


@pytest.mark.parametrize("model", ["sonnet", "flash", "azure-gpt"])
def test_streaming_through_each_provider(multi: GatewayProcess, model: str) -> None:
    chunks = list(
        multi.client().chat.completions.create(
            model=model, messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    without_usage = list(
        multi.client().chat.completions.create(model=model, messages=HELLO, stream=True)
    )
    assert all(c.usage is None for c in without_usage)


@pytest.mark.parametrize("model", ["sonnet", "flash", "azure-gpt"])
def test_tool_calls_through_each_provider(multi: GatewayProcess, model: str) -> None:
    client = multi.client()
    completion = client.chat.completions.create(model=model, messages=HELLO, tools=WEATHER)
    call = completion.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert isinstance(json.loads(call.function.arguments), dict)
    assert completion.choices[0].finish_reason == "tool_calls"
    with client.chat.completions.stream(model=model, messages=HELLO, tools=WEATHER) as stream:
        final = stream.get_final_completion()
    streamed = final.choices[0].message.tool_calls[0]
    assert streamed.function.name == "get_weather"
    assert isinstance(json.loads(streamed.function.arguments), dict)


@pytest.mark.parametrize("model", ["gemini-embed", "azure-embed"])
def test_embeddings_through_gemini_and_azure(multi: GatewayProcess, model: str) -> None:
    result = multi.client().embeddings.create(model=model, input=["a", "b"])
    assert len(result.data) == 2
    assert all(len(item.embedding) > 0 for item in result.data)


def test_anthropic_cannot_express_n_greater_than_one(multi: GatewayProcess) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        multi.client().chat.completions.create(model="sonnet", messages=HELLO, n=2)
    assert caught.value.status_code == 400


def test_provider_errors_keep_the_openai_shape(multi: GatewayProcess) -> None:
    client = multi.client()
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(
            model="sonnet", messages=HELLO, extra_body={"mock": {"error": 429, "retry_after": 3}}
        )
    assert limited.value.response.headers["retry-after"] == "3"
    with pytest.raises(openai.InternalServerError) as overloaded:
        client.chat.completions.create(
            model="sonnet", messages=HELLO, extra_body={"mock": {"error": 529}}
        )
    assert overloaded.value.status_code == 502
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(
            model="flash", messages=HELLO, extra_body={"mock": {"error": 429}}
        )


def test_gemini_safety_block_is_a_content_filter_finish(multi: GatewayProcess) -> None:
    completion = multi.client().chat.completions.create(
        model="flash", messages=HELLO, extra_body={"mock": {"safety_block": True}}
    )
    assert completion.choices[0].finish_reason == "content_filter"


def test_provider_keys_never_reach_the_records(multi: GatewayProcess) -> None:
    multi.client().chat.completions.create(model="sonnet", messages=HELLO)
    for table in ("traces", "spans", "ai_interactions", "decisions"):
        dump = json.dumps(multi.database.rows(f"SELECT * FROM {table}"), default=str)
        for secret in ("sk-ant-test-key-000000", "AIzaTestKey00000000000000000", "azure-test-key"):
            assert secret not in dump


def test_an_anthropic_stream_cut_short_keeps_the_input_tokens_it_reported(
    multi: GatewayProcess,
) -> None:
    whole = multi.client().chat.completions.create(model="sonnet", messages=HELLO)
    assert whole.usage is not None
    body = {
        "model": "sonnet",
        "messages": HELLO,
        "stream": True,
        "mock": {"chunks": 100, "chunk_interval_ms": 50},
    }
    trace_id = multi.stream_and_leave(body)
    row = _interaction(multi, trace_id)
    assert row["status"] == "cancelled"
    assert row["usage_estimated"] in (True, 1)
    assert row["prompt_tokens"] == whole.usage.prompt_tokens  # Anthropic's count, not a guess
    assert 1 <= row["completion_tokens"] < 100  # what streamed before the client left
    assert row["cost_usd"] is not None

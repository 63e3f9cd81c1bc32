"""The mock provider over real loopback HTTP, driven by the official OpenAI SDK and raw clients."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import os
import signal
import sys
import time
from array import array
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from providers.mock_server import (
    IMAGE_TOKENS,
    MODEL_IDS,
    MockServer,
    MockSettings,
    add_arguments,
    reply_text,
    settings_from_args,
    start_mock_server,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
USER_MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello there"}]

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer", "minimum": 1},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "note": {"type": "string"},
            },
            "required": ["city", "days", "unit"],
        },
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
}


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[MockServer]:
    mock = await start_mock_server(MockSettings(chunks=8, tokens_per_chunk=1))
    yield mock
    await mock.close()


@pytest.fixture(autouse=True)
def _fresh_counters(request: pytest.FixtureRequest) -> None:
    if "server" in request.fixturenames:
        request.getfixturevalue("server").reset()


@pytest.fixture
async def client(server: MockServer) -> AsyncIterator[openai.AsyncOpenAI]:
    sdk = openai.AsyncOpenAI(base_url=server.base_url, api_key="x", max_retries=0, timeout=10)
    yield sdk
    await sdk.close()


async def wait_until(condition: Callable[[], bool], within: float = 3.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


def sse_events(raw: bytes) -> list[str]:
    text = raw.decode()
    assert text.endswith("\n\n")
    events = text[:-2].split("\n\n")
    assert all(event.startswith("data: ") for event in events)
    return [event.removeprefix("data: ") for event in events]


# --- non-streaming chat ---------------------------------------------------------------------


async def test_chat_completion_is_deterministic_with_predictable_usage(client):
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "hello there"},
    ]
    completion = await client.chat.completions.create(model="any-model", messages=messages)

    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == "any-model"
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content == reply_text("hello there", 8)
    assert choice.message.content == "Echo: hello there Echo: hello there Echo: hello"
    characters = len("You are terse.") + len("hello there")
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == math.ceil(characters / 4)
    assert completion.usage.completion_tokens == 8
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + 8


async def test_n_gives_that_many_choices_and_counts_their_tokens(client):
    completion = await client.chat.completions.create(model="mock-gpt", messages=USER_MESSAGES, n=2)
    assert [choice.index for choice in completion.choices] == [0, 1]
    assert completion.choices[0].message.content == completion.choices[1].message.content
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 16


async def test_max_tokens_truncates_with_finish_reason_length(client):
    completion = await client.chat.completions.create(
        model="mock-gpt", messages=USER_MESSAGES, max_tokens=3
    )
    assert completion.choices[0].message.content == "Echo: hello there"
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 3

    newer = await client.chat.completions.create(
        model="mock-gpt", messages=USER_MESSAGES, max_completion_tokens=2
    )
    assert newer.choices[0].message.content == "Echo: hello"
    assert newer.choices[0].finish_reason == "length"


async def test_mock_control_sets_exact_content_and_chunk_counts(client):
    completion = await client.chat.completions.create(
        model="mock-gpt",
        messages=USER_MESSAGES,
        extra_body={"mock": {"content": "Exactly  this, please. "}},
    )
    assert completion.choices[0].message.content == "Exactly  this, please. "
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 3

    longer = await client.chat.completions.create(
        model="mock-gpt",
        messages=USER_MESSAGES,
        extra_body={"mock": {"chunks": 3, "tokens_per_chunk": 2}},
    )
    assert longer.choices[0].message.content == reply_text("hello there", 6)
    assert longer.usage is not None
    assert longer.usage.completion_tokens == 6


async def test_json_response_formats_give_valid_json(client):
    as_object = await client.chat.completions.create(
        model="mock-gpt", messages=USER_MESSAGES, response_format={"type": "json_object"}
    )
    assert json.loads(as_object.choices[0].message.content or "") == {
        "reply": reply_text("hello there", 8)
    }

    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "age": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "address": {"$ref": "#/$defs/address"},
        },
        "required": ["name", "age", "tags", "address"],
        "$defs": {
            "address": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "zip": {"type": ["string", "null"]}},
                "required": ["city", "zip"],
            }
        },
    }
    structured = await client.chat.completions.create(
        model="mock-gpt",
        messages=USER_MESSAGES,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "person", "schema": schema, "strict": True},
        },
    )
    parsed = json.loads(structured.choices[0].message.content or "")
    assert isinstance(parsed["name"], str)
    assert isinstance(parsed["age"], int)
    assert parsed["tags"] == []
    assert isinstance(parsed["address"]["city"], str)
    assert isinstance(parsed["address"]["zip"], str)


async def test_image_parts_are_accepted_and_counted(client):
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
            ],
        }
    ]
    completion = await client.chat.completions.create(model="mock-gpt", messages=messages)
    assert completion.choices[0].message.content == reply_text("what is this", 8)
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == math.ceil(len("what is this") / 4) + 2 * IMAGE_TOKENS


async def test_no_usage_omits_usage(client):
    completion = await client.chat.completions.create(
        model="mock-gpt", messages=USER_MESSAGES, extra_body={"mock": {"no_usage": True}}
    )
    assert completion.usage is None
    assert completion.choices[0].message.content


# --- tool calls -----------------------------------------------------------------------------


async def test_tools_give_a_tool_call_built_from_required_properties(client):
    completion = await client.chat.completions.create(
        model="mock-gpt", messages=USER_MESSAGES, tools=[WEATHER_TOOL, TIME_TOOL]
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None
    (call,) = choice.message.tool_calls
    assert call.type == "function"
    assert call.id.startswith("call_")
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "mock", "days": 1, "unit": "celsius"}


async def test_tool_choice_picks_the_named_tool_or_none(client):
    named = await client.chat.completions.create(
        model="mock-gpt",
        messages=USER_MESSAGES,
        tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    assert named.choices[0].message.tool_calls is not None
    assert named.choices[0].message.tool_calls[0].function.name == "get_time"
    assert named.choices[0].message.tool_calls[0].function.arguments == "{}"

    declined = await client.chat.completions.create(
        model="mock-gpt", messages=USER_MESSAGES, tools=[WEATHER_TOOL], tool_choice="none"
    )
    assert declined.choices[0].message.tool_calls is None
    assert declined.choices[0].message.content == reply_text("hello there", 8)
    assert declined.choices[0].finish_reason == "stop"


async def test_streamed_tool_call_accumulates_into_a_valid_call(client):
    async with client.chat.completions.stream(
        model="mock-gpt", messages=USER_MESSAGES, tools=[WEATHER_TOOL]
    ) as stream:
        async for _ in stream:
            pass
        final = await stream.get_final_completion()

    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "mock", "days": 1, "unit": "celsius"}


async def test_streamed_tool_call_deltas_follow_openai_shape(server):
    body = {
        "model": "mock-gpt",
        "messages": USER_MESSAGES,
        "tools": [WEATHER_TOOL],
        "stream": True,
        "mock": {"chunks": 4},
    }
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{server.base_url}/chat/completions", json=body)
    events = sse_events(response.content)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    first = chunks[0]["choices"][0]["delta"]["tool_calls"][0]
    assert first["index"] == 0
    assert first["id"].startswith("call_")
    assert first["type"] == "function"
    assert first["function"] == {"name": "get_weather", "arguments": ""}
    pieces = [
        chunk["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
        for chunk in chunks[1:-1]
    ]
    assert len(pieces) == 4
    assert all(
        "name" not in chunk["choices"][0]["delta"]["tool_calls"][0] for chunk in chunks[1:-1]
    )
    assert json.loads("".join(pieces))["unit"] == "celsius"
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


# --- streaming ------------------------------------------------------------------------------


async def test_stream_framing_and_event_order(server):
    body = {"model": "mock-gpt", "messages": USER_MESSAGES, "stream": True}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{server.base_url}/chat/completions", json=body) as response,
    ):
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        raw = await response.read()

    events = sse_events(raw)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert len({chunk["id"] for chunk in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    content_chunks = chunks[1:-1]
    assert len(content_chunks) == 8
    text = "".join(chunk["choices"][0]["delta"]["content"] for chunk in content_chunks)
    assert text == reply_text("hello there", 8)
    assert all(chunk["choices"][0]["finish_reason"] is None for chunk in chunks[:-1])
    assert chunks[-1]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert all("usage" not in chunk for chunk in chunks)


async def test_usage_chunk_only_when_include_usage_is_asked(client):
    plain = await client.chat.completions.create(
        model="mock-gpt", messages=USER_MESSAGES, stream=True
    )
    plain_chunks = [chunk async for chunk in plain]
    assert all(chunk.usage is None for chunk in plain_chunks)
    assert plain_chunks[-1].choices[0].finish_reason == "stop"

    counted = await client.chat.completions.create(
        model="mock-gpt",
        messages=USER_MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    counted_chunks = [chunk async for chunk in counted]
    last = counted_chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.completion_tokens == 8
    assert last.usage.prompt_tokens == math.ceil(len("hello there") / 4)
    assert all(chunk.usage is None for chunk in counted_chunks[:-1])

    silent = await client.chat.completions.create(
        model="mock-gpt",
        messages=USER_MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"mock": {"no_usage": True}},
    )
    assert all(chunk.usage is None for chunk in [chunk async for chunk in silent])


async def test_stream_groups_tokens_and_truncates(client):
    stream = await client.chat.completions.create(
        model="mock-gpt",
        messages=USER_MESSAGES,
        stream=True,
        max_tokens=5,
        extra_body={"mock": {"chunks": 4, "tokens_per_chunk": 2}},
    )
    chunks = [chunk async for chunk in stream]
    contents = [chunk.choices[0].delta.content for chunk in chunks[1:-1]]
    assert contents == ["Echo: hello", " there Echo:", " hello"]
    assert chunks[-1].choices[0].finish_reason == "length"


async def test_stream_with_n_choices_streams_each_choice(client):
    stream = await client.chat.completions.create(
        model="mock-gpt", messages=USER_MESSAGES, stream=True, n=2
    )
    texts = {0: "", 1: ""}
    finishes = {}
    async for chunk in stream:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
            if choice.finish_reason:
                finishes[choice.index] = choice.finish_reason
    assert texts[0] == texts[1] == reply_text("hello there", 8)
    assert finishes == {0: "stop", 1: "stop"}


async def test_stream_timing_settings_are_honoured(client):
    started = time.monotonic()
    stream = await client.chat.completions.create(
        model="mock-gpt",
        messages=USER_MESSAGES,
        stream=True,
        extra_body={
            "mock": {"latency_ms": 20, "ttft_ms": 20, "chunk_interval_ms": 10, "chunks": 3}
        },
    )
    arrivals = []
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic() - started)
    assert len(arrivals) == 3
    assert arrivals[0] >= 0.040
    assert arrivals[-1] >= 0.060


# --- embeddings and models ------------------------------------------------------------------


async def test_embeddings_float_and_base64_are_the_same_vectors(client):
    as_floats = await client.embeddings.create(
        model="mock-embedding", input=["alpha", "beta"], encoding_format="float"
    )
    as_base64 = await client.embeddings.create(model="mock-embedding", input=["alpha", "beta"])
    assert [item.embedding for item in as_floats.data] == [
        item.embedding for item in as_base64.data
    ]
    first, second = (item.embedding for item in as_floats.data)
    assert len(first) == 16
    assert first != second
    assert math.isclose(math.fsum(value * value for value in first), 1.0, rel_tol=1e-5)
    assert as_floats.usage.prompt_tokens == math.ceil(len("alpha") / 4) + 1
    assert as_floats.usage.total_tokens == as_floats.usage.prompt_tokens

    again = await client.embeddings.create(
        model="mock-embedding", input="alpha", encoding_format="float"
    )
    assert again.data[0].embedding == first


async def test_embeddings_raw_base64_is_little_endian_float32(server):
    body = {"model": "mock-embedding", "input": "alpha", "encoding_format": "base64"}
    async with httpx.AsyncClient() as http:
        encoded = (await http.post(f"{server.base_url}/embeddings", json=body)).json()
        floats = (
            await http.post(
                f"{server.base_url}/embeddings", json=body | {"encoding_format": "float"}
            )
        ).json()
    raw = base64.b64decode(encoded["data"][0]["embedding"])
    assert len(raw) == 16 * 4
    decoded = array("f", raw)
    if sys.byteorder == "big":
        decoded.byteswap()
    assert decoded.tolist() == floats["data"][0]["embedding"]


async def test_embeddings_accept_tokens_and_honour_dimensions(client):
    response = await client.embeddings.create(
        model="mock-embedding",
        input=[[1, 2, 3], [4, 5]],
        dimensions=8,
        encoding_format="float",
    )
    assert [len(item.embedding) for item in response.data] == [8, 8]
    assert [item.index for item in response.data] == [0, 1]
    assert response.usage.prompt_tokens == 5

    single = await client.embeddings.create(
        model="mock-embedding", input=[1, 2, 3], dimensions=8, encoding_format="float"
    )
    assert single.data[0].embedding == response.data[0].embedding


async def test_models_are_listed(client):
    models = await client.models.list()
    ids = [model.id async for model in models]
    assert {"mock-gpt", "mock-gpt-large", "mock-embedding"} <= set(ids)
    assert tuple(ids) == MODEL_IDS
    assert (await client.models.retrieve("mock-gpt")).id == "mock-gpt"


# --- validation and auth --------------------------------------------------------------------


async def test_malformed_json_and_missing_messages_give_openai_errors(server):
    url = f"{server.base_url}/chat/completions"
    async with httpx.AsyncClient() as http:
        broken = await http.post(url, content=b'{"model": "mock-gpt", "messages": [')
        missing = await http.post(url, json={"model": "mock-gpt"})
        bad_control = await http.post(
            url, json={"model": "m", "messages": USER_MESSAGES, "mock": {"chunks": "many"}}
        )
        bad_embedding = await http.post(
            f"{server.base_url}/embeddings", json={"model": "m", "input": [1.5]}
        )

    for response in (broken, missing, bad_control, bad_embedding):
        assert response.status_code == 400
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert error["type"] == "invalid_request_error"
        assert error["message"]
    assert missing.json()["error"]["param"] == "messages"
    assert bad_control.json()["error"]["param"] == "mock"
    assert bad_embedding.json()["error"]["param"] == "input[0]"


async def test_malformed_request_raises_bad_request_in_the_sdk(client):
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(model="mock-gpt", messages=[])
    assert caught.value.status_code == 400


async def test_required_api_key_is_enforced():
    async with await start_mock_server(MockSettings(require_api_key="sk-right")) as secured:
        wrong = openai.AsyncOpenAI(base_url=secured.base_url, api_key="sk-wrong", max_retries=0)
        right = openai.AsyncOpenAI(base_url=secured.base_url, api_key="sk-right", max_retries=0)
        with pytest.raises(openai.AuthenticationError) as caught:
            await wrong.chat.completions.create(model="mock-gpt", messages=USER_MESSAGES)
        assert caught.value.status_code == 401
        assert caught.value.code == "invalid_api_key"
        with pytest.raises(openai.AuthenticationError):
            await wrong.models.list()

        completion = await right.chat.completions.create(model="mock-gpt", messages=USER_MESSAGES)
        assert completion.choices[0].message.content
        recorded = secured.last_request
        assert recorded is not None
        assert "authorization" not in recorded["headers"]
        await wrong.close()
        await right.close()


# --- error injection ------------------------------------------------------------------------


async def test_injected_429_carries_retry_after_headers(client):
    with pytest.raises(openai.RateLimitError) as caught:
        await client.chat.completions.create(
            model="mock-gpt",
            messages=USER_MESSAGES,
            extra_body={"mock": {"error": 429, "retry_after": 2}},
        )
    headers = caught.value.response.headers
    assert headers["retry-after"] == "2"
    assert headers["retry-after-ms"] == "2000"
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["type"] == "requests"
    assert caught.value.code == "rate_limit_exceeded"


@pytest.mark.parametrize(
    ("status", "exception"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (404, openai.NotFoundError),
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
    ],
)
async def test_injected_error_statuses(client, status, exception):
    with pytest.raises(exception) as caught:
        await client.chat.completions.create(
            model="mock-gpt", messages=USER_MESSAGES, extra_body={"mock": {"error": status}}
        )
    assert caught.value.status_code == status


async def test_injected_error_applies_to_streams_and_embeddings(client):
    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(
            model="mock-gpt",
            messages=USER_MESSAGES,
            stream=True,
            extra_body={"mock": {"error": 500}},
        )
    with pytest.raises(openai.RateLimitError):
        await client.embeddings.create(
            model="mock-embedding", input="x", extra_body={"mock": {"error": 429}}
        )


async def test_malformed_answers_are_not_json(client, server):
    with pytest.raises(json.JSONDecodeError):
        await client.chat.completions.create(
            model="mock-gpt", messages=USER_MESSAGES, extra_body={"mock": {"malformed": True}}
        )
    stream = await client.chat.completions.create(
        model="mock-gpt",
        messages=USER_MESSAGES,
        stream=True,
        extra_body={"mock": {"malformed": True}},
    )
    with pytest.raises(json.JSONDecodeError):
        async for _ in stream:
            pass


async def test_hang_never_answers_and_notices_the_client_leaving(client, server):
    with pytest.raises(openai.APITimeoutError):
        await client.with_options(timeout=0.2).chat.completions.create(
            model="mock-gpt", messages=USER_MESSAGES, extra_body={"mock": {"hang": True}}
        )
    await wait_until(lambda: server.stats.requests_cancelled == 1)


async def test_drop_after_chunks_cuts_the_stream(client, server):
    stream = await client.chat.completions.create(
        model="mock-gpt",
        messages=USER_MESSAGES,
        stream=True,
        extra_body={"mock": {"drop_after_chunks": 2}},
    )
    received = []
    with pytest.raises(openai.APIConnectionError):
        async for chunk in stream:
            received.append(chunk)
    contents = [chunk.choices[0].delta.content for chunk in received[1:]]
    assert contents == ["Echo:", " hello"]
    await wait_until(lambda: server.stats.streams_dropped == 1)
    assert server.stats.streams_completed == 0


async def test_client_leaving_mid_stream_counts_an_aborted_stream(client, server):
    stream = await client.chat.completions.create(
        model="mock-gpt",
        messages=USER_MESSAGES,
        stream=True,
        extra_body={"mock": {"chunks": 200, "chunk_interval_ms": 10}},
    )
    seen = 0
    async for _ in stream:
        seen += 1
        if seen == 3:
            break
    await stream.close()

    await wait_until(lambda: server.stats.streams_aborted == 1)
    async with httpx.AsyncClient() as http:
        stats = (await http.get(f"{server.url}/_mock/stats")).json()
    assert stats["streams_started"] == 1
    assert stats["streams_aborted"] == 1
    assert stats["streams_completed"] == 0


# --- introspection --------------------------------------------------------------------------


async def test_last_request_shows_forwarded_headers_and_body(client, server):
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    await client.chat.completions.create(
        model="mock-gpt-large",
        messages=USER_MESSAGES,
        extra_headers={"traceparent": traceparent, "X-Custom-Thing": "yes"},
        extra_body={"vendor_extension": {"keep": [1, 2]}},
    )
    async with httpx.AsyncClient() as http:
        recorded = (await http.get(f"{server.url}/_mock/last-request")).json()

    assert recorded["path"] == "/v1/chat/completions"
    assert recorded["method"] == "POST"
    assert recorded["headers"]["traceparent"] == traceparent
    assert recorded["headers"]["x-custom-thing"] == "yes"
    assert "authorization" not in recorded["headers"]
    assert all(name == name.lower() for name in recorded["headers"])
    assert recorded["body"]["model"] == "mock-gpt-large"
    assert recorded["body"]["vendor_extension"] == {"keep": [1, 2]}
    assert recorded["body"]["messages"] == USER_MESSAGES


async def test_stats_count_by_path_and_reset(client, server):
    await client.chat.completions.create(model="mock-gpt", messages=USER_MESSAGES)
    await client.embeddings.create(model="mock-embedding", input="x")
    stream = await client.chat.completions.create(
        model="mock-gpt", messages=USER_MESSAGES, stream=True
    )
    async for _ in stream:
        pass

    async with httpx.AsyncClient() as http:
        stats = (await http.get(f"{server.url}/_mock/stats")).json()
        assert stats["requests"] == {"/v1/chat/completions": 2, "/v1/embeddings": 1}
        assert stats["streams_started"] == stats["streams_completed"] == 1
        assert stats["pid"] == os.getpid()

        reset = await http.post(f"{server.url}/_mock/reset")
        assert reset.status_code == 200
        after = (await http.get(f"{server.url}/_mock/stats")).json()
        assert after["requests"] == {}
        assert after["streams_started"] == 0
        missing = await http.get(f"{server.url}/_mock/last-request")
        assert missing.status_code == 404


# --- scenario faults for retry and fallback tests -------------------------------------------


async def stats_of(server: MockServer) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        return dict((await http.get(f"{server.url}/_mock/stats")).json())


def chat_body(model: str, control: dict[str, Any]) -> dict[str, Any]:
    return {"model": model, "messages": USER_MESSAGES, "mock": control}


async def test_fail_first_fails_that_many_attempts_then_succeeds(server):
    control = {"fail_first": 2, "scenario": "retry-twice", "retry_after": 0.5}
    url = f"{server.base_url}/chat/completions"
    async with httpx.AsyncClient() as http:
        answers = [(await http.post(url, json=chat_body("mock-gpt", control))) for _ in range(4)]
        other = await http.post(url, json=chat_body("mock-gpt", {**control, "scenario": "b"}))

    assert [answer.status_code for answer in answers] == [503, 503, 200, 200]
    assert answers[0].json()["error"]["code"] == "service_unavailable"
    assert answers[0].headers["retry-after-ms"] == "500"
    assert "retry-after" not in answers[2].headers
    assert answers[2].json()["choices"][0]["message"]["content"].startswith("Echo: hello")
    assert other.status_code == 503
    assert (await stats_of(server))["scenarios"] == {"retry-twice": 4, "b": 1}


async def test_fail_first_uses_the_given_status_and_counts_survive_until_reset(client, server):
    control = {"fail_first": 1, "scenario": "reset-me", "error": 429}
    with pytest.raises(openai.RateLimitError):
        await client.chat.completions.create(
            model="mock-gpt", messages=USER_MESSAGES, extra_body={"mock": control}
        )
    answer = await client.chat.completions.create(
        model="mock-gpt", messages=USER_MESSAGES, extra_body={"mock": control}
    )
    assert answer.choices[0].finish_reason == "stop"

    async with httpx.AsyncClient() as http:
        reset = await http.post(f"{server.url}/_mock/reset")
    assert reset.json()["scenarios"] == {}
    with pytest.raises(openai.RateLimitError):
        await client.chat.completions.create(
            model="mock-gpt", messages=USER_MESSAGES, extra_body={"mock": control}
        )


async def test_fail_first_with_drop_after_chunks_breaks_only_the_first_stream(client, server):
    control = {"fail_first": 1, "scenario": "drop-once", "drop_after_chunks": 1}
    first = await client.chat.completions.create(
        model="mock-gpt", messages=USER_MESSAGES, stream=True, extra_body={"mock": control}
    )
    with pytest.raises(openai.APIConnectionError):
        async for _ in first:
            pass
    second = await client.chat.completions.create(
        model="mock-gpt", messages=USER_MESSAGES, stream=True, extra_body={"mock": control}
    )
    text = "".join([chunk.choices[0].delta.content or "" async for chunk in second])
    assert text == reply_text("hello there", 8)
    await wait_until(lambda: server.stats.streams_completed == 1)
    assert server.stats.streams_dropped == 1


async def test_fail_first_with_hang_and_malformed(client, server):
    hang_once = {"fail_first": 1, "scenario": "hang-once", "hang": True}
    with pytest.raises(openai.APITimeoutError):
        await client.with_options(timeout=0.2).chat.completions.create(
            model="mock-gpt", messages=USER_MESSAGES, extra_body={"mock": hang_once}
        )
    answer = await client.chat.completions.create(
        model="mock-gpt", messages=USER_MESSAGES, extra_body={"mock": hang_once}
    )
    assert answer.choices[0].message.content

    malformed_once = {"fail_first": 1, "scenario": "malformed-once", "malformed": True}
    with pytest.raises(json.JSONDecodeError):
        await client.chat.completions.create(
            model="mock-gpt", messages=USER_MESSAGES, extra_body={"mock": malformed_once}
        )
    answer = await client.chat.completions.create(
        model="mock-gpt", messages=USER_MESSAGES, extra_body={"mock": malformed_once}
    )
    assert answer.choices[0].message.content


async def test_fail_first_on_embeddings(client):
    control = {"fail_first": 1, "scenario": "embed-once", "error": 500}
    with pytest.raises(openai.InternalServerError):
        await client.embeddings.create(
            model="mock-embedding", input="x", extra_body={"mock": control}
        )
    answer = await client.embeddings.create(
        model="mock-embedding", input="x", extra_body={"mock": control}
    )
    assert len(answer.data[0].embedding) == 16


async def test_invalid_requests_do_not_use_up_the_fail_first_budget(server):
    control = {"fail_first": 1, "scenario": "invalid-first"}
    url = f"{server.base_url}/chat/completions"
    async with httpx.AsyncClient() as http:
        invalid = await http.post(url, json={"model": "mock-gpt", "messages": [], "mock": control})
        first = await http.post(url, json=chat_body("mock-gpt", control))
    assert invalid.status_code == 400
    assert invalid.json()["error"]["param"] == "messages"
    assert first.status_code == 503


@pytest.mark.parametrize(
    ("control", "complaint"),
    [
        ({"fail_first": 1}, "`fail_first` and `scenario` must be given together"),
        ({"scenario": "lonely"}, "`fail_first` and `scenario` must be given together"),
        ({"error_code": "content_filter"}, "need `error`, `fail_first` or `fail_models`"),
        ({"fail_models": {"a": 200}}, "fail_models"),
        ({"fail_first": -1, "scenario": "s"}, "fail_first"),
        ({"fail_first": 1, "scenario": ""}, "scenario"),
        ({"fail_first": 1, "scenario": "s", "fail_after": 2}, "unknown field `fail_after`"),
    ],
)
async def test_invalid_fault_controls_are_refused(server, control, complaint):
    async with httpx.AsyncClient() as http:
        answer = await http.post(
            f"{server.base_url}/chat/completions", json=chat_body("mock-gpt", control)
        )
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["param"] == "mock"
    assert complaint in error["message"]


async def test_fail_models_breaks_only_the_listed_models(client, server):
    control = {"fail_models": {"deployment-a": 502, "deployment-c": 429}}
    with pytest.raises(openai.InternalServerError) as caught:
        await client.chat.completions.create(
            model="deployment-a", messages=USER_MESSAGES, extra_body={"mock": control}
        )
    assert caught.value.status_code == 502
    answer = await client.chat.completions.create(
        model="deployment-b", messages=USER_MESSAGES, extra_body={"mock": control}
    )
    assert answer.model == "deployment-b"
    with pytest.raises(openai.RateLimitError):
        await client.chat.completions.create(
            model="deployment-c", messages=USER_MESSAGES, extra_body={"mock": control}
        )
    assert (await stats_of(server))["requests_by_model"] == {
        "deployment-a": 1,
        "deployment-b": 1,
        "deployment-c": 1,
    }


async def test_fail_models_with_fail_first_counts_only_the_listed_models(server):
    control = {"fail_models": {"deployment-a": 503}, "fail_first": 1, "scenario": "a-once"}
    url = f"{server.base_url}/chat/completions"
    async with httpx.AsyncClient() as http:
        b_first = await http.post(url, json=chat_body("deployment-b", control))
        a_first = await http.post(url, json=chat_body("deployment-a", control))
        a_second = await http.post(url, json=chat_body("deployment-a", control))
    assert [b_first.status_code, a_first.status_code, a_second.status_code] == [200, 503, 200]
    assert (await stats_of(server))["scenarios"] == {"a-once": 2}


async def test_fail_models_follow_the_azure_deployment_in_the_url(server):
    control = {"fail_models": {"gpt-4o-eu": 503}}
    body = chat_body("public-name", control)
    async with httpx.AsyncClient() as http:
        broken, working = [
            await http.post(
                f"{server.url}/openai/deployments/{deployment}/chat/completions",
                params={"api-version": "2024-10-21"},
                json=body,
            )
            for deployment in ("gpt-4o-eu", "gpt-4o-us")
        ]
    assert broken.status_code == 503
    assert working.status_code == 200
    assert (await stats_of(server))["requests_by_model"] == {"gpt-4o-eu": 1, "gpt-4o-us": 1}


async def test_error_code_and_message_shape_the_openai_error(client):
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(
            model="mock-gpt",
            messages=USER_MESSAGES,
            extra_body={"mock": {"error": 400, "error_code": "context_length_exceeded"}},
        )
    assert caught.value.code == "context_length_exceeded"
    assert caught.value.param == "messages"
    assert "maximum context length" in caught.value.message

    control = {"error": 400, "error_code": "content_filter", "error_message": "Flagged: violence"}
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(
            model="mock-gpt", messages=USER_MESSAGES, extra_body={"mock": control}
        )
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["code"] == "content_filter"
    assert body["message"] == "Flagged: violence"
    assert body["type"] == "invalid_request_error"


async def test_requests_by_model_counts_attempts_per_model_and_resets(client, server):
    for model in ("mock-gpt", "mock-gpt", "mock-gpt-large"):
        await client.chat.completions.create(model=model, messages=USER_MESSAGES)
    await client.embeddings.create(model="mock-embedding", input="x")
    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(
            model="mock-gpt", messages=USER_MESSAGES, extra_body={"mock": {"error": 500}}
        )

    stats = await stats_of(server)
    assert stats["requests_by_model"] == {"mock-gpt": 3, "mock-gpt-large": 1, "mock-embedding": 1}
    server.reset()
    assert (await stats_of(server))["requests_by_model"] == {}


ANTHROPIC_HEADERS = {"anthropic-version": "2023-06-01"}


def anthropic_body(model: str, control: dict[str, Any], stream: bool = False) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": 64,
        "stream": stream,
        "messages": [{"role": "user", "content": "hello there"}],
        "mock": control,
    }


async def test_anthropic_fail_first_with_a_prompt_too_long_error(server):
    control = {
        "fail_first": 1,
        "scenario": "anthropic-too-long",
        "error": 400,
        "error_code": "context_length_exceeded",
    }
    url = f"{server.url}/v1/messages"
    async with httpx.AsyncClient(headers=ANTHROPIC_HEADERS) as http:
        first = await http.post(url, json=anthropic_body("claude-a", control))
        second = await http.post(url, json=anthropic_body("claude-a", control))
    assert first.status_code == 400
    assert first.json() == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "prompt is too long: 200001 tokens > 200000 maximum",
        },
    }
    assert second.status_code == 200
    assert second.json()["stop_reason"] == "end_turn"
    assert (await stats_of(server))["requests_by_model"] == {"claude-a": 2}


async def test_anthropic_fail_models_sends_a_mid_stream_error_on_one_model_only(server):
    control = {
        "fail_models": {"claude-a": 529},
        "drop_after_chunks": 2,
        "error_message": "Overloaded for this test",
    }
    url = f"{server.url}/v1/messages"
    async with httpx.AsyncClient(headers=ANTHROPIC_HEADERS) as http:
        broken = await http.post(url, json=anthropic_body("claude-a", control, stream=True))
        working = await http.post(url, json=anthropic_body("claude-b", control, stream=True))
    assert broken.status_code == 200
    last_event = broken.text.strip().split("\n\n")[-1]
    assert last_event.startswith("event: error\n")
    error = json.loads(last_event.split("data: ", 1)[1])["error"]
    assert error == {"type": "overloaded_error", "message": "Overloaded for this test"}
    assert working.text.strip().endswith('data: {"type":"message_stop"}')


async def test_gemini_fail_models_follow_the_url_model_with_native_errors(server):
    control = {
        "fail_models": {"gemini-pro": 400},
        "error_code": "context_length_exceeded",
        "fail_first": 1,
        "scenario": "gemini-too-long",
    }
    body = {"contents": [{"role": "user", "parts": [{"text": "hello there"}]}], "mock": control}
    async with httpx.AsyncClient() as http:
        flash = await http.post(
            f"{server.url}/v1beta/models/gemini-flash:generateContent", json=body
        )
        pro = [
            await http.post(f"{server.url}/v1beta/models/gemini-pro:generateContent", json=body)
            for _ in range(2)
        ]
        status_code = await http.post(
            f"{server.url}/v1beta/models/gemini-pro:generateContent",
            json={**body, "mock": {"error": 400, "error_code": "FAILED_PRECONDITION"}},
        )
    assert flash.status_code == 200
    assert flash.json()["candidates"][0]["finishReason"] == "STOP"
    assert pro[0].status_code == 400
    error = pro[0].json()["error"]
    assert error["code"] == 400
    assert error["status"] == "INVALID_ARGUMENT"
    assert "exceeds the maximum number of tokens" in error["message"]
    assert pro[1].status_code == 200
    assert status_code.json()["error"]["status"] == "FAILED_PRECONDITION"
    assert (await stats_of(server))["requests_by_model"] == {"gemini-flash": 1, "gemini-pro": 3}


# --- command line and worker processes ------------------------------------------------------


def test_cli_arguments_build_settings():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    ns = parser.parse_args(
        ["--port", "0", "--workers", "2", "--latency-ms", "5", "--chunks", "3", "--ttft-ms", "1.5"]
    )
    assert (ns.host, ns.port, ns.workers) == ("127.0.0.1", 0, 2)
    settings = settings_from_args(ns)
    assert settings == MockSettings(latency_ms=5.0, ttft_ms=1.5, chunks=3)

    with pytest.raises(SystemExit):
        parser.parse_args(["--chunk-interval-ms", "-1"])


def test_invalid_settings_are_rejected():
    with pytest.raises(ValueError, match="tokens_per_chunk"):
        MockSettings(tokens_per_chunk=0)


async def test_workers_share_one_port():
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "providers.mock_server",
        "--port",
        "0",
        "--workers",
        "2",
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), timeout=20)).decode()
        assert "listening on http://127.0.0.1:" in line
        base_url = line.split()[4]
        pids: set[int] = set()
        for _ in range(60):
            async with httpx.AsyncClient() as http:
                answer = await http.post(
                    f"{base_url}/chat/completions",
                    json={"model": "mock-gpt", "messages": USER_MESSAGES},
                )
                assert answer.status_code == 200
                stats = await http.get(base_url.removesuffix("/v1") + "/_mock/stats")
                pids.add(stats.json()["pid"])
            if len(pids) == 2:
                break
        assert len(pids) == 2
        assert process.pid not in pids
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        exit_code = await asyncio.wait_for(process.wait(), timeout=20)
    assert exit_code == 0

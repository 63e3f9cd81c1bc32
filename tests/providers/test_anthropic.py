"""The Anthropic adapter: translation both ways on recorded-shape fixtures, and the whole path
against the mock provider's `/v1/messages` over real loopback HTTP."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest

from providers.anthropic import AnthropicAdapter
from providers.anthropic_request import DEFAULT_MAX_TOKENS, messages_request
from providers.anthropic_response import StreamTranslator
from providers.errors import UpstreamFailure, parse_error_body
from providers.mock_server import MockServer, MockSettings, reply_text, start_mock_server
from providers.openai_format import SSESplitter, event_data, read_chunk
from providers.upstream import UpstreamClient

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"
API_KEY = "sk-ant-test-key-0123456789"
PIXEL_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
        },
    },
}
TIME_TOOL: dict[str, Any] = {"type": "function", "function": {"name": "get_time"}}


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


# --- requests: OpenAI -> Anthropic ------------------------------------------------------------


def test_system_and_developer_messages_become_one_system_prompt():
    body = messages_request(
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Salut"},
                {"role": "user", "content": "Again"},
            ]
        },
        "claude-x",
        stream=False,
    )
    assert body["system"] == "Be brief.\n\nAnswer in French."
    assert body["model"] == "claude-x"
    assert body["max_tokens"] == DEFAULT_MAX_TOKENS
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Salut"}]},
        {"role": "user", "content": [{"type": "text", "text": "Again"}]},
    ]
    assert "stream" not in body


def test_tool_calls_and_consecutive_tool_results_translate_to_blocks():
    messages = [
        {"role": "user", "content": "Weather in Paris and the time?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {"id": "call_2", "type": "function", "function": {"name": "get_time"}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "9am"}]},
        {"role": "user", "content": "Thanks, summarise."},
    ]
    body = messages_request(
        {"messages": messages, "tools": [WEATHER_TOOL, TIME_TOOL], "tool_choice": "required"},
        "claude-x",
        stream=True,
    )
    assert body["messages"][1] == {
        "role": "assistant",
        "content": [
            {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {}},
        ],
    }
    assert body["messages"][2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
            {"type": "tool_result", "tool_use_id": "call_2", "content": "9am"},
            {"type": "text", "text": "Thanks, summarise."},
        ],
    }
    assert len(body["messages"]) == 3
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather in a city",
            "input_schema": WEATHER_TOOL["function"]["parameters"],
        },
        {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert body["tool_choice"] == {"type": "any"}
    assert body["stream"] is True


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("required", None, {"type": "any"}),
        ("none", None, {"type": "none"}),
        (
            {"type": "function", "function": {"name": "get_time"}},
            None,
            {"type": "tool", "name": "get_time"},
        ),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        (None, None, None),
    ],
)
def test_tool_choice_mapping(choice, parallel, expected):
    payload: dict[str, Any] = {"messages": [{"role": "user", "content": "x"}], "tools": [TIME_TOOL]}
    if choice is not None:
        payload["tool_choice"] = choice
    if parallel is not None:
        payload["parallel_tool_calls"] = parallel
    assert messages_request(payload, "m", stream=False).get("tool_choice") == expected


def test_images_as_url_and_base64_data_url():
    content = [
        {"type": "text", "text": "Compare"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL_PNG}"}},
    ]
    body = messages_request({"messages": [{"role": "user", "content": content}]}, "m", stream=False)
    assert body["messages"][0]["content"][1:] == [
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": PIXEL_PNG},
        },
    ]


def test_sampling_fields_map_and_openai_only_fields_are_dropped():
    body = messages_request(
        {
            "messages": [{"role": "user", "content": "x"}],
            "stop": "END",
            "temperature": 1.5,
            "top_p": 0.9,
            "max_completion_tokens": 321,
            "max_tokens": 999,
            "user": "user-42",
            "frequency_penalty": 0.5,
            "presence_penalty": 0.1,
            "seed": 7,
            "logprobs": True,
            "stream_options": {"include_usage": True},
            "n": 1,
            "mock": {"chunks": 2},
        },
        "m",
        stream=True,
    )
    assert body == {
        "model": "m",
        "max_tokens": 321,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}],
        "stop_sequences": ["END"],
        "temperature": 1.0,
        "top_p": 0.9,
        "metadata": {"user_id": "user-42"},
        "stream": True,
    }


def test_forward_fields_pass_through_untouched():
    body = messages_request(
        {"messages": [{"role": "user", "content": "x"}], "top_k": 5, "mock": {"chunks": 2}},
        "m",
        stream=False,
        forward_fields=("top_k", "mock"),
    )
    assert body["top_k"] == 5
    assert body["mock"] == {"chunks": 2}


def test_response_format_becomes_a_system_instruction():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    body = messages_request(
        {
            "messages": [
                {"role": "system", "content": "Be exact."},
                {"role": "user", "content": "x"},
            ],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "s", "schema": schema},
            },
        },
        "m",
        stream=False,
    )
    assert body["system"].startswith("Be exact.\n\n")
    assert json.dumps(schema, separators=(",", ":")) in body["system"]
    json_object = messages_request(
        {
            "messages": [{"role": "user", "content": "x"}],
            "response_format": {"type": "json_object"},
        },
        "m",
        stream=False,
    )
    assert "JSON object" in json_object["system"]


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"messages": [{"role": "user", "content": "x"}], "n": 2}, "n"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image_url",
                                "image_url": {"url": "data:image/bmp;base64,AAAA"},
                            }
                        ],
                    }
                ]
            },
            "messages[0].content[0].image_url",
        ),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {"id": "c", "function": {"name": "f", "arguments": "{oops"}}
                        ],
                    }
                ]
            },
            "messages[0].tool_calls[0].function.arguments",
        ),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
        ({"messages": [{"role": "narrator", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "system", "content": "only a system prompt"}]}, "messages"),
        ({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, "max_tokens"),
    ],
)
def test_untranslatable_requests_are_clear_400s(payload, param):
    with pytest.raises(UpstreamFailure) as caught:
        messages_request(payload, "m", stream=False)
    assert caught.value.status == 400
    assert caught.value.param == param
    assert caught.value.error_type == "invalid_request_error"


# --- answers: Anthropic -> OpenAI -------------------------------------------------------------


def adapter_for(base_url: str, client: UpstreamClient, **options: Any) -> AnthropicAdapter:
    return AnthropicAdapter("claude", base_url=base_url, api_key=API_KEY, client=client, **options)


@pytest.fixture(scope="module")
def offline_adapter() -> AnthropicAdapter:
    return adapter_for("https://api.anthropic.invalid/v1", UpstreamClient())


def test_parallel_tool_calls_with_text_and_cache_reads(offline_adapter):
    result = offline_adapter.parse_chat(fixture("parallel_tool_calls.json"), "smart")
    body = json.loads(result.body)
    assert body["object"] == "chat.completion"
    assert body["model"] == "smart"
    assert result.response_model == "claude-sonnet-4-5-20250929"
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["content"] == "I'll look up both cities at once."
    calls = message["tool_calls"]
    assert [call["id"] for call in calls] == [
        "toolu_01FIXTUREparis00000001",
        "toolu_01FIXTUREtokyo00000002",
    ]
    assert all(call["type"] == "function" for call in calls)
    assert [json.loads(call["function"]["arguments"])["city"] for call in calls] == [
        "Paris",
        "Tokyo",
    ]
    assert body["usage"] == {
        "prompt_tokens": 412 + 1536,
        "completion_tokens": 97,
        "total_tokens": 412 + 1536 + 97,
        "prompt_tokens_details": {"cached_tokens": 1536},
    }
    assert result.usage.prompt_tokens == 1948
    assert result.usage.cached_tokens == 1536
    assert result.finish_reasons == ["tool_calls"]
    assert result.messages == [message]


def test_tool_call_with_empty_content_and_cache_creation(offline_adapter):
    result = offline_adapter.parse_chat(fixture("empty_content_tool_call.json"), "fast")
    message = json.loads(result.body)["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"][0]["function"] == {"name": "get_time", "arguments": "{}"}
    assert result.usage.prompt_tokens == 58 + 1024
    assert result.usage.cached_tokens == 0
    assert result.usage.total_tokens == 58 + 1024 + 21


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
    ],
)
def test_stop_reasons_map_to_finish_reasons(offline_adapter, stop_reason, finish):
    raw = json.loads(fixture("refusal.json"))
    raw["stop_reason"] = stop_reason
    result = offline_adapter.parse_chat(json.dumps(raw).encode(), "m")
    assert result.finish_reasons == [finish]
    body = json.loads(result.body)
    assert body["choices"][0]["finish_reason"] == finish
    assert body["choices"][0]["message"]["content"] == ""


@pytest.mark.parametrize("raw", [b"", b"not json", b'{"type": "error", "error": {}}', b"[1]"])
def test_an_answer_that_is_not_a_message_is_malformed(offline_adapter, raw):
    with pytest.raises(UpstreamFailure) as caught:
        offline_adapter.parse_chat(raw, "m")
    assert caught.value.kind == "malformed"


def test_anthropic_error_bodies_are_read_by_the_shared_parser():
    message, error_type, code, param = parse_error_body(fixture("error_rate_limit.json"))
    assert message.startswith("This request would exceed the rate limit")
    assert error_type == "rate_limit_error"
    assert code is None and param is None


def test_embeddings_are_refused_with_400(offline_adapter):
    with pytest.raises(UpstreamFailure) as caught:
        offline_adapter.encode_embeddings({"input": "x"}, "m")
    assert caught.value.status == 400
    assert "embeddings" in caught.value.message


# --- streams: fixtures ------------------------------------------------------------------------


def translate_stream(raw: bytes, piece_size: int) -> list[bytes]:
    """Run a recorded stream through the translator, cut into arbitrary transport pieces."""
    splitter = SSESplitter()
    translator = StreamTranslator("smart")
    out: list[bytes] = []
    for start in range(0, len(raw), piece_size):
        for event in splitter.feed(raw[start : start + piece_size]):
            data = event_data(event)
            assert data is not None
            out += translator.feed(data)
    for event in splitter.close():
        data = event_data(event)
        assert data is not None
        out += translator.feed(data)
    assert translator.finished
    return out


class Accumulated:
    """What a client builds from OpenAI chunks: text, tool calls by index, finish, usage."""

    def __init__(self, events: list[bytes]) -> None:
        assert events[-1] == b"data: [DONE]"
        self.text = ""
        self.calls: dict[int, dict[str, str]] = {}
        self.finish: str | None = None
        self.usage = None
        self.first_delta: dict[str, Any] | None = None
        for event in events[:-1]:
            assert event.startswith(b"data: ") and not event.endswith(b"\n")
            data = event.removeprefix(b"data: ")
            chunk = read_chunk(data)
            document = json.loads(data)
            if self.first_delta is None:
                self.first_delta = document["choices"][0]["delta"]
            for _, text in chunk.contents:
                self.text += text
            if chunk.finish_reason:
                self.finish = chunk.finish_reason
            if chunk.usage is not None:
                assert chunk.usage_only
                self.usage = chunk.usage
            for choice in document["choices"]:
                for call in choice["delta"].get("tool_calls") or []:
                    entry = self.calls.setdefault(call["index"], {"arguments": ""})
                    if "id" in call:
                        assert "id" not in entry, "a call's header is sent once"
                        entry["id"] = call["id"]
                        entry["name"] = call["function"]["name"]
                    entry["arguments"] += call["function"].get("arguments", "")
        assert document["choices"] == []  # the usage chunk comes last


@pytest.mark.parametrize("piece_size", [7, 64, 100_000])
def test_stream_fixture_with_text_and_parallel_tool_calls(piece_size):
    events = translate_stream(fixture("stream_text_and_parallel_tools.txt"), piece_size)
    result = Accumulated(events)
    assert result.first_delta == {"role": "assistant", "content": ""}
    assert result.text == "Checking both cities."
    assert sorted(result.calls) == [0, 1]
    assert result.calls[0]["name"] == "get_weather"
    assert result.calls[0]["id"] == "toolu_01STREAMparis000000001"
    assert json.loads(result.calls[0]["arguments"]) == {"city": "Paris", "unit": "celsius"}
    assert result.calls[1]["name"] == "get_time"
    assert json.loads(result.calls[1]["arguments"]) == {}
    assert result.finish == "tool_calls"
    assert result.usage is not None
    assert result.usage.prompt_tokens == 402 + 2048
    assert result.usage.cached_tokens == 2048
    assert result.usage.completion_tokens == 89


def test_stream_fixture_error_event_raises_after_earlier_chunks():
    splitter = SSESplitter()
    translator = StreamTranslator("m")
    chunks: list[bytes] = []
    with pytest.raises(UpstreamFailure) as caught:
        for event in splitter.feed(fixture("stream_overloaded.txt")):
            data = event_data(event)
            assert data is not None
            chunks += translator.feed(data)
    assert caught.value.kind == "http"
    assert caught.value.status == 529
    assert caught.value.error_type == "overloaded_error"
    assert caught.value.message == "Overloaded"
    assert b"Partial" in chunks[-1]


# --- over HTTP against the mock ---------------------------------------------------------------


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[MockServer]:
    mock = await start_mock_server(MockSettings(chunks=6, require_api_key=API_KEY))
    yield mock
    await mock.close()


@pytest.fixture(scope="module")
async def upstream() -> AsyncIterator[UpstreamClient]:
    client = UpstreamClient()
    await client.start()
    yield client
    await client.close()


@pytest.fixture
def adapter(server: MockServer, upstream: UpstreamClient) -> AnthropicAdapter:
    return adapter_for(server.base_url, upstream, forward_fields=("mock",))


async def complete(adapter: AnthropicAdapter, payload: dict[str, Any]) -> dict[str, Any]:
    request = adapter.encode_chat(payload, "claude-mock", stream=False)
    response = await adapter.send("chat", request, provider_model="claude-mock")
    result = adapter.parse_chat(await adapter.read_body(response), "public-model")
    body = json.loads(result.body)
    assert body["usage"]["prompt_tokens"] == result.usage.prompt_tokens
    return body


async def stream(adapter: AnthropicAdapter, payload: dict[str, Any]) -> list[bytes]:
    request = adapter.encode_chat(payload, "claude-mock", stream=True)
    response = await adapter.send("chat", request, provider_model="claude-mock", stream=True)
    events: list[bytes] = []
    async for group in adapter.stream_events(response, "public-model"):
        events += group
    return events


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "system", "content": "Be terse."}, {"role": "user", "content": text}]


async def test_completion_over_http_with_headers_and_usage(adapter, server):
    body = await complete(adapter, {"messages": user("hello there"), "seed": 3})
    assert body["model"] == "public-model"
    assert body["choices"][0]["message"]["content"] == reply_text("hello there", 6)
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["completion_tokens"] == 6
    assert body["usage"]["prompt_tokens"] == math.ceil(len("Be terse.hello there") / 4)

    recorded = server.last_request
    assert recorded is not None
    assert recorded["path"] == "/v1/messages"
    assert recorded["headers"]["anthropic-version"] == "2023-06-01"
    assert "x-api-key" not in recorded["headers"]
    assert recorded["body"]["system"] == "Be terse."
    assert recorded["body"]["max_tokens"] == DEFAULT_MAX_TOKENS
    assert "seed" not in recorded["body"]


async def test_stream_over_http_gives_openai_chunks_with_usage(adapter, server):
    events = await stream(
        adapter, {"messages": user("hello there"), "mock": {"tokens_per_chunk": 2}}
    )
    result = Accumulated(events)
    assert result.first_delta == {"role": "assistant", "content": ""}
    assert result.text == reply_text("hello there", 12)
    assert result.finish == "stop"
    assert result.usage is not None
    assert result.usage.completion_tokens == 12
    assert server.stats.streams_completed >= 1


async def test_a_stream_read_in_part_reports_the_input_tokens_it_was_told(adapter):
    request = adapter.encode_chat({"messages": user("hello there")}, "claude-mock", stream=True)
    response = await adapter.send("chat", request, provider_model="claude-mock", stream=True)
    events = adapter.stream_events(response, "public-model")
    assert events.reported_usage().prompt_tokens is None
    await anext(events)  # message_start carries the input tokens
    reported = events.reported_usage()
    assert reported.prompt_tokens == math.ceil(len("Be terse.hello there") / 4)
    response.close()


async def test_parallel_tool_calls_over_http_stream_into_valid_json(adapter):
    payload = {"messages": user("run these in parallel"), "tools": [WEATHER_TOOL, TIME_TOOL]}
    result = Accumulated(await stream(adapter, payload))
    assert result.finish == "tool_calls"
    assert sorted(result.calls) == [0, 1]
    assert [result.calls[i]["name"] for i in (0, 1)] == ["get_weather", "get_time"]
    assert json.loads(result.calls[0]["arguments"]) == {"city": "mock", "unit": "celsius"}
    assert json.loads(result.calls[1]["arguments"]) == {}
    assert result.calls[0]["id"] != result.calls[1]["id"]

    body = await complete(adapter, payload)
    message = body["choices"][0]["message"]
    assert message["content"] is None
    assert [call["function"]["name"] for call in message["tool_calls"]] == [
        "get_weather",
        "get_time",
    ]

    single = await complete(adapter, {**payload, "parallel_tool_calls": False})
    assert len(single["choices"][0]["message"]["tool_calls"]) == 1


async def test_named_tool_choice_and_stop_and_length_over_http(adapter):
    named = await complete(
        adapter,
        {
            "messages": user("hi"),
            "tools": [WEATHER_TOOL, TIME_TOOL],
            "tool_choice": {"type": "function", "function": {"name": "get_time"}},
        },
    )
    assert named["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "get_time"

    stopped = await complete(adapter, {"messages": user("alpha beta gamma"), "stop": ["gamma"]})
    assert stopped["choices"][0]["finish_reason"] == "stop"
    assert stopped["choices"][0]["message"]["content"] == "Echo: alpha beta "

    cut = await complete(adapter, {"messages": user("alpha beta gamma"), "max_tokens": 2})
    assert cut["choices"][0]["finish_reason"] == "length"
    assert cut["usage"]["completion_tokens"] == 2


async def test_prompt_cache_creation_then_read_over_http(adapter):
    long_system = "You are a meticulous assistant. " * 20
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": long_system, "cache_control": {"type": "ephemeral"}}
            ],
        },
        {"role": "assistant", "content": "Understood."},
        {"role": "user", "content": "first question"},
    ]
    first = await complete(adapter, {"messages": messages})
    second = await complete(adapter, {"messages": messages})
    assert first["usage"]["prompt_tokens"] == second["usage"]["prompt_tokens"]
    assert first["usage"]["prompt_tokens_details"]["cached_tokens"] == 0
    cached = second["usage"]["prompt_tokens_details"]["cached_tokens"]
    assert cached == math.ceil(len(long_system) / 4)


async def test_images_reach_the_mock_as_anthropic_blocks(adapter, server):
    content = [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL_PNG}"}},
    ]
    body = await complete(adapter, {"messages": [{"role": "user", "content": content}]})
    assert body["usage"]["prompt_tokens"] == math.ceil(len("what is this") / 4) + 85
    sent = server.last_request["body"]["messages"][0]["content"][1]
    assert sent["source"]["media_type"] == "image/png"


async def test_rate_limit_keeps_retry_after_and_the_providers_message(adapter):
    payload = {"messages": user("x"), "mock": {"error": 429, "retry_after": 2}}
    with pytest.raises(UpstreamFailure) as caught:
        await complete(adapter, payload)
    failure = caught.value
    assert (failure.kind, failure.status) == ("http", 429)
    assert failure.error_type == "rate_limit_error"
    assert failure.retry_after == "2"
    assert failure.retry_after_ms == "2000"
    assert "rate limit" in failure.message


async def test_overloaded_status_and_mid_stream_overload(adapter):
    with pytest.raises(UpstreamFailure) as caught:
        await complete(adapter, {"messages": user("x"), "mock": {"error": 529}})
    assert caught.value.status == 529
    assert caught.value.error_type == "overloaded_error"

    received: list[bytes] = []
    request = adapter.encode_chat(
        {"messages": user("x"), "mock": {"error": 529, "drop_after_chunks": 2}}, "c", stream=True
    )
    response = await adapter.send("chat", request, provider_model="c", stream=True)
    with pytest.raises(UpstreamFailure) as mid:
        async for group in adapter.stream_events(response, "m"):
            received += group
    assert mid.value.status == 529
    assert mid.value.error_type == "overloaded_error"
    texts = [text for event in received[1:] for _, text in read_chunk(event[6:]).contents]
    assert len(texts) == 2


async def test_validation_error_from_the_provider_is_a_400_with_its_message(server, upstream):
    leaky = adapter_for(server.base_url, upstream, forward_fields=("frequency_penalty",))
    with pytest.raises(UpstreamFailure) as caught:
        await complete(leaky, {"messages": user("x"), "frequency_penalty": 0.2})
    assert caught.value.status == 400
    assert caught.value.error_type == "invalid_request_error"
    assert caught.value.message == "frequency_penalty: Extra inputs are not permitted"


async def test_wrong_key_is_401_and_never_echoed(server, upstream):
    wrong = AnthropicAdapter(
        "claude", base_url=server.base_url, api_key="sk-ant-wrong-000000000", client=upstream
    )
    with pytest.raises(UpstreamFailure) as caught:
        await complete(wrong, {"messages": user("x")})
    assert caught.value.status == 401
    assert "sk-ant-wrong" not in str(caught.value)


async def test_a_dropped_stream_is_a_disconnect_not_a_clean_end(adapter):
    with pytest.raises(UpstreamFailure) as caught:
        await stream(adapter, {"messages": user("x"), "mock": {"drop_after_chunks": 1}})
    assert caught.value.kind == "disconnected"


async def test_a_malformed_answer_is_reported_as_malformed(adapter):
    with pytest.raises(UpstreamFailure) as caught:
        await complete(adapter, {"messages": user("x"), "mock": {"malformed": True}})
    assert caught.value.kind == "malformed"
    with pytest.raises(UpstreamFailure) as streamed:
        await stream(adapter, {"messages": user("x"), "mock": {"malformed": True}})
    assert streamed.value.kind == "malformed"


async def test_the_mock_answers_anthropic_errors_in_anthropic_shape(server):
    async with aiohttp.ClientSession() as session:
        async with session.post(
            server.base_url + "/messages",
            json={"model": "m", "messages": [{"role": "user", "content": "x"}]},
            headers={"x-api-key": API_KEY, "anthropic-version": "2023-06-01"},
        ) as response:
            assert response.status == 400
            document = msgspec.json.decode(await response.read())
        async with session.post(
            server.base_url + "/messages",
            json={"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
            headers={"x-api-key": API_KEY},
        ) as missing_version:
            assert missing_version.status == 400
    assert document["type"] == "error"
    assert document["error"] == {
        "type": "invalid_request_error",
        "message": "max_tokens: Field required (a positive integer)",
    }


async def test_missing_usage_is_unknown_not_zero(adapter):
    request = adapter.encode_chat(
        {"messages": user("x"), "mock": {"no_usage": True}}, "c", stream=False
    )
    response = await adapter.send("chat", request, provider_model="c")
    result = adapter.parse_chat(await adapter.read_body(response), "m")
    assert not result.usage.known
    assert "usage" not in json.loads(result.body)

    events = await stream(adapter, {"messages": user("x"), "mock": {"no_usage": True}})
    streamed = Accumulated(events)
    assert streamed.usage is not None
    assert not streamed.usage.known
    assert streamed.finish == "stop"

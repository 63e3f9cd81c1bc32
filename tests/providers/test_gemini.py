"""The Gemini adapter: request and answer translation, then real HTTP against the mock provider."""

from __future__ import annotations

import base64
import json
from array import array
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from providers.errors import UpstreamFailure
from providers.gemini import GeminiAdapter
from providers.gemini_request import UnsupportedRequest, chat_body, embeddings_body
from providers.gemini_response import StreamTranslator, parse_chat
from providers.gemini_schema import gemini_schema
from providers.mock_server import MockServer, MockSettings, reply_text, start_mock_server
from providers.openai_format import SSESplitter, StreamChunk, event_data, read_chunk
from providers.upstream import UpstreamClient

FIXTURES = Path(__file__).parent / "fixtures" / "gemini"
API_KEY = "AIzaSyD-gateway-test-key-0123456789"
MODEL = "gemini-2.0-flash"
HELLO = [{"role": "user", "content": "hello there"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather",
        "parameters": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "title": "Weather",
            "additionalProperties": False,
            "properties": {
                "city": {"type": "string", "minLength": 1},
                "unit": {"$ref": "#/$defs/unit"},
                "days": {"type": ["integer", "null"], "exclusiveMinimum": 0},
                "mode": {"const": "fast"},
                "when": {"type": "string", "format": "uri"},
            },
            "required": ["city", "unit"],
            "$defs": {"unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        },
    },
}
TIME_TOOL = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
}
REJECTED_KEYWORDS = {
    "additionalProperties",
    "$schema",
    "$ref",
    "$defs",
    "title",
    "exclusiveMinimum",
    "const",
}


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def all_keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from all_keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from all_keys(item)


def translate_stream(raw: bytes, model: str = "public") -> list[bytes]:
    splitter = SSESplitter()
    translator = StreamTranslator(model)
    events = []
    for event in [*splitter.feed(raw), *splitter.close()]:
        data = event_data(event)
        assert data is not None
        events += translator.feed(data)
    return events + translator.finish()


def read_events(events: list[bytes]) -> list[StreamChunk]:
    """Every chunk read as the gateway reads it; the stream must end with `[DONE]`."""
    assert events[-1] == b"data: [DONE]"
    chunks = []
    for event in events[:-1]:
        assert event.startswith(b"data: {") and not event.endswith(b"\n")
        data = event_data(event)
        assert data is not None
        chunks.append(read_chunk(data))
    return chunks


def payloads(events: list[bytes]) -> list[dict[str, Any]]:
    return [json.loads(event[6:]) for event in events[:-1]]


# --- requests -------------------------------------------------------------------------------


def test_messages_become_contents_with_system_instruction() -> None:
    body = chat_body(
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Use metric."}]},
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"},
                {"role": "user", "content": "weather?"},
            ]
        }
    )
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}, {"text": "Use metric."}]}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "hi"}]},
        {"role": "model", "parts": [{"text": "hello"}]},
        {"role": "user", "parts": [{"text": "weather?"}]},
    ]


def test_images_become_inline_data_or_file_data() -> None:
    body = chat_body(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "compare"},
                        {
                            "type": "image_url",
                            "image_url": {"url": "data:image/png;base64,iVBORw0K"},
                        },
                        {"type": "image_url", "image_url": {"url": "https://x.test/cat.webp?s=1"}},
                        {"type": "image_url", "image_url": {"url": "gs://bucket/scan"}},
                    ],
                }
            ]
        }
    )
    assert body["contents"][0]["parts"] == [
        {"text": "compare"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0K"}},
        {"fileData": {"mimeType": "image/webp", "fileUri": "https://x.test/cat.webp?s=1"}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "gs://bucket/scan"}},
    ]


def test_tool_calls_and_results_become_function_parts() -> None:
    body = chat_body(
        {
            "messages": [
                {"role": "user", "content": "weather in Paris and Lyon?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_a",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                        },
                        {
                            "id": "call_b",
                            "type": "function",
                            "function": {"name": "get_time", "arguments": ""},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "call_a", "content": '{"temp": 21}'},
                {"role": "tool", "tool_call_id": "call_b", "content": "noon"},
            ]
        }
    )
    model_turn, results = body["contents"][1:]
    assert model_turn == {
        "role": "model",
        "parts": [
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
            {"functionCall": {"name": "get_time", "args": {}}},
        ],
    }
    assert results == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
            {"functionResponse": {"name": "get_time", "response": {"output": "noon"}}},
        ],
    }


def test_tool_schemas_lose_keywords_gemini_rejects() -> None:
    body = chat_body({"messages": HELLO, "tools": [WEATHER_TOOL, TIME_TOOL]})
    declarations = body["tools"][0]["functionDeclarations"]
    assert not REJECTED_KEYWORDS & set(all_keys(declarations))
    weather, clock = declarations
    assert weather["description"] == "Current weather"
    properties = weather["parameters"]["properties"]
    assert properties["unit"] == {"type": "string", "enum": ["celsius", "fahrenheit"]}
    assert properties["days"] == {"type": "integer", "nullable": True}
    assert properties["mode"] == {"type": "string", "enum": ["fast"]}
    assert properties["when"] == {"type": "string"}
    assert properties["city"] == {"type": "string", "minLength": 1}
    assert weather["parameters"]["required"] == ["city", "unit"]
    assert clock == {"name": "get_time"}


def test_schema_rewrites_combinators_and_stops_recursion() -> None:
    schema = gemini_schema(
        {
            "$defs": {"node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/node"}}}},
            "allOf": [
                {"properties": {"a": {"oneOf": [{"type": "string"}, {"type": "integer"}]}}},
                {"properties": {"b": {"anyOf": [{"type": "number"}, {"type": "null"}]}}},
                {"required": ["a"]},
            ],
            "properties": {"tree": {"$ref": "#/$defs/node"}},
        }
    )
    assert schema["properties"]["a"] == {"anyOf": [{"type": "string"}, {"type": "integer"}]}
    assert schema["properties"]["b"] == {"type": "number", "nullable": True}
    assert schema["required"] == ["a"]
    tree = schema["properties"]["tree"]
    assert tree["properties"]["next"] == {"type": "object"}


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        (
            {"type": "function", "function": {"name": "get_time"}},
            {"mode": "ANY", "allowedFunctionNames": ["get_time"]},
        ),
    ],
)
def test_tool_choice_becomes_function_calling_config(choice: Any, config: Any) -> None:
    body = chat_body({"messages": HELLO, "tools": [TIME_TOOL], "tool_choice": choice})
    assert body["toolConfig"] == {"functionCallingConfig": config}


def test_generation_config_and_structured_output() -> None:
    body = chat_body(
        {
            "messages": HELLO,
            "temperature": 0.2,
            "top_p": 0.9,
            "max_tokens": 50,
            "max_completion_tokens": 70,
            "stop": "END",
            "n": 2,
            "seed": 7,
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": "answer",
                    "strict": True,
                    "schema": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {"answer": {"type": "string"}},
                        "required": ["answer"],
                    },
                },
            },
            "stream_options": {"include_usage": True},
            "user": "someone",
        }
    )
    assert body["generationConfig"] == {
        "temperature": 0.2,
        "topP": 0.9,
        "candidateCount": 2,
        "seed": 7,
        "maxOutputTokens": 70,
        "stopSequences": ["END"],
        "responseMimeType": "application/json",
        "responseSchema": {
            "type": "object",
            "properties": {"answer": {"type": "string"}},
            "required": ["answer"],
        },
    }
    assert set(body) == {"contents", "generationConfig"}
    plain_json = chat_body({"messages": HELLO, "response_format": {"type": "json_object"}})
    assert plain_json["generationConfig"] == {"responseMimeType": "application/json"}


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"messages": [{"role": "critic", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "system", "content": "only a system"}]}, "messages"),
        (
            {"messages": [*HELLO, {"role": "tool", "tool_call_id": "call_zz", "content": "1"}]},
            "messages[1].tool_call_id",
        ),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "[1"}}],
                    }
                ]
            },
            "messages[0].tool_calls[0].function.arguments",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "video", "video": "x"}]}]},
            "messages[0].content[0]",
        ),
        ({"messages": HELLO, "tools": [{"type": "retrieval"}]}, "tools[0]"),
        ({"messages": HELLO, "tool_choice": "sometimes"}, "tool_choice"),
    ],
)
def test_requests_gemini_cannot_express_are_400s(payload: dict[str, Any], param: str) -> None:
    with pytest.raises(UnsupportedRequest) as caught:
        chat_body(payload)
    assert caught.value.status == 400
    assert caught.value.param == param


def test_embeddings_request_is_one_batch() -> None:
    body = embeddings_body({"input": ["a", "b"], "dimensions": 8}, "text-embedding-004")
    assert body == {
        "requests": [
            {
                "model": "models/text-embedding-004",
                "content": {"parts": [{"text": text}]},
                "outputDimensionality": 8,
            }
            for text in ("a", "b")
        ]
    }
    with pytest.raises(UnsupportedRequest, match="token arrays"):
        embeddings_body({"input": [[1, 2, 3]]}, "text-embedding-004")


# --- answers --------------------------------------------------------------------------------


def test_text_answer_skips_thoughts_and_counts_them_as_completion() -> None:
    result = parse_chat(fixture("text_with_thoughts.json"), "public-model")
    body = json.loads(result.body)
    assert body["model"] == "public-model"
    assert body["object"] == "chat.completion"
    message = body["choices"][0]["message"]
    assert message["content"] == "The sky looks blue because air scatters short wavelengths more."
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"] == {
        "prompt_tokens": 1200,
        "completion_tokens": 54,
        "total_tokens": 1254,
        "prompt_tokens_details": {"cached_tokens": 1024},
        "completion_tokens_details": {"reasoning_tokens": 40},
    }
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (1200, 54)
    assert (result.usage.cached_tokens, result.usage.total_tokens) == (1024, 1254)
    assert result.response_model == "gemini-2.5-flash"


def test_parallel_function_calls_become_tool_calls() -> None:
    result = parse_chat(fixture("parallel_function_calls.json"), "m")
    choice = json.loads(result.body)["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    calls = choice["message"]["tool_calls"]
    assert [json.loads(c["function"]["arguments"]) for c in calls] == [
        {"city": "Paris", "unit": "celsius"},
        {"city": "Lyon", "unit": "celsius"},
    ]
    assert all(c["id"].startswith("call_") and c["type"] == "function" for c in calls)
    assert calls[0]["id"] != calls[1]["id"]
    assert result.finish_reasons == ["tool_calls"]


def test_function_call_without_text_or_args() -> None:
    message = json.loads(parse_chat(fixture("function_call_no_text.json"), "m").body)["choices"][0][
        "message"
    ]
    assert message["content"] is None
    assert message["tool_calls"][0]["function"] == {"name": "list_files", "arguments": "{}"}


@pytest.mark.parametrize("name", ["prompt_blocked.json", "candidate_safety.json"])
def test_safety_blocks_are_content_filter_with_null_content(name: str) -> None:
    result = parse_chat(fixture(name), "m")
    body = json.loads(result.body)
    assert [c["finish_reason"] for c in body["choices"]] == ["content_filter"]
    assert body["choices"][0]["message"]["content"] is None
    assert result.usage.prompt_tokens in (9, 12)
    assert result.usage.completion_tokens == 0


def test_max_tokens_is_length_for_every_candidate() -> None:
    body = json.loads(parse_chat(fixture("max_tokens_two_candidates.json"), "m").body)
    assert [(c["index"], c["finish_reason"]) for c in body["choices"]] == [
        (0, "length"),
        (1, "length"),
    ]
    assert [c["message"]["content"] for c in body["choices"]] == ["One two", "Three four"]


@pytest.mark.parametrize("raw", [b'{"candidates": [{"conte', b"[]", b'{"candidates": []}'])
def test_answers_that_are_not_gemini_are_malformed(raw: bytes) -> None:
    with pytest.raises(UpstreamFailure) as caught:
        parse_chat(raw, "m")
    assert caught.value.kind == "malformed"


def test_stream_of_text_reads_as_openai_chunks() -> None:
    events = translate_stream(fixture("stream_text.sse"))
    chunks = read_events(events)
    documents = payloads(events)
    assert documents[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert "".join(text for chunk in chunks for _, text in chunk.contents) == "The sky is blue."
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    assert chunks[-1].usage_only
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (1200, 45)
    assert chunks[-1].usage.cached_tokens == 1024
    assert {d["model"] for d in documents} == {"public"}
    assert len({d["id"] for d in documents}) == 1


def test_stream_of_parallel_calls_sends_each_call_whole() -> None:
    events = translate_stream(fixture("stream_parallel_calls.sse"))
    chunks = read_events(events)
    deltas = [d["choices"][0]["delta"] for d in payloads(events) if d["choices"]]
    calls = [call for delta in deltas for call in delta.get("tool_calls", [])]
    assert [(c["index"], c["function"]["name"]) for c in calls] == [
        (0, "get_weather"),
        (1, "get_time"),
    ]
    assert json.loads(calls[1]["function"]["arguments"]) == {"zone": "Europe/Paris"}
    assert all(c["id"].startswith("call_") and c["type"] == "function" for c in calls)
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["tool_calls"]
    assert any(c.has_output for c in chunks)


@pytest.mark.parametrize("name", ["stream_prompt_blocked.sse", "stream_candidate_safety.sse"])
def test_stream_safety_blocks_finish_with_content_filter(name: str) -> None:
    chunks = read_events(translate_stream(fixture(name)))
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["content_filter"]
    assert chunks[-1].usage_only


def test_stream_that_ends_without_finish_reason_is_a_disconnect() -> None:
    truncated = fixture("stream_text.sse").split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    with pytest.raises(UpstreamFailure) as caught:
        translate_stream(truncated)
    assert caught.value.kind == "disconnected"


def test_error_event_inside_a_stream_is_an_upstream_failure() -> None:
    translator = StreamTranslator("m")
    with pytest.raises(UpstreamFailure) as caught:
        translator.feed(
            b'{"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}'
        )
    assert (caught.value.status, caught.value.error_code) == (503, "UNAVAILABLE")


# --- over HTTP, against the mock provider ---------------------------------------------------


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
def adapter(server: MockServer, upstream: UpstreamClient) -> GeminiAdapter:
    return GeminiAdapter(
        "gemini-mock", base_url=f"{server.url}/v1beta", api_key=API_KEY, client=upstream
    )


async def chat(adapter: GeminiAdapter, payload: dict[str, Any]) -> dict[str, Any]:
    response = await adapter.send(
        "chat", adapter.encode_chat(payload, MODEL, stream=False), provider_model=MODEL
    )
    result = adapter.parse_chat(await adapter.read_body(response), "public")
    return {"body": json.loads(result.body), "usage": result.usage}


async def stream(adapter: GeminiAdapter, payload: dict[str, Any]) -> list[bytes]:
    response = await adapter.send(
        "chat", adapter.encode_chat(payload, MODEL, stream=True), provider_model=MODEL, stream=True
    )
    events: list[bytes] = []
    async for group in adapter.stream_events(response, "public"):
        events += group
    return events


async def test_a_stream_read_in_part_reports_the_running_usage(adapter: GeminiAdapter) -> None:
    payload = {"messages": HELLO, "mock": {"tokens_per_chunk": 1, "chunk_interval_ms": 20}}
    response = await adapter.send(
        "chat", adapter.encode_chat(payload, MODEL, stream=True), provider_model=MODEL, stream=True
    )
    events = adapter.stream_events(response, "public")
    assert events.reported_usage().prompt_tokens is None
    await anext(events)
    await anext(events)
    reported = events.reported_usage()
    assert reported.prompt_tokens is not None and reported.prompt_tokens > 0
    assert reported.completion_tokens is not None and 1 <= reported.completion_tokens < 6
    response.close()


async def test_chat_round_trip(adapter: GeminiAdapter, server: MockServer) -> None:
    answer = await chat(adapter, {"messages": [{"role": "system", "content": "hi"}, *HELLO]})
    choice = answer["body"]["choices"][0]
    assert choice["message"]["content"] == reply_text("hello there", 6)
    assert choice["finish_reason"] == "stop"
    assert answer["usage"].completion_tokens == 6
    recorded = server.last_request
    assert recorded is not None
    assert recorded["path"] == f"/v1beta/models/{MODEL}:generateContent"
    assert recorded["headers"]["x-goog-api-key"] == API_KEY
    assert recorded["body"]["systemInstruction"] == {"parts": [{"text": "hi"}]}
    url = adapter.url("chat", MODEL, stream=True)
    assert API_KEY not in str(url) and url.target.endswith(b":streamGenerateContent?alt=sse")
    assert adapter.url("chat", MODEL, stream=True) is url


async def test_stream_round_trip(adapter: GeminiAdapter) -> None:
    payload = {"messages": HELLO, "mock": {"thoughts_tokens": 5, "cached_tokens": 2}}
    chunks = read_events(await stream(adapter, payload))
    text = "".join(t for chunk in chunks for _, t in chunk.contents)
    assert text == reply_text("hello there", 6)
    assert chunks[0].contents == [] and not chunks[0].has_output
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    usage = chunks[-1].usage
    assert chunks[-1].usage_only and usage is not None
    assert (usage.completion_tokens, usage.cached_tokens) == (6 + 5, 2)


async def test_parallel_tool_calls_over_http(adapter: GeminiAdapter) -> None:
    payload = {"messages": HELLO, "tools": [WEATHER_TOOL, TIME_TOOL], "mock": {}}
    payload["mock"] = {"parallel_tool_calls": True}
    answer = await chat(adapter, payload)
    calls = answer["body"]["choices"][0]["message"]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["get_weather", "get_time"]
    assert json.loads(calls[0]["function"]["arguments"]) == {"city": "mock", "unit": "celsius"}
    assert answer["body"]["choices"][0]["finish_reason"] == "tool_calls"

    keyword = {"messages": [{"role": "user", "content": "parallel"}], "tools": [WEATHER_TOOL]}
    events = await stream(adapter, keyword)
    read_events(events)
    deltas = [d["choices"][0]["delta"] for d in payloads(events) if d["choices"]]
    indexes = [c["index"] for d in deltas for c in d.get("tool_calls", [])]
    assert indexes == [0, 1]


@pytest.mark.parametrize("kind", ["prompt", "candidate"])
async def test_safety_blocks_over_http(adapter: GeminiAdapter, kind: str) -> None:
    payload = {"messages": HELLO, "mock": {"safety_block": kind}}
    answer = await chat(adapter, payload)
    assert answer["body"]["choices"][0]["finish_reason"] == "content_filter"
    assert answer["body"]["choices"][0]["message"]["content"] is None
    chunks = read_events(await stream(adapter, payload))
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["content_filter"]


async def test_embeddings_over_http(adapter: GeminiAdapter, server: MockServer) -> None:
    payload = {"model": "e", "input": ["one", "two"], "dimensions": 4}
    body = adapter.encode_embeddings(payload, "text-embedding-004")
    response = await adapter.send("embeddings", body, provider_model="text-embedding-004")
    result = adapter.parse_embeddings(await adapter.read_body(response), "public-embed")
    floats = json.loads(result.body)
    assert [item["index"] for item in floats["data"]] == [0, 1]
    assert all(len(item["embedding"]) == 4 for item in floats["data"])
    assert floats["usage"] == {"prompt_tokens": None, "total_tokens": None}
    assert not result.usage.known
    assert server.last_request is not None
    assert server.last_request["path"] == "/v1beta/models/text-embedding-004:batchEmbedContents"

    body = adapter.encode_embeddings({**payload, "encoding_format": "base64"}, "text-embedding-004")
    response = await adapter.send("embeddings", body, provider_model="text-embedding-004")
    raw = await adapter.read_body(response)
    packed = json.loads(adapter.parse_embeddings(raw, "e", encoding_format="base64").body)
    first = array("f", base64.b64decode(packed["data"][0]["embedding"]))
    assert first.tolist() == pytest.approx(floats["data"][0]["embedding"])


async def test_embedding_fixture_honours_explicit_format(adapter: GeminiAdapter) -> None:
    raw = fixture("embeddings.json")
    packed = json.loads(adapter.parse_embeddings(raw, "e", encoding_format="base64").body)
    assert array("f", base64.b64decode(packed["data"][0]["embedding"])).tolist() == [
        0.25,
        -0.5,
        0.125,
    ]
    plain = json.loads(adapter.parse_embeddings(raw, "e", encoding_format="float").body)
    assert plain["data"][1]["embedding"] == [1.0, 0.0, -1.0]


@pytest.mark.parametrize(
    ("status", "code"), [(429, "RESOURCE_EXHAUSTED"), (400, "INVALID_ARGUMENT"), (500, "INTERNAL")]
)
async def test_errors_keep_status_message_and_retry_after(
    adapter: GeminiAdapter, status: int, code: str
) -> None:
    payload = {"messages": HELLO, "mock": {"error": status, "retry_after": 3}}
    with pytest.raises(UpstreamFailure) as caught:
        await chat(adapter, payload)
    failure = caught.value
    assert (failure.kind, failure.status, failure.error_code) == ("http", status, code)
    assert failure.message and not failure.message.startswith("{")
    assert (failure.retry_after, failure.retry_after_ms) == ("3", "3000")


async def test_wrong_key_is_401_without_the_key(
    server: MockServer, upstream: UpstreamClient
) -> None:
    wrong = "AIzaSyWRONG-key-that-must-not-leak-00000"
    adapter = GeminiAdapter("g", base_url=f"{server.url}/v1beta", api_key=wrong, client=upstream)
    with pytest.raises(UpstreamFailure) as caught:
        await chat(adapter, {"messages": HELLO})
    assert caught.value.status == 401
    assert wrong not in str(caught.value) and wrong not in repr(vars(caught.value))


async def test_broken_streams_fail_clearly(adapter: GeminiAdapter) -> None:
    with pytest.raises(UpstreamFailure) as dropped:
        await stream(adapter, {"messages": HELLO, "mock": {"drop_after_chunks": 2}})
    assert dropped.value.kind == "disconnected"
    with pytest.raises(UpstreamFailure) as malformed:
        await stream(adapter, {"messages": HELLO, "mock": {"malformed": True}})
    assert malformed.value.kind == "malformed"


async def test_timeouts_are_upstream_timeouts(server: MockServer, upstream: UpstreamClient) -> None:
    adapter = GeminiAdapter(
        "g",
        base_url=f"{server.url}/v1beta",
        api_key=API_KEY,
        client=upstream,
        first_byte_timeout=0.2,
    )
    with pytest.raises(UpstreamFailure) as caught:
        await chat(adapter, {"messages": HELLO, "mock": {"hang": True}})
    assert caught.value.kind == "timeout"


async def test_recorded_error_body_gives_retry_delay(upstream: UpstreamClient) -> None:
    """Gemini's 429 names its wait in a RetryInfo detail, not a header."""

    async def quota(request: web.Request) -> web.Response:
        return web.Response(
            status=429, body=fixture("error_429.json"), content_type="application/json"
        )

    async def recorded_stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        raw = fixture("stream_parallel_calls.sse")
        for start in range(0, len(raw), 7):
            await response.write(raw[start : start + 7])
        return response

    app = web.Application()
    app.router.add_post("/v1beta/models/quota:generateContent", quota)
    app.router.add_post("/v1beta/models/recorded:streamGenerateContent", recorded_stream)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    adapter = GeminiAdapter(
        "g", base_url=f"http://127.0.0.1:{port}/v1beta", api_key=API_KEY, client=upstream
    )
    try:
        with pytest.raises(UpstreamFailure) as caught:
            await adapter.send("chat", b"{}", provider_model="quota")
        assert caught.value.retry_after == "37"
        assert caught.value.error_code == "RESOURCE_EXHAUSTED"
        assert caught.value.message.startswith("You exceeded your current quota")

        response = await adapter.send("chat", b"{}", provider_model="recorded", stream=True)
        events: list[bytes] = []
        async for group in adapter.stream_events(response, "public"):
            events += group
        names = [
            call["function"]["name"]
            for document in payloads(events)
            for choice in document["choices"]
            for call in choice["delta"].get("tool_calls", [])
        ]
        assert names == ["get_weather", "get_time"]
    finally:
        await runner.cleanup()

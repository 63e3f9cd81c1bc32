"""Replaying cached chat completions as SSE, read back with the official openai SDK, and
accumulating streams into the completion they stand for."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import msgspec
import openai
import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessageFunctionToolCall,
)

from gateway.cache.response_cache import CachedResponse
from gateway.cache.stream import PIECE_CHARS, StreamAccumulator, replay_events, split_text

LONG_TEXT = (
    "The capital of France is Paris. It sits on the Seine, has about two million people, "
    "and its name comes from the Parisii — a Gaulish tribe. Ça va? 東京は日本の首都です。"
)


def completion(*choices: dict[str, Any], usage: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-abc123",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "fast",
        "system_fingerprint": "fp_44709d6fcb",
        "choices": [
            {"index": index, "logprobs": None, **choice} for index, choice in enumerate(choices)
        ],
    }
    if usage:
        body["usage"] = {
            "prompt_tokens": 19,
            "completion_tokens": 41,
            "total_tokens": 60,
            "prompt_tokens_details": {"cached_tokens": 0},
        }
    return body


def text_choice(text: str = LONG_TEXT, finish: str = "stop") -> dict[str, Any]:
    return {
        "message": {"role": "assistant", "content": text, "refusal": None},
        "finish_reason": finish,
    }


TOOL_CHOICE: dict[str, Any] = {
    "message": {
        "role": "assistant",
        "content": None,
        "refusal": None,
        "tool_calls": [
            {
                "id": "call_weather",
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "arguments": '{"city": "Paris", "unit": "celsius", "days": 3}',
                },
            },
            {
                "id": "call_time",
                "type": "function",
                "function": {"name": "get_time", "arguments": '{"timezone": "Europe/Paris"}'},
            },
        ],
    },
    "finish_reason": "tool_calls",
}


def cached(body: dict[str, Any]) -> CachedResponse:
    return CachedResponse(
        body=msgspec.json.encode(body),
        provider="openai",
        provider_model="gpt-4o-mini-2024-07-18",
        prompt_tokens=19,
        completion_tokens=41,
        cached_tokens=0,
        created_at=1_700_000_000.0,
    )


def payloads(events: list[bytes]) -> list[bytes]:
    """The `data:` payloads of complete SSE events, checking their framing on the way."""
    assert events[-1] == b"data: [DONE]\n\n"
    found = []
    for event in events[:-1]:
        assert event.startswith(b"data: ") and event.endswith(b"\n\n")
        assert event.count(b"\n") == 2
        found.append(event[len(b"data: ") : -2])
    return found


def read_back(events: list[bytes]) -> tuple[list[ChatCompletionChunk], Any]:
    """Each chunk through the SDK's types, and the completion its own accumulator builds."""
    state = ChatCompletionStreamState()
    chunks = []
    for data in payloads(events):
        chunk = ChatCompletionChunk.model_validate_json(data)
        chunks.append(chunk)
        state.handle_chunk(chunk)
    return chunks, state.current_completion_snapshot


# --- split_text -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [LONG_TEXT, "", "short", "   leading and trailing   ", "x" * 95, "a\n\nb\tc " * 20],
)
def test_split_text_joins_back_exactly_in_bounded_pieces(text: str) -> None:
    pieces = split_text(text)
    assert "".join(pieces) == text
    assert all(pieces)
    assert all(len(piece) < 2 * PIECE_CHARS for piece in pieces)
    if len(text) > 2 * PIECE_CHARS:
        assert len(pieces) >= len(text) // (2 * PIECE_CHARS)


def test_split_text_cuts_at_word_ends() -> None:
    pieces = split_text("alpha beta gamma delta epsilon zeta eta theta iota kappa")
    assert all(piece.endswith(" ") for piece in pieces[:-1])


# --- replay -----------------------------------------------------------------------------------


def test_a_replayed_answer_reads_back_as_the_original_message() -> None:
    body = completion(text_choice())
    events = replay_events(cached(body), model="fast", include_usage=False)

    chunks, final = read_back(events)

    assert len(chunks) >= 2 + len(LONG_TEXT) // (2 * PIECE_CHARS)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(chunk.choices[0].finish_reason is None for chunk in chunks[:-1])
    assert {(c.id, c.created, c.model, c.object) for c in chunks} == {
        ("chatcmpl-abc123", 1_700_000_000, "fast", "chat.completion.chunk")
    }
    assert all(c.system_fingerprint == "fp_44709d6fcb" for c in chunks)
    assert all(c.usage is None for c in chunks)
    assert final.choices[0].message.content == LONG_TEXT
    assert final.choices[0].finish_reason == "stop"
    assert final.usage is None


def test_the_replay_uses_the_model_it_is_given() -> None:
    events = replay_events(cached(completion(text_choice())), model="alias", include_usage=False)
    chunks, _ = read_back(events)
    assert {chunk.model for chunk in chunks} == {"alias"}


def test_usage_comes_last_when_asked() -> None:
    events = replay_events(cached(completion(text_choice())), model="fast", include_usage=True)

    chunks, final = read_back(events)

    *answer, last = chunks
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (19, 41)
    assert last.usage.total_tokens == 60
    assert all(chunk.usage is None and chunk.choices for chunk in answer)
    assert b'"usage":null' in events[0]
    assert final.usage is not None and final.usage.total_tokens == 60


def test_usage_is_rebuilt_from_the_entry_when_the_body_has_none() -> None:
    events = replay_events(
        cached(completion(text_choice(), usage=False)), model="fast", include_usage=True
    )
    chunks, _ = read_back(events)
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 60


def test_tool_calls_replay_as_deltas() -> None:
    body = completion(TOOL_CHOICE)
    events = replay_events(cached(body), model="fast", include_usage=False)

    chunks, final = read_back(events)

    heads = [
        call
        for chunk in chunks
        for call in chunk.choices[0].delta.tool_calls or []
        if call.id is not None
    ]
    assert [(h.index, h.id, h.function and h.function.name) for h in heads] == [
        (0, "call_weather", "get_weather"),
        (1, "call_time", "get_time"),
    ]
    argument_deltas = [
        call
        for chunk in chunks
        for call in chunk.choices[0].delta.tool_calls or []
        if call.id is None and call.function is not None and call.function.arguments
    ]
    assert len(argument_deltas) > 2
    message = final.choices[0].message
    assert message.content is None
    assert [
        (call.id, call.function.name, json.loads(call.function.arguments))
        for call in message.tool_calls or []
    ] == [
        ("call_weather", "get_weather", {"city": "Paris", "unit": "celsius", "days": 3}),
        ("call_time", "get_time", {"timezone": "Europe/Paris"}),
    ]
    assert final.choices[0].finish_reason == "tool_calls"


def test_n_equals_two_keeps_each_choice_apart() -> None:
    body = completion(text_choice(LONG_TEXT), text_choice("Paris.", finish="length"))
    events = replay_events(cached(body), model="fast", include_usage=True)

    chunks, final = read_back(events)

    assert all(len(chunk.choices) <= 1 for chunk in chunks)
    assert {chunk.choices[0].index for chunk in chunks if chunk.choices} == {0, 1}
    assert [(c.index, c.message.content, c.finish_reason) for c in final.choices] == [
        (0, LONG_TEXT, "stop"),
        (1, "Paris.", "length"),
    ]


def test_a_refusal_replays() -> None:
    refusal = "I'm sorry, I can't help with that request, whatever it is."
    choice = {
        "message": {"role": "assistant", "content": None, "refusal": refusal},
        "finish_reason": "stop",
    }
    _, final = read_back(replay_events(cached(completion(choice)), model="m", include_usage=False))
    assert final.choices[0].message.refusal == refusal
    assert final.choices[0].message.content is None


def test_a_body_that_is_not_a_chat_completion_is_refused() -> None:
    embedding = CachedResponse(
        body=b'{"object": "list", "data": []}', provider="p", provider_model="m"
    )
    with pytest.raises(ValueError, match="not a chat completion"):
        replay_events(embedding, model="m", include_usage=False)


def test_the_sdk_client_streams_a_replay_over_http() -> None:
    body = completion(text_choice(), TOOL_CHOICE)
    events = replay_events(cached(body), model="fast", include_usage=True)

    def serve(request: httpx2.Request) -> httpx2.Response:
        sent = json.loads(request.content)
        assert sent["stream"] is True
        return httpx2.Response(
            200, headers={"content-type": "text/event-stream"}, content=b"".join(events)
        )

    client = openai.OpenAI(
        api_key="sk-test",
        base_url="http://gateway.test/v1",
        http_client=httpx2.Client(transport=httpx2.MockTransport(serve)),
    )
    stream = client.chat.completions.create(
        model="fast",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    texts: dict[int, str] = {}
    usage = None
    for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")

    assert texts == {0: LONG_TEXT, 1: ""}
    assert usage is not None and usage.total_tokens == 60


# --- accumulate -------------------------------------------------------------------------------


def openai_stream(*, usage: bool = True) -> list[bytes]:
    """A stream the way OpenAI sends one: role chunk, content chunks, finish, usage."""
    envelope = {
        "id": "chatcmpl-xyz",
        "object": "chat.completion.chunk",
        "created": 1_700_000_001,
        "model": "fast",
        "system_fingerprint": "fp_1",
    }

    def chunk(delta: dict[str, Any], finish: str | None = None, index: int = 0) -> bytes:
        data: dict[str, Any] = {
            **envelope,
            "choices": [
                {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
            ],
        }
        if usage:
            data["usage"] = None
        return msgspec.json.encode(data)

    events = [chunk({"role": "assistant", "content": "", "refusal": None})]
    events += [chunk({"content": piece}) for piece in ("Hello", ",", " world", "!")]
    events.append(chunk({}, "stop"))
    if usage:
        events.append(
            msgspec.json.encode(
                {
                    **envelope,
                    "choices": [],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9},
                }
            )
        )
    return events


def accumulate(events: list[bytes]) -> StreamAccumulator:
    accumulator = StreamAccumulator()
    for data in events:
        accumulator.feed(data)
    return accumulator


def test_a_finished_stream_becomes_its_completion() -> None:
    accumulator = accumulate(openai_stream())
    assert accumulator.finished

    body = accumulator.result()

    assert body is not None
    parsed = ChatCompletion.model_validate_json(body)
    assert parsed.id == "chatcmpl-xyz" and parsed.object == "chat.completion"
    assert parsed.created == 1_700_000_001 and parsed.model == "fast"
    assert parsed.system_fingerprint == "fp_1"
    assert parsed.choices[0].message.content == "Hello, world!"
    assert parsed.choices[0].message.role == "assistant"
    assert parsed.choices[0].finish_reason == "stop"
    assert parsed.usage is not None and parsed.usage.total_tokens == 9
    assert accumulator.usage == {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}


def test_a_stream_without_usage_gives_a_completion_without_usage() -> None:
    body = accumulate(openai_stream(usage=False)).result()
    assert body is not None and "usage" not in json.loads(body)


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda events: events[:-2], id="no finish reason"),
        pytest.param(lambda events: [*events[:3], b'{"choices": [{"inde'], id="malformed"),
        pytest.param(
            lambda events: [*events[:3], b'{"error": {"message": "upstream broke"}}'],
            id="error event",
        ),
        pytest.param(lambda events: [*events[:3], b"[1, 2]"], id="not an object"),
        pytest.param(lambda events: [], id="empty"),
        pytest.param(lambda events: [events[-1]], id="usage only"),
    ],
)
def test_an_unfinished_or_broken_stream_gives_nothing(spoil: Any) -> None:
    accumulator = accumulate(spoil(openai_stream()))
    assert accumulator.result() is None
    assert not accumulator.finished


def test_a_broken_stream_stays_broken() -> None:
    events = openai_stream()
    accumulator = accumulate([events[0], b"not json", *events[1:]])
    assert accumulator.result() is None


def test_a_stream_over_the_byte_limit_is_abandoned() -> None:
    events = openai_stream()
    accumulator = StreamAccumulator(max_bytes=sum(map(len, events)) - 1)
    for data in events:
        accumulator.feed(data)
    assert accumulator.result() is None
    roomy = StreamAccumulator(max_bytes=sum(map(len, events)))
    for data in events:
        roomy.feed(data)
    assert roomy.result() is not None


def test_interleaved_tool_call_deltas_merge_by_index() -> None:
    envelope = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "fast"}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return msgspec.json.encode({**envelope, "choices": [choice]})

    def call(index: int, **fields: Any) -> dict[str, Any]:
        return {"tool_calls": [{"index": index, **fields}]}

    events = [
        chunk({"role": "assistant", "content": None}),
        chunk(call(0, id="call_a", type="function", function={"name": "a", "arguments": ""})),
        chunk(call(1, id="call_b", type="function", function={"name": "b", "arguments": ""})),
        chunk(call(0, function={"arguments": '{"x": '})),
        chunk(call(1, function={"arguments": '{"y": 2}'})),
        chunk(call(0, function={"arguments": "1}"})),
        chunk({}, "tool_calls"),
    ]

    body = accumulate(events).result()

    assert body is not None
    message = ChatCompletion.model_validate_json(body).choices[0].message
    assert message.content is None
    calls = message.tool_calls or []
    assert all(isinstance(c, ChatCompletionMessageFunctionToolCall) for c in calls)
    assert [
        (c.id, c.type, c.function.name, c.function.arguments)
        for c in calls
        if isinstance(c, ChatCompletionMessageFunctionToolCall)
    ] == [
        ("call_a", "function", "a", '{"x": 1}'),
        ("call_b", "function", "b", '{"y": 2}'),
    ]
    assert all(
        "index" not in call for call in json.loads(body)["choices"][0]["message"]["tool_calls"]
    )


def test_an_empty_opening_envelope_does_not_hide_the_real_one() -> None:
    opening = b'{"id": "", "object": "", "created": 0, "model": "", "choices": []}'
    body = accumulate([opening, *openai_stream()]).result()
    assert body is not None
    parsed = json.loads(body)
    assert (parsed["id"], parsed["created"], parsed["model"]) == (
        "chatcmpl-xyz",
        1_700_000_001,
        "fast",
    )


# --- round trips ------------------------------------------------------------------------------


LOGPROBS = {
    "content": [
        {"token": "Paris", "logprob": -0.01, "bytes": [80, 97, 114, 105, 115], "top_logprobs": []},
        {"token": ".", "logprob": -0.2, "bytes": [46], "top_logprobs": []},
    ],
    "refusal": None,
}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(completion(text_choice()), id="text"),
        pytest.param(completion(TOOL_CHOICE), id="tool calls"),
        pytest.param(completion(text_choice(), text_choice("Lyon.", "length")), id="n=2"),
        pytest.param(completion(text_choice(""), usage=False), id="empty answer"),
        pytest.param(completion({**text_choice("Paris."), "logprobs": LOGPROBS}), id="logprobs"),
        pytest.param(
            completion(
                {
                    "message": {
                        "role": "assistant",
                        "content": "See the source.",
                        "refusal": None,
                        "annotations": [{"type": "url_citation", "url_citation": {"url": "u"}}],
                    },
                    "finish_reason": "stop",
                }
            ),
            id="extra message field",
        ),
        pytest.param(
            completion(
                {
                    "message": {
                        "role": "assistant",
                        "content": None,
                        "function_call": {"name": "legacy", "arguments": '{"a": "long value"}'},
                    },
                    "finish_reason": "function_call",
                }
            ),
            id="legacy function call",
        ),
    ],
)
def test_replay_then_accumulate_gives_back_the_stored_body(body: dict[str, Any]) -> None:
    events = replay_events(cached(body), model="fast", include_usage="usage" in body)

    rebuilt = accumulate(payloads(events)).result()

    assert rebuilt is not None
    restored = json.loads(rebuilt)
    expected = json.loads(json.dumps(body))
    for choice in expected["choices"]:
        choice["message"].setdefault("refusal", None)
    assert restored == expected
    read_back(events)  # and the SDK accepts every chunk


def test_accumulate_then_replay_then_accumulate_is_stable() -> None:
    first = accumulate(openai_stream()).result()
    assert first is not None
    entry = CachedResponse(body=first, provider="openai", provider_model="m")

    second = accumulate(payloads(replay_events(entry, model="fast", include_usage=True))).result()

    assert second is not None and json.loads(second) == json.loads(first)

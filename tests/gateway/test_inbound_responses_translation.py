"""Responses API requests as chat requests, and chat answers (whole and streamed) as responses."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from gateway.errors import GatewayError
from gateway.inbound.responses_answer import answer_to_response
from gateway.inbound.responses_request import translate_request
from gateway.inbound.responses_stream import ResponsesStream


def _refused(payload: dict[str, Any], param: str) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        translate_request(payload, [])
    assert caught.value.status == 400
    assert caught.value.param == param
    return caught.value


def test_string_input_and_instructions() -> None:
    request = translate_request(
        {"model": "m", "input": "hi", "instructions": "be brief", "max_output_tokens": 5}, []
    )
    assert request.chat["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
    ]
    assert request.chat["max_completion_tokens"] == 5
    assert request.chat["stream"] is False
    assert "input" not in request.chat and "instructions" not in request.chat
    assert request.store is True
    assert request.input_items == [{"type": "message", "role": "user", "content": "hi"}]


def test_items_images_function_calls_and_outputs() -> None:
    items = [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "what is this"},
                {"type": "input_image", "image_url": "data:image/png;base64,AA", "detail": "low"},
            ],
        },
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "let me look", "annotations": []}],
        },
        {"type": "function_call", "call_id": "c1", "name": "look", "arguments": '{"a":1}'},
        {"type": "function_call", "call_id": "c2", "name": "look", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "a cat"},
        {
            "type": "function_call_output",
            "call_id": "c2",
            "output": [{"type": "input_text", "text": "x"}],
        },
        {"type": "reasoning", "id": "rs_1", "summary": []},
    ]
    chat = translate_request({"model": "m", "input": items}, []).chat
    assert chat["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this"},
                {
                    "type": "image_url",
                    "image_url": {"url": "data:image/png;base64,AA", "detail": "low"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": "let me look",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "look", "arguments": '{"a":1}'},
                },
                {"id": "c2", "type": "function", "function": {"name": "look", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "a cat"},
        {"role": "tool", "tool_call_id": "c2", "content": "x"},
    ]


def test_history_comes_first_and_is_kept_in_the_conversation() -> None:
    history = [
        {"type": "message", "role": "user", "content": "one"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "1"}]},
    ]
    request = translate_request(
        {"model": "m", "input": "two", "previous_response_id": "resp_x", "instructions": "i"},
        history,
    )
    assert [m["content"] for m in request.chat["messages"]] == ["i", "one", "1", "two"]
    assert len(request.input_items) == 3
    assert request.previous_response_id == "resp_x"


def test_tools_tool_choice_format_and_passthrough() -> None:
    request = translate_request(
        {
            "model": "m",
            "input": "x",
            "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
            "tool_choice": {"type": "function", "name": "f"},
            "text": {
                "format": {
                    "type": "json_schema",
                    "name": "s",
                    "schema": {"type": "object"},
                    "strict": True,
                }
            },
            "reasoning": {"effort": "low"},
            "metadata": {"k": "v"},
            "user": "u1",
            "temperature": 0.5,
            "seed": 7,
            "stream": True,
        },
        [],
    )
    chat = request.chat
    assert chat["tools"] == [
        {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    ]
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert chat["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "s", "schema": {"type": "object"}, "strict": True},
    }
    assert chat["reasoning_effort"] == "low"
    assert chat["user"] == "u1" and chat["temperature"] == 0.5 and chat["seed"] == 7
    assert chat["stream"] is True and chat["stream_options"] == {"include_usage": True}
    assert "metadata" not in chat and "text" not in chat
    assert request.echo["metadata"] == {"k": "v"}


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"input": "x"}, "model"),
        ({"model": "m"}, "input"),
        ({"model": "m", "input": 3}, "input"),
        ({"model": "m", "input": "x", "tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"model": "m", "input": [{"type": "item_reference", "id": "x"}]}, "input[0].type"),
        (
            {"model": "m", "input": [{"role": "user", "content": [{"type": "input_file"}]}]},
            "input[0].content[0].type",
        ),
        (
            {
                "model": "m",
                "input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}],
            },
            "input[0].content[0].image_url",
        ),
        ({"model": "m", "input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        ({"model": "m", "input": [{"type": "function_call", "name": "f"}]}, "input[0].call_id"),
        ({"model": "m", "input": "x", "background": True}, "background"),
        ({"model": "m", "input": "x", "max_output_tokens": 0}, "max_output_tokens"),
        ({"model": "m", "input": "x", "store": "yes"}, "store"),
        ({"model": "m", "input": "x", "tool_choice": "sometimes"}, "tool_choice"),
        ({"model": "m", "input": "x", "text": {"format": {"type": "xml"}}}, "text.format.type"),
        ({"model": "m", "input": "x", "metadata": {"k": 1}}, "metadata"),
        ({"model": "m", "input": "x", "previous_response_id": 5}, "previous_response_id"),
    ],
)
def test_bad_requests_are_400s_naming_the_parameter(payload: dict[str, Any], param: str) -> None:
    error = _refused(payload, param)
    assert b'"error"' in error.body()


def _chat_answer(message: dict[str, Any], finish: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "model": "m",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7},
    }


def test_whole_answer_with_text_and_tool_call() -> None:
    answer = _chat_answer(
        {
            "role": "assistant",
            "content": "sure",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        "tool_calls",
    )
    response = answer_to_response(answer, "resp_1", "m", {"store": True}, 10)
    assert response["id"] == "resp_1" and response["status"] == "completed"
    message, call = response["output"]
    assert message["type"] == "message" and message["content"][0]["text"] == "sure"
    assert call == {
        **call,
        "type": "function_call",
        "call_id": "call_1",
        "name": "f",
        "arguments": "{}",
    }
    assert call["id"].startswith("fc_") and message["id"].startswith("msg_")
    assert response["usage"]["input_tokens"] == 4 and response["usage"]["output_tokens"] == 3
    assert response["usage"]["total_tokens"] == 7 and response["store"] is True


def test_whole_answer_cut_by_length_is_incomplete() -> None:
    response = answer_to_response(
        _chat_answer({"role": "assistant", "content": "a b"}, "length"), "resp_1", "m", {}, 10
    )
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}


def _events(raw: bytes) -> list[dict[str, Any]]:
    events = []
    for frame in raw.split(b"\n\n"):
        if not frame:
            continue
        name, data = frame.split(b"\n")
        event = msgspec.json.decode(data[len(b"data: ") :])
        assert name == b"event: " + event["type"].encode()
        events.append(event)
    return events


def test_stream_of_text_then_usage() -> None:
    stream = ResponsesStream("resp_1", "m", {"store": True})
    out = stream.open()
    for piece in ("Hel", "lo"):
        out += stream.feed({"choices": [{"index": 0, "delta": {"content": piece}}]})
    out += stream.feed({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    out += stream.feed({"choices": [], "usage": {"prompt_tokens": 2, "completion_tokens": 2}})
    out += stream.close()
    events = _events(out)
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[6]["text"] == "Hello"
    final = events[-1]["response"]
    assert final["output"][0]["content"][0]["text"] == "Hello"
    assert final["usage"]["input_tokens"] == 2 and final["usage"]["total_tokens"] == 4
    assert stream.final == final


def test_stream_of_tool_calls_cut_by_length() -> None:
    stream = ResponsesStream("resp_1", "m", {})
    stream.open()
    first = {"index": 0, "id": "call_9", "function": {"name": "f", "arguments": '{"a"'}}
    out = stream.feed({"choices": [{"index": 0, "delta": {"tool_calls": [first]}}]})
    out += stream.feed(
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]},
                }
            ]
        }
    )
    out += stream.feed({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]})
    out += stream.close()
    events = _events(out)
    kinds = [e["type"] for e in events]
    assert kinds == [
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.incomplete",
    ]
    assert events[3]["arguments"] == '{"a":1}'
    item = events[-1]["response"]["output"][0]
    assert item["call_id"] == "call_9" and item["name"] == "f" and item["arguments"] == '{"a":1}'
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}

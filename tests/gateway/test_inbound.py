"""The inbound-API mechanism in process: translating what the pipeline sends, frame by frame,
and the `operation` rule field."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from gateway.errors import GatewayError, invalid_key
from gateway.inbound.api import InboundSend
from gateway.inbound.completions import CompletionsApi
from gateway.inbound.messages import MessagesApi, estimated_input_tokens
from rules.compiler import compile_rules
from rules.context import RequestContext

BODY = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}


class Recorder:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def __call__(self, message: dict[str, Any]) -> None:
        self.messages.append(message)

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.messages[1:])

    def header(self, name: bytes) -> bytes:
        return dict(self.messages[0]["headers"])[name]


def _start(status: int, content_type: bytes, length: int | None = None) -> dict[str, Any]:
    headers = [(b"content-type", content_type), (b"x-steerway-trace-id", b"t")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return {"type": "http.response.start", "status": status, "headers": headers}


def _chunk(**choice: Any) -> bytes:
    return b"data: " + msgspec.json.encode({"choices": [{"index": 0, **choice}]}) + b"\n\n"


async def test_a_whole_answer_is_translated_with_its_new_length() -> None:
    sent = Recorder()
    inbound = InboundSend(MessagesApi(), sent)
    chat = inbound.to_chat(dict(BODY))
    assert chat["messages"] == [{"role": "user", "content": "hi"}]
    answer = msgspec.json.encode(
        {
            "choices": [{"message": {"content": "hello"}, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 10},
        }
    )
    await inbound(_start(200, b"application/json", len(answer)))
    await inbound({"type": "http.response.body", "body": answer, "more_body": False})
    message = msgspec.json.decode(sent.body)
    assert message["content"] == [{"type": "text", "text": "hello"}]
    assert message["stop_reason"] == "max_tokens"
    assert message["usage"] == {"input_tokens": 3, "output_tokens": 10}
    assert sent.header(b"content-length") == str(len(sent.body)).encode()
    assert sent.header(b"x-steerway-trace-id") == b"t"


async def test_an_error_before_decoding_takes_the_apis_shape() -> None:
    sent = Recorder()
    inbound = InboundSend(MessagesApi(), sent)
    error = invalid_key()
    await inbound(_start(401, b"application/json", len(error.body())))
    await inbound({"type": "http.response.body", "body": error.body(), "more_body": False})
    assert msgspec.json.decode(sent.body) == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "Incorrect API key provided."},
    }


async def test_stream_frames_split_across_messages_and_a_late_error() -> None:
    sent = Recorder()
    inbound = InboundSend(MessagesApi(), sent)
    inbound.to_chat({**BODY, "stream": True})
    first = _chunk(delta={"role": "assistant", "content": "Hel"}) + _chunk(delta={"content": "lo"})
    await inbound(_start(200, b"text/event-stream"))
    await inbound({"type": "http.response.body", "body": first[:30], "more_body": True})
    await inbound({"type": "http.response.body", "body": first[30:], "more_body": True})
    failure = GatewayError(502, "The upstream provider 'p' failed: cut", type="upstream_error")
    await inbound(
        {
            "type": "http.response.body",
            "body": b"data: " + failure.body() + b"\n\n",
            "more_body": False,
        }
    )
    text = sent.body.decode()
    events = [line[7:] for line in text.splitlines() if line.startswith("event: ")]
    assert events[:4] == ["message_start", "ping", "content_block_start", "content_block_delta"]
    assert events.count("content_block_delta") == 2
    assert events[-1] == "error" and "message_stop" not in events
    assert '"type":"api_error"' in text and "cut" in text


async def test_streamed_tool_calls_become_tool_use_blocks() -> None:
    sent = Recorder()
    inbound = InboundSend(MessagesApi(), sent)
    inbound.to_chat({**BODY, "stream": True})
    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f"}}
    frames = (
        _chunk(delta={"content": "Let me see."})
        + _chunk(delta={"tool_calls": [{**call, "function": {"name": "f", "arguments": ""}}]})
        + _chunk(delta={"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]})
        + _chunk(delta={"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]})
        + _chunk(delta={}, finish_reason="tool_calls")
        + b'data: {"choices":[],"usage":{"prompt_tokens":4,"completion_tokens":7}}\n\n'
        + b"data: [DONE]\n\n"
    )
    await inbound(_start(200, b"text/event-stream"))
    await inbound({"type": "http.response.body", "body": frames, "more_body": True})
    await inbound({"type": "http.response.body", "body": b"", "more_body": False})
    datas = [
        msgspec.json.decode(line[6:])
        for line in sent.body.decode().splitlines()
        if line.startswith("data: ")
    ]
    starts = [d for d in datas if d["type"] == "content_block_start"]
    assert [s["content_block"]["type"] for s in starts] == ["text", "tool_use"]
    assert starts[1]["index"] == 1 and starts[1]["content_block"]["id"] == "call_1"
    json_parts = [
        d["delta"]["partial_json"]
        for d in datas
        if d["type"] == "content_block_delta" and d["delta"]["type"] == "input_json_delta"
    ]
    assert "".join(json_parts) == '{"a":1}'
    (delta,) = [d for d in datas if d["type"] == "message_delta"]
    assert delta["delta"]["stop_reason"] == "tool_use"
    assert delta["usage"] == {"input_tokens": 4, "output_tokens": 7}
    assert [d["type"] for d in datas].count("message_stop") == 1


async def test_completions_stream_chunks_and_done() -> None:
    sent = Recorder()
    inbound = InboundSend(CompletionsApi(), sent)
    chat = inbound.to_chat({"model": "m", "prompt": "p", "stream": True})
    assert chat["stream_options"] == {"include_usage": False}
    await inbound(_start(200, b"text/event-stream"))
    body = _chunk(delta={"content": "a"}) + _chunk(delta={}, finish_reason="stop")
    await inbound({"type": "http.response.body", "body": body + b"data: [DONE]\n\n"})
    lines = [line for line in sent.body.decode().splitlines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    first = msgspec.json.decode(lines[0][6:])
    assert first["object"] == "text_completion" and first["choices"][0]["text"] == "a"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"system": [{"type": "image"}]}, "system"),
        ({"tool_choice": {"type": "sometimes"}}, "tool_choice"),
        ({"stop_sequences": "END"}, "stop_sequences"),
        (
            {"messages": [{"role": "user", "content": [{"type": "tool_use", "id": "x"}]}]},
            "tool_use",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image", "source": {"type": "file"}}]}
                ]
            },
            "image source",
        ),
    ],
)
def test_messages_refuses_what_it_cannot_translate(change: dict[str, Any], words: str) -> None:
    with pytest.raises(GatewayError) as caught:
        MessagesApi().decode({**BODY, **change})
    assert caught.value.status == 400
    assert words in caught.value.message


def test_count_tokens_counts_an_image_as_a_flat_estimate() -> None:
    big = "A" * 400_000
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": big}}
    chat, _ = MessagesApi().decode(
        {"model": "m", "messages": [{"role": "user", "content": [image]}]}, counting=True
    )
    assert 765 <= estimated_input_tokens(chat) < 900


def test_rules_match_the_operation() -> None:
    rules = compile_rules(
        [{"id": "m", "when": {"operation": {"in": ["messages"]}}, "then": {"tag": "x"}}]
    )
    assert rules.evaluate(RequestContext(model="m", operation="messages")).matched
    assert not rules.evaluate(RequestContext(model="m")).matched
    recorded = RequestContext.from_trace({"features": {"operation": "messages"}})
    assert recorded.operation == "messages"
    assert RequestContext.from_trace({"features": {}}).operation == "chat"

"""Anthropic Messages API answers as OpenAI chat completions and chat-completion chunks."""

from __future__ import annotations

import time
from typing import Any

import msgspec

from providers.errors import UpstreamFailure
from providers.usage import Usage

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

STATUS_BY_ERROR_TYPE = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}

_encode = msgspec.json.Encoder().encode


class AnthropicUsage(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None

    def merged(self, later: AnthropicUsage) -> AnthropicUsage:
        """These counts updated by the (cumulative) counts of a later event."""
        return AnthropicUsage(
            input_tokens=_later(later.input_tokens, self.input_tokens),
            output_tokens=_later(later.output_tokens, self.output_tokens),
            cache_read_input_tokens=_later(
                later.cache_read_input_tokens, self.cache_read_input_tokens
            ),
            cache_creation_input_tokens=_later(
                later.cache_creation_input_tokens, self.cache_creation_input_tokens
            ),
        )

    def normalise(self) -> Usage:
        """Prompt tokens include cached and cache-writing tokens, as OpenAI counts them."""
        if self.input_tokens is None:
            return Usage(completion_tokens=self.output_tokens)
        cached = self.cache_read_input_tokens or 0
        prompt = self.input_tokens + cached + (self.cache_creation_input_tokens or 0)
        completion = self.output_tokens
        total = prompt + (completion or 0)
        return Usage(prompt, completion, cached, total)


def _later(value: int | None, earlier: int | None) -> int | None:
    return earlier if value is None else value


def openai_usage(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
    }


class _Block(msgspec.Struct):
    type: str
    text: str | None = None
    id: str | None = None
    name: str | None = None
    input: Any = None


class AnthropicMessage(msgspec.Struct):
    id: str = ""
    type: str = "message"
    model: str | None = None
    content: list[_Block] = []
    stop_reason: str | None = None
    usage: AnthropicUsage | None = None


def finish_reason(stop_reason: str | None) -> str | None:
    if stop_reason is None:
        return None
    return FINISH_REASONS.get(stop_reason, "stop")


def decode_message(raw: bytes) -> AnthropicMessage:
    try:
        message = msgspec.json.decode(raw, type=AnthropicMessage)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise UpstreamFailure("malformed", "the provider's answer is not a message") from error
    if message.type != "message":
        raise UpstreamFailure("malformed", f"the provider answered a {message.type!r}")
    return message


def completion_message(message: AnthropicMessage) -> dict[str, Any]:
    """The OpenAI assistant message: text blocks joined, tool_use blocks as tool calls."""
    texts = [block.text for block in message.content if block.type == "text" and block.text]
    tool_calls = [
        {
            "id": block.id,
            "type": "function",
            "function": {"name": block.name, "arguments": _encode(block.input or {}).decode()},
        }
        for block in message.content
        if block.type == "tool_use"
    ]
    text = "".join(texts)
    result: dict[str, Any] = {
        "role": "assistant",
        "content": text if text or not tool_calls else None,
        "refusal": None,
    }
    if tool_calls:
        result["tool_calls"] = tool_calls
    return result


def completion_body(
    message: AnthropicMessage, assistant: dict[str, Any], usage: Usage, public_model: str
) -> bytes:
    document: dict[str, Any] = {
        "id": message.id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": public_model,
        "choices": [
            {
                "index": 0,
                "message": assistant,
                "logprobs": None,
                "finish_reason": finish_reason(message.stop_reason),
            }
        ],
    }
    if usage.known:
        document["usage"] = openai_usage(usage)
    return _encode(document)


class _StreamError(msgspec.Struct):
    type: str = "api_error"
    message: str = "the provider reported an error mid-stream"


class _StreamEvent(msgspec.Struct):
    """Any event of Anthropic's stream; each type uses a few of these fields."""

    type: str
    index: int = 0
    message: AnthropicMessage | None = None
    content_block: _Block | None = None
    delta: dict[str, Any] | None = None
    usage: AnthropicUsage | None = None
    error: _StreamError | None = None


_decode_event = msgspec.json.Decoder(_StreamEvent).decode


class StreamTranslator:
    """Turns Anthropic stream events, one `data:` payload at a time, into OpenAI chunk events.

    The output always ends with a finish chunk, a `choices: []` usage chunk and `[DONE]`, sent
    when `message_stop` arrives; `finished` tells whether it did.
    """

    def __init__(self, public_model: str) -> None:
        self.public_model = public_model
        self.finished = False
        self.usage = AnthropicUsage()
        self._id = ""
        self._created = int(time.time())
        self._stop_reason: str | None = None
        self._tool_index_by_block: dict[int, int] = {}
        self._tool_arguments_sent: set[int] = set()

    def feed(self, data: bytes) -> list[bytes]:
        try:
            event = _decode_event(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            raise UpstreamFailure(
                "malformed", "the provider streamed an event that is not a message event"
            ) from error
        match event.type:
            case "message_start":
                return self._start(event)
            case "content_block_start":
                return self._block_start(event)
            case "content_block_delta":
                return self._block_delta(event)
            case "content_block_stop":
                return self._block_stop(event)
            case "message_delta":
                if event.delta:
                    self._stop_reason = event.delta.get("stop_reason") or self._stop_reason
                if event.usage is not None:
                    self.usage = self.usage.merged(event.usage)
                return []
            case "message_stop":
                return self._finish()
            case "error":
                raise _stream_failure(event.error or _StreamError())
            case _:
                return []

    def _start(self, event: _StreamEvent) -> list[bytes]:
        if event.message is not None:
            self._id = event.message.id
            if event.message.usage is not None:
                self.usage = self.usage.merged(event.message.usage)
        return [self._chunk({"role": "assistant", "content": ""})]

    def _block_start(self, event: _StreamEvent) -> list[bytes]:
        block = event.content_block
        if block is None:
            return []
        if block.type == "text" and block.text:
            return [self._chunk({"content": block.text})]
        if block.type != "tool_use":
            return []
        tool_index = len(self._tool_index_by_block)
        self._tool_index_by_block[event.index] = tool_index
        arguments = ""
        if isinstance(block.input, dict) and block.input:
            arguments = _encode(block.input).decode()
            self._tool_arguments_sent.add(event.index)
        call = {
            "index": tool_index,
            "id": block.id,
            "type": "function",
            "function": {"name": block.name, "arguments": arguments},
        }
        return [self._chunk({"tool_calls": [call]})]

    def _block_delta(self, event: _StreamEvent) -> list[bytes]:
        delta = event.delta or {}
        kind = delta.get("type")
        if kind == "text_delta":
            text = delta.get("text")
            return [self._chunk({"content": text})] if text else []
        if kind == "input_json_delta":
            partial = delta.get("partial_json")
            tool_index = self._tool_index_by_block.get(event.index)
            if not partial or tool_index is None:
                return []
            self._tool_arguments_sent.add(event.index)
            return [self._arguments_chunk(tool_index, partial)]
        return []

    def _block_stop(self, event: _StreamEvent) -> list[bytes]:
        """A tool call that streamed no arguments gets `{}`, so its arguments parse as JSON."""
        tool_index = self._tool_index_by_block.get(event.index)
        if tool_index is None or event.index in self._tool_arguments_sent:
            return []
        self._tool_arguments_sent.add(event.index)
        return [self._arguments_chunk(tool_index, "{}")]

    def _finish(self) -> list[bytes]:
        self.finished = True
        usage = self.usage.normalise()
        final = self._chunk({}, finish_reason(self._stop_reason) or "stop")
        usage_chunk = self._envelope() | {"choices": [], "usage": openai_usage(usage)}
        return [final, b"data: " + _encode(usage_chunk), b"data: [DONE]"]

    def _arguments_chunk(self, tool_index: int, arguments: str) -> bytes:
        return self._chunk(
            {"tool_calls": [{"index": tool_index, "function": {"arguments": arguments}}]}
        )

    def _envelope(self) -> dict[str, Any]:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self.public_model,
        }

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return b"data: " + _encode(self._envelope() | {"choices": [choice]})


def _stream_failure(error: _StreamError) -> UpstreamFailure:
    return UpstreamFailure(
        "http",
        error.message,
        status=STATUS_BY_ERROR_TYPE.get(error.type, 500),
        error_type=error.type,
    )

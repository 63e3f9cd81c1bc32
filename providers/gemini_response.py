"""Gemini answers → OpenAI's: chat completions, chat-completion chunks and embedding lists."""

from __future__ import annotations

import base64
import os
import sys
import time
from array import array
from typing import Any

import msgspec

from providers.base import ChatResult
from providers.errors import UpstreamFailure
from providers.usage import UNKNOWN_USAGE, Usage

FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}
"""Gemini finish reasons; any other (OTHER, LANGUAGE, MALFORMED_FUNCTION_CALL ...) is `stop`."""

_encode = msgspec.json.Encoder().encode


class _FunctionCall(msgspec.Struct):
    name: str = ""
    args: dict[str, Any] | None = None


class _Part(msgspec.Struct, rename="camel"):
    text: str | None = None
    thought: bool = False
    function_call: _FunctionCall | None = None


class _Content(msgspec.Struct):
    parts: list[_Part] = []


class _Candidate(msgspec.Struct, rename="camel"):
    content: _Content | None = None
    finish_reason: str | None = None
    index: int | None = None


class _PromptFeedback(msgspec.Struct, rename="camel"):
    block_reason: str | None = None


class UsageMetadata(msgspec.Struct, rename="camel"):
    prompt_token_count: int | None = None
    candidates_token_count: int | None = None
    thoughts_token_count: int | None = None
    cached_content_token_count: int | None = None
    total_token_count: int | None = None

    def normalise(self) -> Usage:
        if self.prompt_token_count is None:
            return UNKNOWN_USAGE
        completion = (self.candidates_token_count or 0) + (self.thoughts_token_count or 0)
        total = self.total_token_count
        if total is None:
            total = self.prompt_token_count + completion
        return Usage(self.prompt_token_count, completion, self.cached_content_token_count, total)

    def openai(self) -> dict[str, Any] | None:
        usage = self.normalise()
        if not usage.known:
            return None
        return {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
            "prompt_tokens_details": {"cached_tokens": usage.cached_tokens or 0},
            "completion_tokens_details": {"reasoning_tokens": self.thoughts_token_count or 0},
        }


class _StreamError(msgspec.Struct):
    code: int | None = None
    message: str | None = None
    status: str | None = None


class _Response(msgspec.Struct, rename="camel"):
    candidates: list[_Candidate] = []
    prompt_feedback: _PromptFeedback | None = None
    usage_metadata: UsageMetadata | None = None
    model_version: str | None = None
    response_id: str | None = None
    error: _StreamError | None = None


_response_decoder = msgspec.json.Decoder(_Response)


def new_id(prefix: str) -> str:
    return prefix + os.urandom(12).hex()


def _decode_response(raw: bytes, what: str) -> _Response:
    try:
        return _response_decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise UpstreamFailure("malformed", f"the provider's answer is not {what}") from error


def _tool_call(call: _FunctionCall) -> dict[str, Any]:
    return {
        "id": new_id("call_"),
        "type": "function",
        "function": {"name": call.name, "arguments": _encode(call.args or {}).decode()},
    }


def _finish(reason: str | None, has_tool_calls: bool) -> str:
    mapped = FINISH_REASONS.get(reason or "STOP", "stop")
    return "tool_calls" if has_tool_calls and mapped == "stop" else mapped


def parse_chat(raw: bytes, public_model: str) -> ChatResult:
    """A `GenerateContentResponse` as an OpenAI `chat.completion`."""
    response = _decode_response(raw, "a generateContent response")
    choices: list[dict[str, Any]] = []
    for position, candidate in enumerate(response.candidates):
        parts = candidate.content.parts if candidate.content else []
        texts = [part.text for part in parts if part.text is not None and not part.thought]
        calls = [_tool_call(part.function_call) for part in parts if part.function_call]
        message: dict[str, Any] = {
            "role": "assistant",
            "content": "".join(texts) if texts else None,
            "refusal": None,
        }
        if calls:
            message["tool_calls"] = calls
        choices.append(
            {
                "index": position if candidate.index is None else candidate.index,
                "message": message,
                "logprobs": None,
                "finish_reason": _finish(candidate.finish_reason, bool(calls)),
            }
        )
    if not choices:
        if response.prompt_feedback is None or response.prompt_feedback.block_reason is None:
            raise UpstreamFailure("malformed", "the provider answered without any candidate")
        choices.append(
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "refusal": None},
                "logprobs": None,
                "finish_reason": "content_filter",
            }
        )
    metadata = response.usage_metadata
    body: dict[str, Any] = {
        "id": "chatcmpl-" + (response.response_id or new_id("")),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": public_model,
        "choices": choices,
    }
    usage_body = metadata.openai() if metadata else None
    if usage_body is not None:
        body["usage"] = usage_body
    return ChatResult(
        body=_encode(body),
        usage=metadata.normalise() if metadata else UNKNOWN_USAGE,
        finish_reasons=[choice["finish_reason"] for choice in choices],
        messages=[choice["message"] for choice in choices],
        response_model=response.model_version,
    )


class StreamTranslator:
    """Turns the `data:` payloads of a Gemini stream into OpenAI chunk events, in order.

    Every chunk event is `data: {json}` without the trailing blank line. `finish()` closes the
    stream: the usage chunk (`choices: []`, when Gemini reported usage) and `data: [DONE]`.
    """

    def __init__(self, public_model: str) -> None:
        self._envelope = {
            "id": new_id("chatcmpl-"),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": public_model,
        }
        self._started: set[int] = set()
        self._tool_calls: dict[int, int] = {}
        self._finished: set[int] = set()
        self._usage: UsageMetadata | None = None

    @property
    def usage(self) -> Usage:
        return self._usage.normalise() if self._usage else UNKNOWN_USAGE

    def feed(self, data: bytes) -> list[bytes]:
        response = _decode_response(data, "a streamed generateContent response")
        if response.error is not None:
            raise UpstreamFailure(
                "http",
                response.error.message or "the provider ended the stream with an error",
                status=response.error.code,
                error_code=response.error.status,
            )
        if response.usage_metadata is not None:
            self._usage = response.usage_metadata
        events: list[bytes] = []
        if not response.candidates:
            feedback = response.prompt_feedback
            if feedback is not None and feedback.block_reason is not None:
                self._open(0, events)
                self._close(0, "content_filter", events)
            return events
        for position, candidate in enumerate(response.candidates):
            index = position if candidate.index is None else candidate.index
            self._open(index, events)
            parts = candidate.content.parts if candidate.content else []
            text = "".join(p.text for p in parts if p.text is not None and not p.thought)
            if text:
                events.append(self._chunk(index, {"content": text}, None))
            calls = [part.function_call for part in parts if part.function_call]
            if calls:
                events.append(self._chunk(index, {"tool_calls": self._call_deltas(index, calls)}))
            if candidate.finish_reason is not None:
                reason = _finish(candidate.finish_reason, index in self._tool_calls)
                self._close(index, reason, events)
        return events

    def finish(self) -> list[bytes]:
        if not self._started:
            raise UpstreamFailure("malformed", "the provider's stream carried no answer")
        if self._started - self._finished:
            raise UpstreamFailure(
                "disconnected", "the provider ended the stream without a finish reason"
            )
        events = []
        usage_body = self._usage.openai() if self._usage else None
        if usage_body is not None:
            events.append(
                b"data: " + _encode(self._envelope | {"choices": [], "usage": usage_body})
            )
        events.append(b"data: [DONE]")
        return events

    def _open(self, index: int, events: list[bytes]) -> None:
        if index not in self._started:
            self._started.add(index)
            events.append(self._chunk(index, {"role": "assistant", "content": ""}))

    def _close(self, index: int, reason: str, events: list[bytes]) -> None:
        if index not in self._finished:
            self._finished.add(index)
            events.append(self._chunk(index, {}, reason))

    def _call_deltas(self, index: int, calls: list[_FunctionCall]) -> list[dict[str, Any]]:
        deltas = []
        for call in calls:
            position = self._tool_calls.get(index, 0)
            self._tool_calls[index] = position + 1
            deltas.append({"index": position, **_tool_call(call)})
        return deltas

    def _chunk(self, index: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        return b"data: " + _encode(self._envelope | {"choices": [choice]})


# --- embeddings -----------------------------------------------------------------------------


class _Embedding(msgspec.Struct):
    values: list[float] = []


class _EmbeddingsResponse(msgspec.Struct):
    embeddings: list[_Embedding]


def parse_embeddings(raw: bytes, public_model: str, encoding_format: str) -> bytes:
    """A `batchEmbedContentsResponse` as an OpenAI embedding list (usage unknown: null)."""
    try:
        decoded = msgspec.json.decode(raw, type=_EmbeddingsResponse)
    except (msgspec.DecodeError, msgspec.ValidationError) as error:
        raise UpstreamFailure(
            "malformed", "the provider's answer is not a batchEmbedContents response"
        ) from error
    data = [
        {
            "object": "embedding",
            "index": index,
            "embedding": _base64_floats(item.values)
            if encoding_format == "base64"
            else item.values,
        }
        for index, item in enumerate(decoded.embeddings)
    ]
    body = {
        "object": "list",
        "data": data,
        "model": public_model,
        "usage": {"prompt_tokens": None, "total_tokens": None},
    }
    return _encode(body)


def _base64_floats(values: list[float]) -> str:
    floats = array("f", values)
    if sys.byteorder == "big":
        floats.byteswap()
    return base64.b64encode(floats.tobytes()).decode("ascii")

"""OpenAI's Responses API passed through: the client's body goes to `{base_url}/responses`, and
the answer (a `response` object, or its typed events) is read as the chat completion it stands
for: usage, finish reason, text and function calls."""

from __future__ import annotations

import time
from typing import Any, Final

import msgspec

from providers.base import ChatResult
from providers.errors import UpstreamFailure
from providers.native import RESPONSES
from providers.usage import UNKNOWN_USAGE, Usage

FINAL_EVENTS: Final = frozenset({"response.completed", "response.incomplete"})
_INCOMPLETE_FINISH: Final = {"max_output_tokens": "length", "content_filter": "content_filter"}

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


class ResponsesNative:
    api = RESPONSES

    def upstream_body(self, payload: dict[str, Any], provider_model: str) -> bytes:
        return _encode({**payload, "model": provider_model})

    def forwarded_headers(self, headers: dict[str, str]) -> dict[str, str]:
        return {}

    def read_whole(self, raw: bytes, public_model: str) -> ChatResult:
        try:
            response = _decode(raw)
        except msgspec.DecodeError as error:
            raise UpstreamFailure("malformed", "the provider's answer is not JSON") from error
        if not isinstance(response, dict) or response.get("object") != "response":
            raise UpstreamFailure("malformed", "the provider's answer is not a response object")
        return chat_view(response, public_model)

    def stream_reader(self, public_model: str) -> ResponsesStreamReader:
        return ResponsesStreamReader(public_model)


def response_usage(raw: Any) -> Usage:
    """A Responses `usage` object in the gateway's terms (input includes cached tokens)."""
    if not isinstance(raw, dict):
        return UNKNOWN_USAGE
    prompt = _count(raw.get("input_tokens"))
    completion = _count(raw.get("output_tokens"))
    details = raw.get("input_tokens_details")
    cached = _count(details.get("cached_tokens")) if isinstance(details, dict) else None
    total = _count(raw.get("total_tokens"))
    if total is None and prompt is not None:
        total = prompt + (completion or 0)
    return Usage(prompt, completion, cached, total)


def chat_view(response: dict[str, Any], public_model: str) -> ChatResult:
    """A `response` object as a chat completion: text joined, function calls as tool calls."""
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    for item in _items(response.get("output")):
        if item.get("type") == "message":
            for part in _items(item.get("content")):
                if part.get("type") == "output_text" and isinstance(part.get("text"), str):
                    texts.append(part["text"])
        elif item.get("type") == "function_call":
            tool_calls.append(
                {
                    "id": str(item.get("call_id") or item.get("id") or ""),
                    "type": "function",
                    "function": {
                        "name": str(item.get("name") or ""),
                        "arguments": str(item.get("arguments") or ""),
                    },
                }
            )
    text = "".join(texts)
    message: dict[str, Any] = {
        "role": "assistant",
        "content": text if text or not tool_calls else None,
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    finish = _finish_reason(response, bool(tool_calls))
    usage = response_usage(response.get("usage"))
    document: dict[str, Any] = {
        "id": str(response.get("id") or ""),
        "object": "chat.completion",
        "created": _created(response),
        "model": public_model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
    }
    if usage.known:
        document["usage"] = _chat_usage(usage)
    model = response.get("model")
    return ChatResult(
        body=_encode(document),
        usage=usage,
        finish_reasons=[finish],
        messages=[message],
        response_model=model if isinstance(model, str) else None,
    )


class ResponsesStreamReader:
    """The typed events of a Responses stream as chat chunks: text deltas as they come, and at
    `response.completed` (or `.incomplete`) the function calls, the finish and the usage."""

    __slots__ = ("_created", "_id", "_public_model", "_usage", "final")

    def __init__(self, public_model: str) -> None:
        self._public_model = public_model
        self._id = ""
        self._created = int(time.time())
        self._usage = UNKNOWN_USAGE
        self.final: dict[str, Any] | None = None

    @property
    def finished(self) -> bool:
        return self.final is not None

    def reported_usage(self) -> Usage:
        return self._usage

    def feed(self, data: bytes) -> list[bytes]:
        try:
            event = _decode(data)
        except msgspec.DecodeError as error:
            raise UpstreamFailure(
                "malformed", "the provider streamed an event that is not JSON"
            ) from error
        if not isinstance(event, dict):
            return []
        kind = event.get("type")
        if kind == "response.created":
            response = event.get("response")
            if isinstance(response, dict):
                self._id = str(response.get("id") or "")
                self._created = _created(response)
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "response.output_text.delta":
            delta = event.get("delta")
            return [self._chunk({"content": delta})] if isinstance(delta, str) and delta else []
        if kind in FINAL_EVENTS:
            return self._finish(event.get("response"))
        if kind == "response.failed":
            response = event.get("response")
            reported = response.get("error") if isinstance(response, dict) else None
            raise _failure(reported if isinstance(reported, dict) else {})
        if kind == "error":
            raise _failure(event)
        return []

    def _finish(self, response: Any) -> list[bytes]:
        if not isinstance(response, dict):
            raise UpstreamFailure("malformed", "the provider's final event has no response")
        self.final = response
        view = chat_view(response, self._public_model)
        self._usage = view.usage
        message = view.messages[0]
        out = []
        for index, call in enumerate(message.get("tool_calls") or ()):
            out.append(self._chunk({"tool_calls": [{"index": index, **call}]}))
        out.append(self._chunk({}, view.finish_reasons[0]))
        if view.usage.known:
            usage_chunk = self._envelope() | {"choices": [], "usage": _chat_usage(view.usage)}
            out.append(b"data: " + _encode(usage_chunk))
        out.append(b"data: [DONE]")
        return out

    def _envelope(self) -> dict[str, Any]:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._public_model,
        }

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return b"data: " + _encode(self._envelope() | {"choices": [choice]})


def _finish_reason(response: dict[str, Any], tool_calls: bool) -> str:
    if response.get("status") == "incomplete":
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        return _INCOMPLETE_FINISH.get(str(reason), "length")
    return "tool_calls" if tool_calls else "stop"


def _chat_usage(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
    }


def _failure(error: dict[str, Any]) -> UpstreamFailure:
    message = error.get("message")
    code = error.get("code")
    return UpstreamFailure(
        "http",
        message if isinstance(message, str) else "the provider reported an error mid-stream",
        status=500,
        error_type="api_error",
        error_code=code if isinstance(code, str) else None,
    )


def _items(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _created(response: dict[str, Any]) -> int:
    created = _count(response.get("created_at"))
    return created if created is not None else int(time.time())

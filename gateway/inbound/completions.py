"""Legacy text completions (`POST /v1/completions`) as an inbound format of the chat pipeline.

The prompt becomes one user message; the chat answer becomes a `text_completion` object (or
`text_completion` chunks when streamed). Options with no chat equivalent that change the answer
(`echo`, `logprobs`, `best_of` above 1, `suffix`, several prompts) are refused with a 400 rather
than silently dropped. Errors keep OpenAI's shape.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from gateway.errors import error_body, invalid_request
from gateway.inbound.api import AnswerEncoder
from telemetry.ids import uuid7_hex

_COPIED = (
    "max_tokens",
    "temperature",
    "top_p",
    "n",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "seed",
    "user",
    "stream",
)


class CompletionsApi:
    operation = "completions"

    def decode(self, payload: dict[str, Any]) -> tuple[dict[str, Any], AnswerEncoder]:
        model = payload.get("model")
        if not isinstance(model, str) or not model:
            raise invalid_request("Missing required parameter: 'model'.", param="model")
        chat: dict[str, Any] = {"model": model, "messages": [_prompt(payload.get("prompt"))]}
        _refuse(payload)
        for name in _COPIED:
            if payload.get(name) is not None:
                chat[name] = payload[name]
        if "max_tokens" not in chat:
            chat["max_tokens"] = 16  # the legacy endpoint's own default
        options = payload.get("stream_options")
        if chat.get("stream") is True:
            wants_usage = isinstance(options, dict) and options.get("include_usage") is True
            chat["stream_options"] = {"include_usage": wants_usage}
        return chat, TextCompletionEncoder(model)

    def error_body(self, status: int, error: dict[str, Any]) -> bytes:
        return error_body(
            str(error.get("message", "")),
            str(error.get("type", "invalid_request_error")),
            error.get("code"),
            error.get("param"),
        )

    def error_event(self, error: dict[str, Any]) -> bytes:
        return b"data: " + msgspec.json.encode({"error": error}) + b"\n\n"


class TextCompletionEncoder:
    def __init__(self, model: str) -> None:
        self.model = model
        self.id = "cmpl-" + uuid7_hex()
        self.created = int(time.time())

    def whole(self, answer: dict[str, Any]) -> bytes:
        choices = [
            {
                "text": _text((choice.get("message") or {}).get("content")),
                "index": choice.get("index", 0),
                "logprobs": None,
                "finish_reason": choice.get("finish_reason"),
            }
            for choice in answer.get("choices") or ()
            if isinstance(choice, dict)
        ]
        body: dict[str, Any] = {
            "id": self.id,
            "object": "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }
        if isinstance(answer.get("usage"), dict):
            body["usage"] = _usage(answer["usage"])
        return msgspec.json.encode(body)

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        choices = [
            {
                "text": _text((choice.get("delta") or {}).get("content")),
                "index": choice.get("index", 0),
                "logprobs": None,
                "finish_reason": choice.get("finish_reason"),
            }
            for choice in chunk.get("choices") or ()
            if isinstance(choice, dict)
        ]
        event: dict[str, Any] = {
            "id": self.id,
            "object": "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }
        if isinstance(chunk.get("usage"), dict):
            event["usage"] = _usage(chunk["usage"])
        elif not choices:
            return b""
        return b"data: " + msgspec.json.encode(event) + b"\n\n"

    def done(self) -> bytes:
        return b"data: [DONE]\n\n"


def _prompt(prompt: Any) -> dict[str, Any]:
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if isinstance(prompt, list):
        raise invalid_request(
            "This gateway accepts one prompt per request: a string or a list of one string.",
            param="prompt",
            code="unsupported_value",
        )
    if not isinstance(prompt, str):
        raise invalid_request(
            "Invalid 'prompt': expected a string (token arrays are not accepted).",
            param="prompt",
        )
    return {"role": "user", "content": prompt}


def _refuse(payload: dict[str, Any]) -> None:
    if payload.get("echo") is True:
        raise _unsupported("echo")
    if payload.get("logprobs") is not None:
        raise _unsupported("logprobs")
    if payload.get("suffix") is not None:
        raise _unsupported("suffix")
    best_of = payload.get("best_of")
    if best_of is not None and best_of != 1:
        raise _unsupported("best_of")


def _unsupported(name: str) -> Exception:
    return invalid_request(
        f"'{name}' is not supported by this gateway's completions endpoint.",
        param=name,
        code="unsupported_parameter",
    )


def _text(content: Any) -> str:
    return content if isinstance(content, str) else ""


def _usage(usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.get("prompt_tokens"),
        "completion_tokens": usage.get("completion_tokens"),
        "total_tokens": usage.get("total_tokens"),
    }

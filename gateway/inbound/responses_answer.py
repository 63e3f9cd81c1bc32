"""A chat completion answer as a Responses API `response` object.

The first choice's text becomes a `message` output item with one `output_text` part (or a
`refusal` part), each tool call a `function_call` item; usage is renamed to input and output
tokens, and a reply cut by its token limit (or by a content filter) is `incomplete` with its
reason, as OpenAI reports it.
"""

from __future__ import annotations

import time
from typing import Any, Final

from telemetry.ids import uuid7_hex

INCOMPLETE_REASONS: Final = {"length": "max_output_tokens", "content_filter": "content_filter"}
"""Chat finish reasons that leave a response incomplete, and the reason Responses gives."""


def response_id() -> str:
    return "resp_" + uuid7_hex()


def item_id(prefix: str) -> str:
    return f"{prefix}_{uuid7_hex()}"


def message_item(text: str | None, refusal: str | None, status: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if text:
        content.append(output_text_part(text))
    if refusal:
        content.append({"type": "refusal", "refusal": refusal})
    return {
        "id": item_id("msg"),
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def output_text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def function_call_item(call_id: str, name: str, arguments: str, status: str) -> dict[str, Any]:
    return {
        "id": item_id("fc"),
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def usage_object(usage: Any) -> dict[str, Any] | None:
    """Chat usage (`prompt_tokens`, `completion_tokens`, their details) in Responses' names."""
    if not isinstance(usage, dict):
        return None
    prompt = _count(usage.get("prompt_tokens"))
    completion = _count(usage.get("completion_tokens"))
    prompt_details = usage.get("prompt_tokens_details")
    completion_details = usage.get("completion_tokens_details")
    cached = _count(prompt_details.get("cached_tokens")) if isinstance(prompt_details, dict) else 0
    reasoning = (
        _count(completion_details.get("reasoning_tokens"))
        if isinstance(completion_details, dict)
        else 0
    )
    total = usage.get("total_tokens")
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": _count(total) if total is not None else prompt + completion,
    }


def status_of(finish_reason: str | None) -> tuple[str, dict[str, Any] | None]:
    """The response's status and `incomplete_details` for a chat finish reason."""
    reason = INCOMPLETE_REASONS.get(finish_reason or "")
    if reason is None:
        return "completed", None
    return "incomplete", {"reason": reason}


def response_object(
    response_id: str,
    model: str,
    echo: dict[str, Any],
    *,
    output: list[dict[str, Any]],
    status: str,
    incomplete_details: dict[str, Any] | None = None,
    usage: dict[str, Any] | None = None,
    created_at: int | None = None,
) -> dict[str, Any]:
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at if created_at is not None else int(time.time()),
        "status": status,
        "error": None,
        "incomplete_details": incomplete_details,
        "model": model,
        "output": output,
        "usage": usage,
        **echo,
    }


def answer_to_response(
    answer: dict[str, Any], response_id: str, model: str, echo: dict[str, Any], created_at: int
) -> dict[str, Any]:
    """A whole chat completion (its first choice) as a finished `response` object."""
    choices = answer.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else {}
    message = choice.get("message") if isinstance(choice, dict) else None
    message = message if isinstance(message, dict) else {}
    status, incomplete = status_of(
        choice.get("finish_reason") if isinstance(choice, dict) else None
    )
    output: list[dict[str, Any]] = []
    text = message.get("content")
    refusal = message.get("refusal")
    if (isinstance(text, str) and text) or (isinstance(refusal, str) and refusal):
        output.append(
            message_item(
                text if isinstance(text, str) else None,
                refusal if isinstance(refusal, str) else None,
                status,
            )
        )
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else ():
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        output.append(
            function_call_item(
                str(call.get("id") or item_id("call")),
                str(function.get("name") or ""),
                str(function.get("arguments") or ""),
                "completed",
            )
        )
    return response_object(
        response_id,
        model,
        echo,
        output=output,
        status=status,
        incomplete_details=incomplete,
        usage=usage_object(answer.get("usage")),
        created_at=created_at,
    )


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0

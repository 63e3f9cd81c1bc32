"""What a pass-through request is read as when its chat translation refuses part of it.

The pipeline reads every inbound body as its chat request (rules, limits, guardrails, the
cache key and token estimates all read that). Some of what a native provider takes has no
chat equivalent: Anthropic's server tools and documents, OpenAI's hosted tools and file
inputs. For a body with such parts the gateway reads a copy without them; the body itself
goes upstream whole when the request passes through, and the translation's refusal (the 400
it always was) stands when it does not.
"""

from __future__ import annotations

from typing import Any, Final

from providers.native import MESSAGES, RESPONSES

_MESSAGES_BLOCKS: Final = {
    "user": frozenset({"text", "image", "tool_result"}),
    "assistant": frozenset({"text", "image", "tool_use", "thinking", "redacted_thinking"}),
}
_RESPONSES_ITEMS: Final = frozenset(
    {"message", "function_call", "function_call_output", "reasoning"}
)
_RESPONSES_PARTS: Final = frozenset({"input_text", "output_text", "input_image"})


def readable_copy(api: str, payload: dict[str, Any]) -> dict[str, Any] | None:
    """The body without the parts chat cannot carry, or None when nothing was left out."""
    if api == MESSAGES:
        copy = _messages_copy(payload)
    elif api == RESPONSES:
        copy = _responses_copy(payload)
    else:
        return None
    return copy if copy != payload else None


def _messages_copy(payload: dict[str, Any]) -> dict[str, Any]:
    copy = dict(payload)
    tools = payload.get("tools")
    if isinstance(tools, list):
        kept = [t for t in tools if isinstance(t, dict) and t.get("type") in (None, "custom")]
        if kept:
            copy["tools"] = kept
        else:
            copy.pop("tools", None)
            copy.pop("tool_choice", None)
    system = payload.get("system")
    if isinstance(system, list):
        copy["system"] = [b for b in system if isinstance(b, dict) and b.get("type") == "text"]
    messages = payload.get("messages")
    if isinstance(messages, list):
        copy["messages"] = [_message_copy(m) for m in messages]
    return copy


def _message_copy(message: Any) -> Any:
    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        return message
    allowed = _MESSAGES_BLOCKS.get(str(message.get("role")), frozenset())
    blocks = []
    for block in message["content"]:
        if not isinstance(block, dict) or block.get("type") not in allowed:
            continue
        if block.get("type") == "tool_result" and isinstance(block.get("content"), list):
            parts = [p for p in block["content"] if isinstance(p, dict) and p.get("type") == "text"]
            block = {**block, "content": parts}
        blocks.append(block)
    return {**message, "content": blocks or [{"type": "text", "text": "..."}]}


def _responses_copy(payload: dict[str, Any]) -> dict[str, Any]:
    copy = dict(payload)
    tools = payload.get("tools")
    if isinstance(tools, list):
        kept = [t for t in tools if isinstance(t, dict) and t.get("type") == "function"]
        if kept:
            copy["tools"] = kept
        else:
            copy.pop("tools", None)
        choice = payload.get("tool_choice")
        if not kept or (isinstance(choice, dict) and choice.get("type") != "function"):
            copy.pop("tool_choice", None)
    given = payload.get("input")
    if isinstance(given, list):
        items = []
        for item in given:
            if not isinstance(item, dict) or item.get("type", "message") not in _RESPONSES_ITEMS:
                continue
            content = item.get("content")
            if isinstance(content, list):
                parts = [p for p in content if _readable_part(p)]
                item = {**item, "content": parts or [{"type": "input_text", "text": "..."}]}
            items.append(item)
        copy["input"] = items or "..."
    return copy


def _readable_part(part: Any) -> bool:
    if not isinstance(part, dict) or part.get("type") not in _RESPONSES_PARTS:
        return False
    return part.get("type") != "input_image" or isinstance(part.get("image_url"), str)

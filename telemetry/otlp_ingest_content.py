"""A GenAI span's prompt and answer, in the OpenAI message shape proxied interactions are stored in.

Instrumentations carry content in one of three ways, by the semantic-conventions version they
follow:

- attributes `gen_ai.input.messages`, `gen_ai.output.messages` and `gen_ai.system_instructions`
  (messages made of typed `parts`), as a JSON string or a structured value; the same attributes
  on a `gen_ai.client.inference.operation.details` event;
- span events `gen_ai.system.message`, `gen_ai.user.message`, `gen_ai.assistant.message`,
  `gen_ai.tool.message` and `gen_ai.choice`;
- attributes `gen_ai.prompt` and `gen_ai.completion` (JSON), on the span or on the events
  `gen_ai.content.prompt` and `gen_ai.content.completion`.

Storing one shape means the console, search and `telemetry.store_content: redacted` (which masks
the values of `content`, `text`, `arguments` … in the recorder) treat ingested content exactly as
proxied content.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

_ROLE_EVENTS: Final = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
_DETAILS_EVENT: Final = "gen_ai.client.inference.operation.details"


def prompt_and_response(
    attributes: dict[str, Any], events: list[tuple[str, dict[str, Any]]]
) -> tuple[list[dict[str, Any]] | None, list[dict[str, Any]] | None]:
    """The messages sent and the messages answered, each None when the span carries none."""
    sources = [attributes, *(event for name, event in events if name == _DETAILS_EVENT)]
    prompt: list[dict[str, Any]] | None = None
    response: list[dict[str, Any]] | None = None
    for source in sources:
        if prompt is None:
            prompt = _structured_prompt(source)
        if response is None:
            response = _messages(_json(source.get("gen_ai.output.messages")))
    if prompt is None:
        prompt = _event_prompt(events) or _legacy(attributes, events, "prompt")
    if response is None:
        response = _event_choices(events) or _legacy(attributes, events, "completion")
    return prompt, response


def _structured_prompt(source: dict[str, Any]) -> list[dict[str, Any]] | None:
    messages = _messages(_json(source.get("gen_ai.input.messages")))
    instructions = _json(source.get("gen_ai.system_instructions"))
    if isinstance(instructions, list) and instructions:
        system = _from_parts("system", instructions)
        messages = [system, *(messages or [])]
    return messages


def _json(value: Any) -> Any:
    """Structured values arrive decoded; JSON strings are decoded here (None when not JSON)."""
    if isinstance(value, str):
        try:
            return msgspec.json.decode(value)
        except msgspec.DecodeError:
            return None
    return value


def _messages(value: Any) -> list[dict[str, Any]] | None:
    if not isinstance(value, list) or not value:
        return None
    return [_openai_message(item) for item in value if isinstance(item, dict)] or None


def _openai_message(message: dict[str, Any]) -> dict[str, Any]:
    parts = message.get("parts")
    if not isinstance(parts, list):
        return message  # already OpenAI-shaped (or shaped unknowably): kept as sent
    converted = _from_parts(str(message.get("role") or "user"), parts)
    for key in ("name", "finish_reason"):
        if isinstance(message.get(key), str):
            converted[key] = message[key]
    return converted


def _from_parts(role: str, parts: list[Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": role}
    texts: list[str] = []
    others: list[dict[str, Any]] = []
    tool_calls: list[dict[str, Any]] = []
    for part in parts:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind == "text":
            texts.append(_text(part.get("content")))
        elif kind == "tool_call":
            tool_calls.append(
                {
                    "id": part.get("id"),
                    "type": "function",
                    "function": {
                        "name": part.get("name"),
                        "arguments": _text(part.get("arguments")),
                    },
                }
            )
        elif kind == "tool_call_response":
            message["tool_call_id"] = part.get("id")
            texts.append(_text(part.get("response")))
        elif kind == "reasoning":
            message["reasoning_content"] = _text(part.get("content"))
        else:
            others.append(part)
    if others:
        message["content"] = [{"type": "text", "text": text} for text in texts] + others
    else:
        message["content"] = "".join(texts) if texts else None
    if tool_calls:
        message["tool_calls"] = tool_calls
    return message


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return msgspec.json.encode(value).decode()


def _event_prompt(events: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]] | None:
    messages = []
    for name, attributes in events:
        role = _ROLE_EVENTS.get(name)
        if role is None:
            continue
        message: dict[str, Any] = {"role": role, "content": _event_content(attributes)}
        tool_calls = _json(attributes.get("tool_calls"))
        if isinstance(tool_calls, list):
            message["tool_calls"] = tool_calls
        if isinstance(attributes.get("id"), str) and role == "tool":
            message["tool_call_id"] = attributes["id"]
        messages.append(message)
    return messages or None


def _event_content(attributes: dict[str, Any]) -> Any:
    content = attributes.get("content", attributes.get("gen_ai.event.content"))
    decoded = _json(content) if isinstance(content, str) and content[:1] in "[{" else None
    if isinstance(decoded, dict) and "content" in decoded:
        return decoded["content"]
    return content


def _event_choices(events: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]] | None:
    choices = []
    for name, attributes in events:
        if name != "gen_ai.choice":
            continue
        message = _json(attributes.get("message"))
        if not isinstance(message, dict):
            message = {"content": _event_content(attributes)}
        choices.append({"role": "assistant", **message})
    return choices or None


def _legacy(
    attributes: dict[str, Any], events: list[tuple[str, dict[str, Any]]], which: str
) -> list[dict[str, Any]] | None:
    key = f"gen_ai.{which}"
    value = attributes.get(key)
    if value is None:
        value = next(
            (
                event[key]
                for name, event in events
                if name == f"gen_ai.content.{which}" and key in event
            ),
            None,
        )
    decoded = _json(value)
    if isinstance(decoded, list):
        return _messages(decoded)
    if isinstance(value, str):
        role = "user" if which == "prompt" else "assistant"
        return [{"role": role, "content": value}]
    return None

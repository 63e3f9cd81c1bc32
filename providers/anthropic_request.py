"""OpenAI chat requests as Anthropic Messages API requests.

Anthropic rejects fields it does not know, so the request is built up from the fields that have
a meaning there; everything else the client sent is left out (see docs/providers.md for the
list). A request that cannot be expressed at all raises `UpstreamFailure` with status 400 and
the offending field in `param`, so the client gets a clear error before anything is sent.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Collection
from typing import Any

import msgspec

from providers.errors import UpstreamFailure

DEFAULT_MAX_TOKENS = 4096
MAX_TEMPERATURE = 1.0
IMAGE_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})

_DATA_URL = re.compile(r"^data:(?P<media>[\w.+-]+/[\w.+-]+)(?:;[^,;]*)*;base64,(?P<data>.*)$", re.S)
_SYSTEM_ROLES = ("system", "developer")
_JSON_OBJECT_INSTRUCTION = (
    "Answer with a single JSON object and nothing else: no prose, no code fences."
)
_JSON_SCHEMA_INSTRUCTION = (
    "Answer with a single JSON value that conforms to this JSON Schema, and nothing else "
    "(no prose, no code fences):\n"
)


class InvalidRequest(UpstreamFailure):
    """A client request that has no Anthropic equivalent; answered as a 400."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(
            "http", message, status=400, error_type="invalid_request_error", param=param
        )


def messages_request(
    payload: dict[str, Any],
    model: str,
    *,
    stream: bool,
    forward_fields: Collection[str] = (),
) -> dict[str, Any]:
    """The Messages API body for an OpenAI chat request.

    `forward_fields` names client fields copied through unchanged (for example `top_k`, or the
    mock provider's `mock` control field).
    """
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array", "messages")
    system_texts, turns = _conversation(messages)
    instruction = _response_format_instruction(payload.get("response_format"))
    if instruction:
        system_texts.append(instruction)

    body: dict[str, Any] = {
        "model": model,
        "max_tokens": _max_tokens(payload),
        "messages": turns,
    }
    if system_texts:
        body["system"] = "\n\n".join(system_texts)
    stop = _stop_sequences(payload.get("stop"))
    if stop:
        body["stop_sequences"] = stop
    temperature = _number(payload, "temperature")
    if temperature is not None:
        body["temperature"] = min(temperature, MAX_TEMPERATURE)
    top_p = _number(payload, "top_p")
    if top_p is not None:
        body["top_p"] = top_p
    user = payload.get("user")
    if isinstance(user, str) and user:
        body["metadata"] = {"user_id": user}
    tools = _tools(payload.get("tools"))
    if tools:
        body["tools"] = tools
        choice = _tool_choice(payload.get("tool_choice"), payload.get("parallel_tool_calls"))
        if choice is not None:
            body["tool_choice"] = choice
    if stream:
        body["stream"] = True
    n = payload.get("n")
    if n is not None and n != 1:
        raise InvalidRequest("Anthropic models return one choice: 'n' must be 1", "n")
    for name in forward_fields:
        if name in payload:
            body[name] = payload[name]
    return body


def _conversation(messages: list[Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """System texts and user/assistant turns; consecutive turns of one role are merged."""
    system_texts: list[str] = []
    turns: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise InvalidRequest("each message must be an object", where)
        role = message.get("role")
        if role in _SYSTEM_ROLES:
            text = _plain_text(message.get("content"), f"{where}.content")
            if text:
                system_texts.append(text)
            continue
        if role == "user":
            turn_role, blocks = "user", _user_blocks(message, where)
        elif role == "assistant":
            turn_role, blocks = "assistant", _assistant_blocks(message, where)
        elif role == "tool":
            turn_role, blocks = "user", [_tool_result(message, where)]
        else:
            raise InvalidRequest(f"unsupported message role {role!r}", f"{where}.role")
        if not blocks:
            continue
        if turns and turns[-1]["role"] == turn_role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": turn_role, "content": blocks})
    if not turns:
        raise InvalidRequest("the conversation needs at least one user message", "messages")
    return system_texts, turns


def _user_blocks(message: dict[str, Any], where: str) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        blocks = [_text_block(content)] if content else []
    elif isinstance(content, list):
        parts = (
            _user_part(part, f"{where}.content[{index}]") for index, part in enumerate(content)
        )
        blocks = [block for block in parts if block is not None]
    else:
        raise InvalidRequest("user content must be a string or an array of parts", where)
    _apply_cache_control(message, blocks)
    return blocks


def _user_part(part: Any, where: str) -> dict[str, Any] | None:
    if not isinstance(part, dict):
        raise InvalidRequest("each content part must be an object", where)
    kind = part.get("type")
    if kind == "text":
        text = part.get("text")
        if not isinstance(text, str):
            raise InvalidRequest("a text part needs a string 'text'", f"{where}.text")
        block = _text_block(text) if text else None
    elif kind == "image_url":
        block = _image_block(part.get("image_url"), f"{where}.image_url")
    else:
        raise InvalidRequest(f"content parts of type {kind!r} are not supported", where)
    if block is not None and isinstance(part.get("cache_control"), dict):
        block["cache_control"] = part["cache_control"]
    return block


def _image_block(image: Any, where: str) -> dict[str, Any]:
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise InvalidRequest("an image_url part needs 'image_url.url'", where)
    if not url.startswith("data:"):
        return {"type": "image", "source": {"type": "url", "url": url}}
    match = _DATA_URL.match(url)
    if match is None:
        raise InvalidRequest("an image data URL must be 'data:<media type>;base64,<data>'", where)
    media_type = match["media"].lower()
    if media_type not in IMAGE_MEDIA_TYPES:
        supported = ", ".join(sorted(IMAGE_MEDIA_TYPES))
        raise InvalidRequest(f"image type {media_type!r} is not supported ({supported})", where)
    data = match["data"]
    try:
        binascii.a2b_base64(data.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise InvalidRequest("the image data URL is not valid base64", where) from None
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _assistant_blocks(message: dict[str, Any], where: str) -> list[dict[str, Any]]:
    text = _plain_text(message.get("content"), f"{where}.content")
    blocks = [_text_block(text)] if text else []
    tool_calls = message.get("tool_calls")
    if tool_calls is not None:
        if not isinstance(tool_calls, list):
            raise InvalidRequest("'tool_calls' must be an array", f"{where}.tool_calls")
        blocks.extend(
            _tool_use(call, f"{where}.tool_calls[{index}]") for index, call in enumerate(tool_calls)
        )
    _apply_cache_control(message, blocks)
    return blocks


def _tool_use(call: Any, where: str) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise InvalidRequest("a tool call needs 'function.name'", where)
    call_id = call.get("id")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequest("a tool call needs an 'id'", f"{where}.id")
    arguments = function.get("arguments") or "{}"
    try:
        tool_input = msgspec.json.decode(arguments) if isinstance(arguments, str) else arguments
    except (msgspec.DecodeError, RecursionError):  # nested deeper than JSON decoding goes
        raise InvalidRequest(
            "tool call arguments must be a JSON object", f"{where}.function.arguments"
        ) from None
    if not isinstance(tool_input, dict):
        raise InvalidRequest(
            "tool call arguments must be a JSON object", f"{where}.function.arguments"
        )
    return {"type": "tool_use", "id": call_id, "name": function["name"], "input": tool_input}


def _tool_result(message: dict[str, Any], where: str) -> dict[str, Any]:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequest("a tool message needs a 'tool_call_id'", f"{where}.tool_call_id")
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": call_id}
    text = _plain_text(message.get("content"), f"{where}.content")
    if text:
        block["content"] = text
    if isinstance(message.get("cache_control"), dict):
        block["cache_control"] = message["cache_control"]
    return block


def _plain_text(content: Any, where: str) -> str:
    """The text of a string content or of an array of text parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for index, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") not in ("text", "refusal"):
                raise InvalidRequest("only text parts are allowed here", f"{where}[{index}]")
            text = part.get("text", part.get("refusal"))
            if not isinstance(text, str):
                raise InvalidRequest("a text part needs a string 'text'", f"{where}[{index}]")
            texts.append(text)
        return "\n".join(text for text in texts if text)
    raise InvalidRequest("content must be a string, an array of text parts or null", where)


def _text_block(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _apply_cache_control(message: dict[str, Any], blocks: list[dict[str, Any]]) -> None:
    """A message-level `cache_control` marks the message's last block as a cache breakpoint."""
    control = message.get("cache_control")
    if isinstance(control, dict) and blocks:
        blocks[-1]["cache_control"] = control


def _response_format_instruction(response_format: Any) -> str | None:
    if response_format is None:
        return None
    if not isinstance(response_format, dict):
        raise InvalidRequest("'response_format' must be an object", "response_format")
    kind = response_format.get("type")
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        return _JSON_OBJECT_INSTRUCTION
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise InvalidRequest(
                "'response_format.json_schema.schema' must be an object",
                "response_format.json_schema",
            )
        return _JSON_SCHEMA_INSTRUCTION + msgspec.json.encode(schema).decode()
    raise InvalidRequest(f"unsupported response_format type {kind!r}", "response_format.type")


def _max_tokens(payload: dict[str, Any]) -> int:
    for name in ("max_completion_tokens", "max_tokens"):
        value = payload.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InvalidRequest(f"'{name}' must be a positive integer", name)
        return value
    return DEFAULT_MAX_TOKENS


def _stop_sequences(stop: Any) -> list[str]:
    if stop is None:
        return []
    if isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list) or not all(isinstance(item, str) for item in stop):
        raise InvalidRequest("'stop' must be a string or an array of strings", "stop")
    return [item for item in stop if item]


def _number(payload: dict[str, Any], name: str) -> float | None:
    value = payload.get(name)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise InvalidRequest(f"'{name}' must be a non-negative number", name)
    return value


def _tools(tools: Any) -> list[dict[str, Any]]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise InvalidRequest("'tools' must be an array", "tools")
    converted = []
    for index, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str) or not name:
            raise InvalidRequest(
                "each tool needs a 'function' with a 'name'", f"tools[{index}].function.name"
            )
        assert isinstance(function, dict)
        schema = function.get("parameters") or {"type": "object", "properties": {}}
        entry: dict[str, Any] = {"name": name, "input_schema": schema}
        description = function.get("description")
        if isinstance(description, str) and description:
            entry["description"] = description
        if isinstance(tool.get("cache_control"), dict):
            entry["cache_control"] = tool["cache_control"]
        converted.append(entry)
    return converted


def _tool_choice(choice: Any, parallel_tool_calls: Any) -> dict[str, Any] | None:
    converted: dict[str, Any] | None
    if choice is None:
        converted = None if parallel_tool_calls is not False else {"type": "auto"}
    elif choice == "auto":
        converted = {"type": "auto"}
    elif choice == "required":
        converted = {"type": "any"}
    elif choice == "none":
        return {"type": "none"}
    elif isinstance(choice, dict):
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str) or not name:
            raise InvalidRequest("a named 'tool_choice' needs 'function.name'", "tool_choice")
        converted = {"type": "tool", "name": name}
    else:
        raise InvalidRequest(
            "'tool_choice' must be 'none', 'auto', 'required' or a function object", "tool_choice"
        )
    if converted is not None and parallel_tool_calls is False:
        converted["disable_parallel_tool_use"] = True
    return converted

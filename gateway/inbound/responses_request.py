"""A Responses API request (`POST /v1/responses`) as the pipeline's chat completion request.

Translated: `instructions` (a system message first), `input` as a string or items (messages
with text and image parts, earlier `function_call` items as assistant tool calls and
`function_call_output` items as tool messages), function `tools`, `tool_choice`,
`parallel_tool_calls`, `temperature`, `top_p`, `max_output_tokens`, `text.format`,
`reasoning.effort` and `user`. The conversation of a `previous_response_id` comes in as
`history`: the items that response was given plus what it answered.

What chat cannot express (hosted tools, file inputs, item references, background runs, stored
prompts, conversations) is refused with a 400 naming the parameter. Fields this module does not
know pass through to the chat request untouched, as on every other route.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from gateway.entry.validation import type_error, type_name
from gateway.errors import invalid_request
from providers.usage import MAX_OUTPUT_TOKENS

RESPONSES_ONLY: Final = frozenset(
    {
        "input",
        "instructions",
        "max_output_tokens",
        "metadata",
        "previous_response_id",
        "reasoning",
        "store",
        "stream_options",
        "text",
        "tool_choice",
        "tools",
        "truncation",
        "include",
    }
)
"""Fields of a Responses request that are read here and never sent on as they are."""

REFUSED: Final = {
    "background": "background runs are not supported by this gateway",
    "conversation": "conversations are not supported by this gateway; use previous_response_id",
    "prompt": "stored prompt templates are not supported by this gateway",
}
"""Fields with a meaning chat cannot carry: a request that sets them is refused."""

_MESSAGE_ROLES: Final = frozenset({"user", "system", "developer", "assistant"})
_TOOL_CHOICE_MODES: Final = frozenset({"auto", "none", "required"})
_TRUNCATION: Final = frozenset({"auto", "disabled"})


class ResponsesRequest(msgspec.Struct, kw_only=True):
    """What a Responses request became: the chat request and what the response object and the
    stored state need from the original."""

    chat: dict[str, Any]
    model: str
    input_items: list[Any]
    """The conversation so far as Responses items: `history` followed by this request's input."""
    stream: bool
    store: bool
    previous_response_id: str | None
    echo: dict[str, Any]
    """The request's settings as the response object repeats them."""


def previous_response_id(payload: dict[str, Any]) -> str | None:
    """The `previous_response_id` a request continues from, checked."""
    value = payload.get("previous_response_id")
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise type_error("previous_response_id", "a non-empty string", value)
    return value


def translate_request(payload: dict[str, Any], history: list[Any]) -> ResponsesRequest:
    """The chat request for a Responses request; a 400 for anything it cannot carry."""
    for name, why in REFUSED.items():
        if payload.get(name) not in (None, False):
            raise invalid_request(f"'{name}' is not supported: {why}.", param=name)
    model = payload.get("model")
    if model is None:
        raise invalid_request("Missing required parameter: 'model'.", param="model")
    if not isinstance(model, str) or not model:
        raise type_error("model", "a non-empty string", model)
    items = _input_items(payload.get("input"))
    conversation = [*history, *items]
    messages: list[dict[str, Any]] = []
    instructions = payload.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise type_error("instructions", "a string", instructions)
        messages.append({"role": "system", "content": instructions})
    messages.extend(items_to_messages(history, "previous_response_id"))
    messages.extend(items_to_messages(items, "input"))
    if not messages:
        raise invalid_request(
            "Missing required parameter: 'input'.", param="input", code="empty_array"
        )
    chat: dict[str, Any] = {
        name: value
        for name, value in payload.items()
        if name not in RESPONSES_ONLY and name not in REFUSED
    }
    chat["model"] = model
    chat["messages"] = messages
    stream = _flag(payload, "stream", default=False)
    store = _flag(payload, "store", default=True)
    chat["stream"] = stream
    if stream:
        chat["stream_options"] = {"include_usage": True}
    _copy_number(payload, chat, "temperature")
    _copy_number(payload, chat, "top_p")
    limit = _max_output_tokens(payload)
    if limit is not None:
        chat["max_completion_tokens"] = limit
    user = payload.get("user")
    if user is not None and not isinstance(user, str):
        raise type_error("user", "a string", user)
    tools = _tools(payload.get("tools"))
    if tools:
        chat["tools"] = tools
    tool_choice = _tool_choice(payload.get("tool_choice"))
    if tool_choice is not None:
        chat["tool_choice"] = tool_choice
    response_format = _response_format(payload.get("text"))
    if response_format is not None:
        chat["response_format"] = response_format
    effort = _reasoning_effort(payload.get("reasoning"))
    if effort is not None:
        chat["reasoning_effort"] = effort
    metadata = _metadata(payload.get("metadata"))
    truncation = payload.get("truncation")
    if truncation is not None and truncation not in _TRUNCATION:
        raise invalid_request(
            "Invalid value for 'truncation': expected 'auto' or 'disabled'.",
            param="truncation",
            code="invalid_value",
        )
    return ResponsesRequest(
        chat=chat,
        model=model,
        input_items=conversation,
        stream=stream,
        store=store,
        previous_response_id=previous_response_id(payload),
        echo={
            "instructions": instructions,
            "max_output_tokens": limit,
            "metadata": metadata,
            "parallel_tool_calls": payload.get("parallel_tool_calls", True),
            "previous_response_id": payload.get("previous_response_id"),
            "reasoning": {"effort": effort, "summary": None},
            "store": store,
            "temperature": payload.get("temperature"),
            "text": payload.get("text") or {"format": {"type": "text"}},
            "tool_choice": payload.get("tool_choice", "auto"),
            "tools": payload.get("tools") or [],
            "top_p": payload.get("top_p"),
            "truncation": truncation or "disabled",
            "user": user,
        },
    )


def items_to_messages(items: list[Any], param: str) -> list[dict[str, Any]]:
    """Responses items as chat messages; `param` names the list in errors."""
    messages: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        where = f"{param}[{index}]"
        if not isinstance(item, dict):
            raise type_error(where, "an object", item)
        kind = item.get("type", "message")
        if kind == "message":
            messages.append(_message(item, where))
        elif kind == "function_call":
            _function_call(item, where, messages)
        elif kind == "function_call_output":
            messages.append(_function_call_output(item, where))
        elif kind == "reasoning":
            continue  # a model's own reasoning summary: nothing chat can send back
        else:
            raise invalid_request(
                f"Invalid value for '{where}.type': input items of type '{_shown(kind)}' are "
                "not supported by this gateway; send messages, function_call and "
                "function_call_output items.",
                param=f"{where}.type",
                code="invalid_value",
            )
    return messages


def _input_items(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    if not isinstance(value, list):
        raise type_error("input", "a string or an array", value)
    return value


def _message(item: dict[str, Any], where: str) -> dict[str, Any]:
    role = item.get("role")
    if role not in _MESSAGE_ROLES:
        raise invalid_request(
            f"Invalid value for '{where}.role': expected one of "
            f"{', '.join(sorted(_MESSAGE_ROLES))}.",
            param=f"{where}.role",
            code="invalid_value",
        )
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise type_error(f"{where}.content", "a string or an array", content)
    if role == "assistant":
        return {"role": role, "content": _assistant_text(content, f"{where}.content")}
    return {
        "role": role,
        "content": [_part(part, f"{where}.content[{i}]") for i, part in enumerate(content)],
    }


def _assistant_text(parts: list[Any], where: str) -> str:
    """An assistant message's parts (its earlier output) as the one text chat takes back."""
    texts = []
    for index, part in enumerate(parts):
        if not isinstance(part, dict):
            raise type_error(f"{where}[{index}]", "an object", part)
        kind = part.get("type")
        text = part.get("refusal") if kind == "refusal" else part.get("text")
        if kind not in ("output_text", "input_text", "refusal") or not isinstance(text, str):
            raise invalid_request(
                f"Invalid '{where}[{index}]': an assistant message's parts are output_text "
                "or refusal, each with its text.",
                param=f"{where}[{index}]",
                code="invalid_value",
            )
        texts.append(text)
    return "".join(texts)


def _part(part: Any, where: str) -> dict[str, Any]:
    if not isinstance(part, dict):
        raise type_error(where, "an object", part)
    kind = part.get("type")
    if kind in ("input_text", "output_text"):
        text = part.get("text")
        if not isinstance(text, str):
            raise type_error(f"{where}.text", "a string", text)
        return {"type": "text", "text": text}
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str) or not url:
            raise invalid_request(
                f"Invalid '{where}': input_image needs an 'image_url' (a URL or a data URL); "
                "file_id images are not supported by this gateway.",
                param=f"{where}.image_url",
                code="invalid_value",
            )
        image: dict[str, Any] = {"url": url}
        detail = part.get("detail")
        if detail is not None:
            image["detail"] = detail
        return {"type": "image_url", "image_url": image}
    raise invalid_request(
        f"Invalid value for '{where}.type': content parts of type '{_shown(kind)}' are not "
        "supported by this gateway; send input_text or input_image.",
        param=f"{where}.type",
        code="invalid_value",
    )


def _function_call(item: dict[str, Any], where: str, messages: list[dict[str, Any]]) -> None:
    """A call the model made earlier: a tool call of an assistant message (consecutive calls,
    and a call right after the assistant's text, share one message as chat has them)."""
    call_id = _string(item, "call_id", where)
    name = _string(item, "name", where)
    arguments = item.get("arguments", "")
    if not isinstance(arguments, str):
        raise type_error(f"{where}.arguments", "a string", arguments)
    call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "assistant" and isinstance(last["content"], str | None):
        last.setdefault("tool_calls", []).append(call)
        return
    messages.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _function_call_output(item: dict[str, Any], where: str) -> dict[str, Any]:
    call_id = _string(item, "call_id", where)
    output = item.get("output")
    if isinstance(output, list):
        texts = []
        for index, part in enumerate(output):
            converted = _part(part, f"{where}.output[{index}]")
            if converted["type"] != "text":
                raise invalid_request(
                    f"Invalid '{where}.output[{index}]': only text goes back to the model as "
                    "a tool's output through this gateway.",
                    param=f"{where}.output[{index}]",
                    code="invalid_value",
                )
            texts.append(converted["text"])
        output = "".join(texts)
    if not isinstance(output, str):
        raise type_error(f"{where}.output", "a string or an array", output)
    return {"role": "tool", "tool_call_id": call_id, "content": output}


def _tools(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise type_error("tools", "an array", value)
    tools = []
    for index, tool in enumerate(value):
        where = f"tools[{index}]"
        if not isinstance(tool, dict):
            raise type_error(where, "an object", tool)
        kind = tool.get("type")
        if kind != "function":
            raise invalid_request(
                f"Invalid value for '{where}.type': '{_shown(kind)}' tools are not supported "
                "by this gateway; only function tools are.",
                param=f"{where}.type",
                code="unsupported_tool",
            )
        function: dict[str, Any] = {"name": _string(tool, "name", where)}
        for name in ("description", "parameters", "strict"):
            if tool.get(name) is not None:
                function[name] = tool[name]
        tools.append({"type": "function", "function": function})
    return tools


def _tool_choice(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str) and value in _TOOL_CHOICE_MODES:
        return value
    if isinstance(value, dict) and value.get("type") == "function":
        return {"type": "function", "function": {"name": _string(value, "name", "tool_choice")}}
    raise invalid_request(
        "Invalid value for 'tool_choice': expected 'auto', 'none', 'required' or "
        '{"type": "function", "name": ...}.',
        param="tool_choice",
        code="invalid_value",
    )


def _response_format(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise type_error("text", "an object", value)
    form = value.get("format")
    if form is None:
        return None
    if not isinstance(form, dict):
        raise type_error("text.format", "an object", form)
    kind = form.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        schema = form.get("schema")
        if not isinstance(schema, dict):
            raise type_error("text.format.schema", "an object", schema)
        spec: dict[str, Any] = {"name": _string(form, "name", "text.format"), "schema": schema}
        for name in ("description", "strict"):
            if form.get(name) is not None:
                spec[name] = form[name]
        return {"type": "json_schema", "json_schema": spec}
    raise invalid_request(
        "Invalid value for 'text.format.type': expected 'text', 'json_object' or 'json_schema'.",
        param="text.format.type",
        code="invalid_value",
    )


def _reasoning_effort(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise type_error("reasoning", "an object", value)
    effort = value.get("effort")
    if effort is not None and not isinstance(effort, str):
        raise type_error("reasoning.effort", "a string", effort)
    return effort


def _metadata(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise type_error("metadata", "an object", value)
    if len(value) > 16 or not all(
        isinstance(v, str) and len(k) <= 64 and len(v) <= 512 for k, v in value.items()
    ):
        raise invalid_request(
            "Invalid 'metadata': at most 16 pairs, keys up to 64 characters and string values "
            "up to 512 characters.",
            param="metadata",
            code="invalid_value",
        )
    return value


def _max_output_tokens(payload: dict[str, Any]) -> int | None:
    value = payload.get("max_output_tokens")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise type_error("max_output_tokens", "an integer", value)
    if not 1 <= value <= MAX_OUTPUT_TOKENS:
        raise invalid_request(
            f"Invalid 'max_output_tokens': expected an integer from 1 to {MAX_OUTPUT_TOKENS}.",
            param="max_output_tokens",
            code="invalid_value",
        )
    return value


def _copy_number(payload: dict[str, Any], chat: dict[str, Any], name: str) -> None:
    value = payload.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise type_error(name, "a number", value)
    chat[name] = value


def _flag(payload: dict[str, Any], name: str, *, default: bool) -> bool:
    value = payload.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise type_error(name, "a boolean", value)
    return value


def _string(item: dict[str, Any], name: str, where: str) -> str:
    value = item.get(name)
    if not isinstance(value, str) or not value:
        raise invalid_request(
            f"Missing or invalid '{where}.{name}': expected a non-empty string.",
            param=f"{where}.{name}",
        )
    return value


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else type_name(value)
    return text if len(text) <= 40 else text[:40] + "…"

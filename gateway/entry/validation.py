"""Request validation for the OpenAI routes: types of the fields the gateway reads, nothing more.

The body stays a plain dict so unknown fields pass through untouched; deeper checks are the
provider's job. Every failure is a 400 naming the offending parameter.
"""

from __future__ import annotations

from typing import Any

from gateway.entry.json_body import decode_json_body, unparseable
from gateway.errors import GatewayError, invalid_request
from providers.usage import COUNTED_PARAMETERS

MESSAGE_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


def decode_object(body: bytes) -> dict[str, Any]:
    payload = decode_json_body(body)
    if not isinstance(payload, dict):
        raise unparseable("it is not a JSON object")
    return payload


def type_error(param: str, expected: str, value: Any) -> GatewayError:
    """The 400 for a parameter of the wrong JSON type, naming what was sent."""
    return invalid_request(
        f"Invalid type for '{param}': expected {expected}, but got {type_name(value)}.",
        param=param,
        code="invalid_type",
    )


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _model(payload: dict[str, Any]) -> str:
    model = payload.get("model")
    if model is None:
        raise invalid_request("You must provide a model parameter.", param="model")
    if not isinstance(model, str) or not model:
        raise type_error("model", "a non-empty string", model)
    return model


_Types = type | tuple[type, ...]

_CHAT_TYPED: tuple[tuple[str, _Types, str], ...] = (
    ("temperature", (int, float), "a number"),
    ("top_p", (int, float), "a number"),
    ("tools", list, "an array"),
    ("response_format", dict, "an object"),
    ("stream_options", dict, "an object"),
    ("user", str, "a string"),
)
"""Optional chat parameters the gateway reads, checked in this order after `stream` and the
counted ones (the first wrong one is the one reported)."""


def _optional(payload: dict[str, Any], name: str, types: _Types, expected: str) -> None:
    value = payload.get(name)
    if value is not None:
        _typed(name, value, types, expected)


def _typed(name: str, value: Any, types: _Types, expected: str) -> None:
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise type_error(name, expected, value)
    if not isinstance(value, types):
        raise type_error(name, expected, value)


def _counted(name: str, value: Any, most: int) -> None:
    """A count the gateway reserves capacity by: a whole number from 1 to `most` (when present)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise type_error(name, "an integer", value)
    if not 1 <= value <= most:
        shown = str(value) if -(10**12) < value < 10**12 else f"{str(value)[:12]}..."
        raise invalid_request(
            f"Invalid '{name}': {shown}. Expected an integer from 1 to {most}.",
            param=name,
            code="invalid_value",
        )


def validate_chat(payload: dict[str, Any]) -> str:
    """Check a chat completion request; return its model."""
    model = _model(payload)
    messages = payload.get("messages")
    if messages is None:
        raise invalid_request("Missing required parameter: 'messages'.", param="messages")
    if not isinstance(messages, list):
        raise type_error("messages", "an array", messages)
    if not messages:
        raise invalid_request(
            "Invalid 'messages': empty array. Expected an array with minimum length 1.",
            param="messages",
            code="empty_array",
        )
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise type_error(f"messages[{index}]", "an object", message)
        role = message.get("role")
        if role is None:
            raise invalid_request(
                f"Missing required parameter: 'messages[{index}].role'.",
                param=f"messages[{index}].role",
            )
        if not isinstance(role, str) or role not in MESSAGE_ROLES:
            raise invalid_request(
                f"Invalid value for 'messages[{index}].role': expected one of "
                f"{', '.join(sorted(MESSAGE_ROLES))}.",
                param=f"messages[{index}].role",
                code="invalid_value",
            )
        content = message.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise type_error(f"messages[{index}].content", "a string or an array", content)
    _optional(payload, "stream", bool, "a boolean")
    for name, most in COUNTED_PARAMETERS.items():
        value = payload.get(name)
        if value is not None:
            _counted(name, value, most)
    for name, types, expected in _CHAT_TYPED:
        value = payload.get(name)
        if value is not None:
            _typed(name, value, types, expected)
    if payload.get("stream_options") is not None and not payload.get("stream"):
        raise invalid_request(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            param="stream_options",
        )
    return model


def validate_embeddings(payload: dict[str, Any]) -> str:
    """Check an embeddings request; return its model."""
    model = _model(payload)
    value = payload.get("input")
    if value is None:
        raise invalid_request("Missing required parameter: 'input'.", param="input")
    if not isinstance(value, str | list):
        raise type_error("input", "a string or an array", value)
    if isinstance(value, list) and not value:
        raise invalid_request(
            "Invalid 'input': empty array. Expected an array with minimum length 1.",
            param="input",
            code="empty_array",
        )
    _optional(payload, "dimensions", int, "an integer")
    _optional(payload, "encoding_format", str, "a string")
    _optional(payload, "user", str, "a string")
    return model

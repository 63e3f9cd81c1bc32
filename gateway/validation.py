"""Request validation for the OpenAI routes: types of the fields the gateway reads, nothing more.

The body stays a plain dict so unknown fields pass through untouched; deeper checks are the
provider's job. Every failure is a 400 naming the offending parameter.
"""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.errors import GatewayError, invalid_json, invalid_request

MESSAGE_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_decode = msgspec.json.Decoder().decode


def decode_object(body: bytes) -> dict[str, Any]:
    if not body:
        raise invalid_request("The request body is empty; send a JSON object.")
    try:
        payload = _decode(body)
    except (msgspec.DecodeError, RecursionError):
        raise invalid_json() from None
    if not isinstance(payload, dict):
        raise invalid_json()
    return payload


def _type_error(param: str, expected: str, value: Any) -> GatewayError:
    return invalid_request(
        f"Invalid type for '{param}': expected {expected}, but got {_type_name(value)}.",
        param=param,
        code="invalid_type",
    )


def _type_name(value: Any) -> str:
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
        raise _type_error("model", "a non-empty string", model)
    return model


def _optional(
    payload: dict[str, Any], name: str, types: type | tuple[type, ...], expected: str
) -> None:
    value = payload.get(name)
    if value is None:
        return
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise _type_error(name, expected, value)
    if not isinstance(value, types):
        raise _type_error(name, expected, value)


def validate_chat(payload: dict[str, Any]) -> str:
    """Check a chat completion request; return its model."""
    model = _model(payload)
    messages = payload.get("messages")
    if messages is None:
        raise invalid_request("Missing required parameter: 'messages'.", param="messages")
    if not isinstance(messages, list):
        raise _type_error("messages", "an array", messages)
    if not messages:
        raise invalid_request(
            "Invalid 'messages': empty array. Expected an array with minimum length 1.",
            param="messages",
            code="empty_array",
        )
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _type_error(f"messages[{index}]", "an object", message)
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
        if content is not None and not isinstance(content, str | list):
            raise _type_error(f"messages[{index}].content", "a string or an array", content)
    _optional(payload, "stream", bool, "a boolean")
    _optional(payload, "n", int, "an integer")
    _optional(payload, "max_tokens", int, "an integer")
    _optional(payload, "max_completion_tokens", int, "an integer")
    _optional(payload, "temperature", (int, float), "a number")
    _optional(payload, "top_p", (int, float), "a number")
    _optional(payload, "tools", list, "an array")
    _optional(payload, "response_format", dict, "an object")
    _optional(payload, "stream_options", dict, "an object")
    _optional(payload, "user", str, "a string")
    n = payload.get("n")
    if n is not None and n < 1:
        raise invalid_request("Invalid 'n': must be at least 1.", param="n", code="invalid_value")
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
        raise _type_error("input", "a string or an array", value)
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

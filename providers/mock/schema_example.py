"""Smallest JSON value that satisfies a JSON Schema, for tool arguments and structured output.

Only what tool and response schemas commonly use is understood: `type`, `properties`,
`required`, `items`, `enum`, `const`, `default`, `anyOf`/`oneOf`/`allOf`, local `$ref`,
`minimum`, `minLength`, `minItems`, `format`. Objects get their required properties only.
"""

from __future__ import annotations

import math
from typing import Any, TypeGuard

_MAX_DEPTH = 8
_MAX_ARRAY_ITEMS = 3

_STRING_BY_FORMAT = {
    "date-time": "2024-01-01T00:00:00Z",
    "date": "2024-01-01",
    "time": "00:00:00",
    "email": "mock@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "127.0.0.1",
}


def example_from_schema(schema: Any) -> Any:
    return _example(schema, root=schema, depth=0)


def _example(schema: Any, *, root: Any, depth: int) -> Any:
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return None
    if "const" in schema:
        return schema["const"]
    if "default" in schema:
        return schema["default"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    reference = schema.get("$ref")
    if isinstance(reference, str):
        return _example(_resolve(reference, root), root=root, depth=depth + 1)
    for combinator in ("anyOf", "oneOf", "allOf"):
        options = schema.get(combinator)
        if isinstance(options, list) and options:
            return _example(options[0], root=root, depth=depth + 1)
    schema_type = schema.get("type")
    if isinstance(schema_type, list):
        schema_type = next((kind for kind in schema_type if kind != "null"), "null")
    if schema_type is None and "properties" in schema:
        schema_type = "object"
    match schema_type:
        case "object":
            properties = schema.get("properties")
            required = schema.get("required")
            if not isinstance(properties, dict) or not isinstance(required, list):
                return {}
            return {
                name: _example(properties.get(name, {}), root=root, depth=depth + 1)
                for name in required
                if isinstance(name, str)
            }
        case "array":
            count = schema.get("minItems", 0)
            count = min(count, _MAX_ARRAY_ITEMS) if isinstance(count, int) and count > 0 else 0
            item = _example(schema.get("items", {}), root=root, depth=depth + 1)
            return [item] * count
        case "string":
            return _string_example(schema)
        case "integer":
            return _number_example(schema, integer=True)
        case "number":
            return _number_example(schema, integer=False)
        case "boolean":
            return True
        case _:
            return None


def _resolve(reference: str, root: Any) -> Any:
    if not reference.startswith("#/"):
        return None
    node = root
    for part in reference[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _string_example(schema: dict[str, Any]) -> str:
    value = _STRING_BY_FORMAT.get(str(schema.get("format")), "mock")
    min_length = schema.get("minLength")
    if isinstance(min_length, int) and len(value) < min_length <= 4096:
        value = value + "x" * (min_length - len(value))
    return value


def _number_example(schema: dict[str, Any], *, integer: bool) -> int | float:
    minimum = schema.get("minimum")
    if _is_number(minimum) and minimum > 0:
        return math.ceil(minimum) if integer else minimum
    exclusive = schema.get("exclusiveMinimum")
    if _is_number(exclusive) and exclusive >= 0:
        return math.floor(exclusive) + 1
    return 0


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)

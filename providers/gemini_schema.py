"""JSON Schema → the subset Gemini's `Schema` object accepts (tools and structured output).

Gemini rejects a request whose schema carries a keyword it does not know, so schemas are
rebuilt from an allow-list rather than passed through:

- kept: `type`, `format` (only `enum`, `date-time`, `int32`, `int64`, `float`, `double`),
  `description`, `nullable`, `enum`, `properties`, `required`, `items`, `anyOf`, `minItems`,
  `maxItems`, `minLength`, `maxLength`, `minProperties`, `maxProperties`, `minimum`,
  `maximum`, `pattern`, `propertyOrdering`;
- rewritten: local `$ref` (into `$defs` / `definitions`) is inlined, `oneOf` becomes `anyOf`,
  `allOf` is merged into one object, `const` becomes a one-value `enum`, a type list such as
  `["string", "null"]` becomes `type: string` with `nullable: true`;
- dropped: everything else, notably `additionalProperties`, `$schema`, `$id`, `$defs`,
  `definitions`, `$comment`, `title`, `default`, `examples`, `strict`, `not`,
  `patternProperties`, `exclusiveMinimum`, `exclusiveMaximum`, `multipleOf`, `uniqueItems`.

An object schema with no properties is left without `properties` (Gemini refuses an empty map);
a recursive `$ref` is cut to a bare `type: object` where it refers back to itself.
"""

from __future__ import annotations

from typing import Any

_COPIED = frozenset(
    {
        "description",
        "nullable",
        "minItems",
        "maxItems",
        "minLength",
        "maxLength",
        "minProperties",
        "maxProperties",
        "minimum",
        "maximum",
        "pattern",
        "propertyOrdering",
    }
)
_FORMATS = frozenset({"enum", "date-time", "int32", "int64", "float", "double"})
_MAX_DEPTH = 32


def gemini_schema(schema: Any) -> dict[str, Any]:
    """Gemini's form of a JSON Schema; anything that is not an object gives `{}`."""
    return _convert(schema, root=schema, depth=0, expanding=frozenset())


def _convert(schema: Any, *, root: Any, depth: int, expanding: frozenset[str]) -> dict[str, Any]:
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return {}
    reference = schema.get("$ref")
    if isinstance(reference, str):
        if reference in expanding:
            return {"type": "object"}
        target = _resolve(reference, root)
        merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        return _convert(merged, root=root, depth=depth + 1, expanding=expanding | {reference})
    all_of = schema.get("allOf")
    if isinstance(all_of, list) and all_of:
        return _convert(
            _merge_all_of(schema, all_of, root), root=root, depth=depth + 1, expanding=expanding
        )

    out: dict[str, Any] = {}
    _copy_type(schema, out)
    for key in _COPIED:
        if key in schema:
            out[key] = schema[key]
    schema_format = schema.get("format")
    if schema_format in _FORMATS:
        out["format"] = schema_format
    if "const" in schema:
        out["enum"] = [schema["const"]]
    elif isinstance(schema.get("enum"), list):
        out["enum"] = [value for value in schema["enum"] if value is not None]
    if "enum" in out:
        out["enum"] = [str(value) for value in out["enum"]]
        out.setdefault("type", "string")

    properties = schema.get("properties")
    if isinstance(properties, dict) and properties:
        out["properties"] = {
            str(name): _convert(value, root=root, depth=depth + 1, expanding=expanding)
            for name, value in properties.items()
        }
        required = schema.get("required")
        if isinstance(required, list):
            out["required"] = [name for name in required if name in properties]
    items = schema.get("items")
    if isinstance(items, dict):
        out["items"] = _convert(items, root=root, depth=depth + 1, expanding=expanding)
    options = schema.get("anyOf", schema.get("oneOf"))
    if isinstance(options, list) and options:
        variants = [option for option in options if option != {"type": "null"}]
        if len(variants) < len(options):
            out["nullable"] = True
        if len(variants) == 1:
            out.update(_convert(variants[0], root=root, depth=depth + 1, expanding=expanding))
        elif variants:
            out["anyOf"] = [
                _convert(option, root=root, depth=depth + 1, expanding=expanding)
                for option in variants
            ]
    return out


def _copy_type(schema: dict[str, Any], out: dict[str, Any]) -> None:
    schema_type = schema.get("type")
    if isinstance(schema_type, list):
        kinds = [kind for kind in schema_type if kind != "null"]
        if len(kinds) < len(schema_type):
            out["nullable"] = True
        schema_type = kinds[0] if kinds else None
    if isinstance(schema_type, str) and schema_type != "null":
        out["type"] = schema_type
    elif "properties" in schema:
        out["type"] = "object"


def _merge_all_of(schema: dict[str, Any], parts: list[Any], root: Any) -> dict[str, Any]:
    merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
    properties: dict[str, Any] = dict(merged.get("properties") or {})
    required: list[Any] = list(merged.get("required") or [])
    for part in parts:
        if isinstance(part, dict) and isinstance(part.get("$ref"), str):
            part = _resolve(part["$ref"], root)
        if not isinstance(part, dict):
            continue
        for key, value in part.items():
            if key == "properties" and isinstance(value, dict):
                properties.update(value)
            elif key == "required" and isinstance(value, list):
                required.extend(name for name in value if name not in required)
            else:
                merged.setdefault(key, value)
    if properties:
        merged["properties"] = properties
    if required:
        merged["required"] = required
    return merged


def _resolve(reference: str, root: Any) -> dict[str, Any]:
    if not reference.startswith("#/"):
        return {}
    node = root
    for part in reference[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return {}
        node = node[part]
    return node if isinstance(node, dict) else {}

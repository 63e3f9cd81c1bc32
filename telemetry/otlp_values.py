"""Python values as OTLP attributes: the `KeyValue`/`AnyValue` messages of opentelemetry-proto.

Strings, booleans, integers and floats map to their own kinds and lists of them to arrays;
`None` is left out (OTLP has no null attribute); anything else (a mapping, a Decimal) is sent
as its JSON text, which trace viewers show as it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import msgspec
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue


def any_value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value) if -(2**63) <= value < 2**63 else _text(value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, Decimal):
        return AnyValue(double_value=float(value))
    if isinstance(value, list | tuple):
        return AnyValue(
            array_value=ArrayValue(values=[any_value(item) for item in value if item is not None])
        )
    return _text(value)


def attributes(pairs: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> list[KeyValue]:
    """Key-values for the pairs whose value is not None."""
    items = pairs.items() if isinstance(pairs, Mapping) else pairs
    return [KeyValue(key=key, value=any_value(value)) for key, value in items if value is not None]


def json_text(value: Any) -> str:
    """A value as compact JSON, for attributes that hold a structure."""
    return msgspec.json.encode(value, enc_hook=str).decode()


def _text(value: Any) -> AnyValue:
    return AnyValue(string_value=value if isinstance(value, str) else json_text(value))

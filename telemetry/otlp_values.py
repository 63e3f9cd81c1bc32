"""Python values as OTLP attributes, written in place into opentelemetry-proto messages.

Strings, booleans, integers and floats map to their own kinds and lists of them to arrays;
`None` is left out (OTLP has no null attribute); anything else (a mapping, a Decimal) is sent
as its JSON text, which trace viewers show as it is. Messages are filled in place (`add()` on
their repeated fields) rather than built and then copied in: that halves the encoding's cost.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import msgspec
from google.protobuf.internal.containers import RepeatedCompositeFieldContainer
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

_INT64 = range(-(2**63), 2**63)


def put_attributes(
    target: RepeatedCompositeFieldContainer[KeyValue], pairs: Mapping[str, Any]
) -> None:
    """Add the pairs whose value is not None."""
    add = target.add
    for key, value in pairs.items():
        if value is not None:
            pair = add()
            pair.key = key
            set_value(pair.value, value)


def set_value(target: AnyValue, value: Any) -> None:
    if isinstance(value, str):
        target.string_value = value
    elif isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int):
        if value in _INT64:
            target.int_value = value
        else:
            target.string_value = str(value)
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, Decimal):
        target.double_value = float(value)
    elif isinstance(value, list | tuple):
        array = target.array_value
        array.SetInParent()  # an empty list is still an (empty) array
        add = array.values.add
        for item in value:
            if item is not None:
                set_value(add(), item)
    else:
        target.string_value = json_text(value)


def any_value(value: Any) -> AnyValue:
    made = AnyValue()
    set_value(made, value)
    return made


def json_text(value: Any) -> str:
    """A value as compact JSON, for attributes that hold a structure."""
    return msgspec.json.encode(value, enc_hook=str).decode()

"""The fields a condition can read: their names, value kinds and how to read them from a context.

Kinds decide which operators apply and what values they take:

- `string`: eq ne in nin regex contains (substring) gt gte lt lte (lexicographic) exists
- `number`: eq ne in nin gt gte lt lte exists
- `boolean`: eq ne exists
- `list` (tags): contains (has the element) in (has any of) nin (has none of) regex (any element
  matches) exists (non-empty)
- `any` (metadata values): every operator; values are compared only with values of their own type
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from operator import attrgetter
from typing import Any, Final, NamedTuple
from zoneinfo import ZoneInfo

from rules.context import RequestContext

Getter = Callable[[RequestContext], Any]
WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# Header values that are credentials: a rule has no business reading them, and evidence would
# copy them into the decision records.
SECRET_HEADERS: Final = frozenset(
    {"authorization", "x-api-key", "api-key", "cookie", "proxy-authorization"}
)


class Field(NamedTuple):
    kind: str
    read: Callable[[ZoneInfo | None], Getter]
    sensitive: bool = False
    """Evidence shows the condition but never the value read (prompt text, header values)."""


def _attribute(name: str) -> Callable[[ZoneInfo | None], Getter]:
    getter = attrgetter(name)
    return lambda _zone: getter


def _budget(name: str) -> Callable[[ZoneInfo | None], Getter]:
    return lambda _zone: lambda ctx: ctx.budget.get(name)


def _hour(zone: ZoneInfo | None) -> Getter:
    return lambda ctx: ctx.local_time(zone).hour


def _weekday(zone: ZoneInfo | None) -> Getter:
    return lambda ctx: WEEKDAYS[ctx.local_time(zone).weekday()]


def _clock(zone: ZoneInfo | None) -> Getter:
    return lambda ctx: ctx.local_time(zone).strftime("%H:%M")


FIELDS: Final[Mapping[str, Field]] = {
    "model": Field("string", _attribute("model")),
    "estimated_input_tokens": Field("number", _attribute("estimated_input_tokens")),
    "message_count": Field("number", _attribute("message_count")),
    "has_tools": Field("boolean", _attribute("has_tools")),
    "has_images": Field("boolean", _attribute("has_images")),
    "has_response_format": Field("boolean", _attribute("has_response_format")),
    "stream": Field("boolean", _attribute("stream")),
    "max_tokens": Field("number", _attribute("max_tokens")),
    "temperature": Field("number", _attribute("temperature")),
    "user": Field("string", _attribute("user")),
    "key": Field("string", _attribute("key")),
    "key_name": Field("string", _attribute("key_name")),
    "workspace": Field("string", _attribute("workspace")),
    "tags": Field("list", _attribute("tags")),
    "prompt": Field("string", _attribute("prompt"), sensitive=True),
    "time.hour": Field("number", _hour),
    "time.weekday": Field("string", _weekday),
    "time.time": Field("string", _clock),
    "budget.key_percent": Field("number", _budget("key_percent")),
    "budget.workspace_percent": Field("number", _budget("workspace_percent")),
}
PREFIXES: Final = ("metadata.", "headers.")


def metadata_field(path: str) -> Field:
    """`metadata.a.b` reads `metadata["a"]["b"]`; any missing step reads as absent."""
    steps = tuple(path.split("."))

    def read(_zone: ZoneInfo | None) -> Getter:
        if len(steps) == 1:
            (only,) = steps
            return lambda ctx: ctx.metadata.get(only)

        def walk(ctx: RequestContext) -> Any:
            value: Any = ctx.metadata
            for step in steps:
                if not isinstance(value, dict):
                    return None
                value = value.get(step)
            return value

        return walk

    return Field("any", read)


def header_field(name: str) -> Field:
    lowered = name.lower()
    return Field("string", lambda _zone: lambda ctx: ctx.headers.get(lowered), sensitive=True)


def lookup(name: str) -> Field | None:
    found = FIELDS.get(name)
    if found is not None:
        return found
    if name.startswith("metadata.") and _valid_path(name[9:]):
        return metadata_field(name[9:])
    if name.startswith("headers.") and name[8:] and "." not in name[8:]:
        return header_field(name[8:])
    return None


def _valid_path(path: str) -> bool:
    return bool(path) and all(path.split("."))

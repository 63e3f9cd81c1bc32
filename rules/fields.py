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
    source: str | None = None
    """The read as a Python expression over `ctx`, for the generated evaluator; None: call
    the getter."""


def _attribute(name: str) -> Callable[[ZoneInfo | None], Getter]:
    getter = attrgetter(name)
    return lambda _zone: getter


def _plain(kind: str, name: str, *, sensitive: bool = False) -> Field:
    return Field(kind, _attribute(name), sensitive, f"ctx.{name}")


def _budget(name: str) -> Callable[[ZoneInfo | None], Getter]:
    return lambda _zone: lambda ctx: ctx.budget.get(name)


def _hour(zone: ZoneInfo | None) -> Getter:
    return lambda ctx: ctx.local_time(zone).hour


def _weekday(zone: ZoneInfo | None) -> Getter:
    return lambda ctx: WEEKDAYS[ctx.local_time(zone).weekday()]


def _clock(zone: ZoneInfo | None) -> Getter:
    def clock(ctx: RequestContext) -> str:
        local = ctx.local_time(zone)
        return f"{local.hour:02d}:{local.minute:02d}"

    return clock


FIELDS: Final[Mapping[str, Field]] = {
    "model": _plain("string", "model"),
    "operation": _plain("string", "operation"),
    "estimated_input_tokens": _plain("number", "estimated_input_tokens"),
    "message_count": _plain("number", "message_count"),
    "has_tools": _plain("boolean", "has_tools"),
    "has_images": _plain("boolean", "has_images"),
    "has_response_format": _plain("boolean", "has_response_format"),
    "stream": _plain("boolean", "stream"),
    "max_tokens": _plain("number", "max_tokens"),
    "temperature": _plain("number", "temperature"),
    "user": _plain("string", "user"),
    "key": _plain("string", "key"),
    "key_name": _plain("string", "key_name"),
    "workspace": _plain("string", "workspace"),
    "tags": _plain("list", "tags"),
    "prompt": _plain("string", "prompt", sensitive=True),
    "time.hour": Field("number", _hour),
    "time.weekday": Field("string", _weekday),
    "time.time": Field("string", _clock),
    "budget.key_percent": Field(
        "number", _budget("key_percent"), source="ctx.budget.get('key_percent')"
    ),
    "budget.workspace_percent": Field(
        "number", _budget("workspace_percent"), source="ctx.budget.get('workspace_percent')"
    ),
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

    source = f"ctx.metadata.get({steps[0]!r})" if len(steps) == 1 else None
    return Field("any", read, source=source)


def header_field(name: str) -> Field:
    lowered = name.lower()
    return Field(
        "string",
        lambda _zone: lambda ctx: ctx.headers.get(lowered),
        sensitive=True,
        source=f"ctx.headers.get({lowered!r})",
    )


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

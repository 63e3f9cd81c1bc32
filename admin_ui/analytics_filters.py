"""An analytics page's filters: dimensions named in its URL (`?key=<id>&model=gpt-4o`), applied to
every panel that can be split by them, and the links that add or remove one.

The workspace is the top bar's (`workspace`, an id or slug); the other filters are dimensions of
`telemetry.analytics` by name, each given once or more (any of the values). A panel whose metric
is not kept by a filtered dimension (guardrail findings have no model) is shown unfiltered by it
and says so.

Drilling down: clicking a group in a table or a bar panel adds its value as a filter. A panel
grouped first by workspace follows the path workspace → key → model as the page narrows: once
the page shows one workspace it is grouped by key, once it shows one key, by model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlencode

from telemetry.analytics import InvalidQuery

FILTER_DIMENSIONS: Final = (
    "key",
    "source",
    "provider",
    "model",
    "served_model",
    "deployment",
    "status",
    "error_type",
    "cache_hit",
    "tag",
    "end_user",
    "rule",
    "guardrail",
    "action",
    "entity_type",
)
DRILL_PATH: Final = ("workspace", "key", "model")
MAX_VALUES: Final = 50
MAX_VALUE_LENGTH: Final = 256


@dataclass(frozen=True, slots=True)
class PageFilters:
    """The page's filters by dimension (values in the URL's order), and its one workspace when
    the page shows one (by id: the top bar's choice or the viewer's only workspace)."""

    values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    workspace_id: str | None = None

    def fixed(self, dimension: str) -> bool:
        """Whether the page shows one value of `dimension` only."""
        if dimension == "workspace":
            return self.workspace_id is not None
        return len(self.values.get(dimension, ())) == 1

    def drilled(self, group_by: Sequence[str]) -> tuple[str, ...]:
        """`group_by` moved down the drill path past the dimensions the page has fixed."""
        if not group_by or group_by[0] != DRILL_PATH[0]:
            return tuple(group_by)
        fixed = [n for n, name in enumerate(DRILL_PATH) if self.fixed(name)]
        level = min(fixed[-1] + 1, len(DRILL_PATH) - 1) if fixed else 0
        first = DRILL_PATH[level]
        rest = tuple(name for name in group_by[1:] if name != first)
        return (first, *rest)


def read_filters(parameters: Sequence[tuple[str, str]]) -> dict[str, tuple[str, ...]]:
    """The URL's filters; a value too long or too many values is an `InvalidQuery`."""
    found: dict[str, list[str]] = {}
    for name, value in parameters:
        if name not in FILTER_DIMENSIONS or value == "":
            continue
        if len(value) > MAX_VALUE_LENGTH:
            raise InvalidQuery(name, f"a value may have at most {MAX_VALUE_LENGTH} characters")
        values = found.setdefault(name, [])
        if value not in values:
            values.append(value)
        if len(values) > MAX_VALUES:
            raise InvalidQuery(name, f"at most {MAX_VALUES} values")
    return {name: tuple(values) for name, values in found.items()}


class FilterLinks:
    """URLs of this page with one filter added or removed, everything else kept."""

    def __init__(self, path: str, parameters: Sequence[tuple[str, str]]) -> None:
        self.path = path
        self.parameters = [(name, value) for name, value in parameters if value != ""]

    def _url(self, items: list[tuple[str, str]]) -> str:
        return f"{self.path}?{urlencode(items)}" if items else self.path

    def adding(self, dimension: str, value: str) -> str:
        """The page narrowed to `value` of `dimension` (replacing other values of it)."""
        kept = [(n, v) for n, v in self.parameters if n != dimension]
        return self._url([*kept, (dimension, value)])

    def without(self, *dimensions: str) -> str:
        """The page without any filter on `dimensions`."""
        return self._url([(n, v) for n, v in self.parameters if n not in dimensions])

    def removing(self, dimension: str, value: str | None = None) -> str:
        """The page without the filter `dimension` (or only its `value`)."""
        return self._url(
            [
                (n, v)
                for n, v in self.parameters
                if n != dimension or (value is not None and v != value)
            ]
        )

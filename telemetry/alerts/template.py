"""A rule's message template: `str.format` fields over a fixed set of names, nothing else.

A template may use `{rule}`, `{metric}`, `{value}`, `{threshold}`, `{severity}`, `{state}`,
`{window}`, `{group}` (the group's labels as ` (model=gpt-4o)`, empty without groups) and
`{labels[NAME]}` (one label; empty when the group has none of that name), each optionally with a
format spec (`{value:>12}`). Attribute access (`{rule.__class__}`), other indexes, positional
fields and nested fields are refused when the rule is checked, so rendering a checked template
only ever formats these strings.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Final

NAMES: Final = frozenset(
    {"rule", "metric", "value", "threshold", "severity", "state", "window", "group"}
)
MAX_LENGTH: Final = 2000


class TemplateError(ValueError):
    pass


def check_template(template: str) -> None:
    """Raise `TemplateError` for a template `render` could not render as written."""
    if len(template) > MAX_LENGTH:
        raise TemplateError(f"at most {MAX_LENGTH} characters")
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as error:
        raise TemplateError(f"{error} (write {{{{ and }}}} for literal braces)") from None
    for _, field, spec, conversion in parts:
        if field is None:
            continue
        if "{" in (spec or ""):
            raise TemplateError(f"{{{field}}}: a format spec cannot hold another field")
        if conversion not in (None, "s", "r"):
            raise TemplateError(f"{{{field}}}: unknown conversion !{conversion}")
        _check_field(field)
        try:
            format("", spec or "")
        except ValueError as error:
            raise TemplateError(f"{{{field}:{spec}}}: {error}") from None


def _check_field(field: str) -> None:
    if field.startswith("labels[") and field.endswith("]"):
        name = field[len("labels[") : -1]
        if name and all(mark not in name for mark in "[]."):
            return
        raise TemplateError(f"{{{field}}}: write {{labels[NAME]}} with a label's name")
    if field in NAMES:
        return
    known = ", ".join(f"{{{name}}}" for name in sorted(NAMES))
    raise TemplateError(f"unknown field {{{field}}}; known: {known}, {{labels[NAME]}}")


class _Labels(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def render(template: str, values: Mapping[str, str], labels: Mapping[str, str]) -> str:
    """The template with `values` (every name of `NAMES`) and `labels` filled in."""
    fields: dict[str, object] = {name: values.get(name, "") for name in NAMES}
    fields["labels"] = _Labels(labels)
    return template.format_map(fields)

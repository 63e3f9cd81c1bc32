"""The rule editor's form: what was typed to the body `parse_rule` reads (the admin API's and the
config file's shape), a stored rule back to what the form shows, and `RuleError.field` to the
form field its message is shown beside.

Text is only split and trimmed here: a number that does not read as one is passed on as typed,
so `parse_rule` refuses it in its own words, naming the field.

Filters and labels are typed one per line: `model = gpt-4o, gpt-4o-mini` (a filter keeps any of
its values), `team = platform`.
"""

from __future__ import annotations

import re
from typing import Any, Final

from admin_ui.form_fields import FormValues, text_list
from telemetry.alerts.rule import DEFAULT_MESSAGE, AlertRule, RuleError
from telemetry.alerts.rule_parsing import rule_data

TEXT_FIELDS: Final = (
    "name",
    "workspace",
    "metric",
    "kind",
    "filters",
    "window",
    "condition",
    "warning",
    "critical",
    "for",
    "min_requests",
    "no_data",
    "labels",
    "message",
    "renotify",
    "notify_on_resolve",
)
LIST_FIELDS: Final = ("group_by", "channels")
ERROR_FIELDS: Final = (*TEXT_FIELDS, *LIST_FIELDS, "thresholds")
_NUMBER: Final = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_WHOLE: Final = re.compile(r"^[+-]?\d{1,18}$")


def empty_values() -> FormValues:
    return {
        "name": "",
        "workspace": "",
        "metric": "error_rate",
        "kind": "",
        "filters": "",
        "window": "5m",
        "condition": "above",
        "warning": "",
        "critical": "",
        "for": "0",
        "min_requests": "0",
        "no_data": "ok",
        "labels": "",
        "message": DEFAULT_MESSAGE,
        "renotify": "0",
        "notify_on_resolve": "on",
        "group_by": [],
        "channels": [],
    }


def duration_text(seconds: int) -> str:
    """Seconds as the form shows them: `90s`, `5m`, `2h`, `1d` (`0` for none)."""
    if seconds == 0:
        return "0"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _number_text(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else repr(value)


def rule_values(rule: AlertRule, workspace: str = "") -> FormValues:
    data = rule_data(rule)
    return {
        "name": rule.name,
        "workspace": workspace,
        "metric": rule.metric,
        "kind": rule.anomaly_kind or "",
        "filters": "\n".join(
            f"{name} = {', '.join(values)}" for name, values in data["filters"].items()
        ),
        "window": duration_text(rule.window_s),
        "condition": rule.condition,
        "warning": _number_text(rule.warning),
        "critical": _number_text(rule.critical),
        "for": duration_text(rule.for_s),
        "min_requests": str(rule.min_requests),
        "no_data": rule.no_data,
        "labels": "\n".join(f"{name} = {value}" for name, value in rule.labels.items()),
        "message": rule.message,
        "renotify": duration_text(rule.renotify_s),
        "notify_on_resolve": "on" if rule.notify_on_resolve else "",
        "group_by": list(rule.group_by),
        "channels": list(rule.channel_ids),
    }


def _number(text: str) -> Any:
    stripped = text.strip()
    if not stripped:
        return None
    if _WHOLE.match(stripped):
        return int(stripped)
    return float(stripped) if _NUMBER.match(stripped) else stripped


def _pairs(text: str, field: str) -> list[tuple[str, str]]:
    pairs = []
    for line in text.splitlines():
        if not line.strip():
            continue
        name, equals, value = line.partition("=")
        if not equals or not name.strip():
            raise RuleError(field, f"one per line as name = value, not {line.strip()!r}")
        pairs.append((name.strip(), value.strip()))
    return pairs


def rule_body(values: FormValues) -> dict[str, Any]:
    """The body `parse_rule` reads; `RuleError` for a filter or label line it cannot split."""
    filters: dict[str, list[str]] = {}
    for name, value in _pairs(values["filters"], "filters"):
        filters.setdefault(name, []).extend(text_list(value))
    body: dict[str, Any] = {
        "name": values["name"].strip(),
        "metric": values["metric"],
        "kind": values["kind"] or None,
        "filters": filters,
        "group_by": list(values["group_by"]),
        "window": values["window"].strip(),
        "condition": values["condition"],
        "warning": _number(values["warning"]),
        "critical": _number(values["critical"]),
        "for": values["for"].strip() or 0,
        "min_requests": _number(values["min_requests"]) or 0,
        "no_data": values["no_data"],
        "labels": dict(_pairs(values["labels"], "labels")),
        "message": values["message"] or DEFAULT_MESSAGE,
        "channels": list(values["channels"]),
        "renotify": values["renotify"].strip() or 0,
        "notify_on_resolve": values["notify_on_resolve"] == "on",
    }
    return body


def field_of(error: RuleError) -> str:
    """The form field a rule's problem is shown beside ("" above the form)."""
    head = error.field.split(".", 1)[0]
    return head if head in ERROR_FIELDS else ""

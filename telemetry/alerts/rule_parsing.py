"""An alert rule from plain data, as the config file, the admin API or the console give it.

```yaml
name: Error rate
metric: error_rate    # or anomaly_score, with kind: cost | requests | error_rate | latency;
                      # or budget_used_pct (kind: limit | soft_limit), deployment_down
group_by: [model]
filters: {provider: [openai]}
window: 5m            # seconds, or an amount and a unit: 90s, 5m, 1h, 1d
condition: above      # above | below | change_pct
compare_to: previous_window  # change_pct only: previous_window | last_week
warning: 0.02
critical: 0.05        # a rate is a ratio: 0.05 is 5 %
for: 5m
min_requests: 20
no_data: ok           # ok | alerting | keep
labels: {team: platform}
message: "{rule}: {value} on {labels[model]}"
channels: [<channel id>, ...]
renotify: 1h          # 0: notify once while firing
notify_on_resolve: true
muted: false
```

Storage keeps the checked `AlertRule` (`telemetry.alerts.rule_store`); this module only turns
data into one, with errors that name the field as written here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import msgspec

from telemetry.alerts.rule import AlertRule, RuleError, check_rule
from telemetry.schema import DEFAULT_WORKSPACE_ID

FIELDS: Final = {
    "name": "name",
    "metric": "metric",
    "kind": "anomaly_kind",
    "filters": "filters",
    "group_by": "group_by",
    "window": "window_s",
    "condition": "condition",
    "compare_to": "compare_to",
    "warning": "warning",
    "critical": "critical",
    "for": "for_s",
    "min_requests": "min_requests",
    "no_data": "no_data",
    "labels": "labels",
    "message": "message",
    "channels": "channel_ids",
    "renotify": "renotify_s",
    "notify_on_resolve": "notify_on_resolve",
    "muted": "muted",
}
"""Field as written → `AlertRule` attribute."""
DURATIONS: Final = ("window", "for", "renotify")
_WRITTEN: Final = {attribute: written for written, attribute in FIELDS.items()}
_DURATION: Final = re.compile(r"(\d+)\s*([smhdw]?)")
_UNIT_SECONDS: Final = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_AT: Final = re.compile(r"\s*- at `\$\.(\w+)[^`]*`")


def parse_duration(value: Any, field: str) -> int:
    """Seconds from an integer or text such as `90s`, `5m`, `1h`, `1d`, `2w`."""
    if isinstance(value, bool):
        raise RuleError(field, "a duration: seconds or an amount and a unit (90s, 5m, 1h, 1d)")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        found = _DURATION.fullmatch(value.strip())
        if found is not None:
            return int(found[1]) * _UNIT_SECONDS[found[2]]
    raise RuleError(field, "a duration: seconds or an amount and a unit (90s, 5m, 1h, 1d)")


def parse_rule(
    data: Mapping[str, Any], *, workspace_id: str = DEFAULT_WORKSPACE_ID, rule_id: str = ""
) -> AlertRule:
    """A checked rule; `RuleError` names the first field that is wrong."""
    if not isinstance(data, Mapping):
        raise RuleError("rule", "a rule is a mapping of fields")
    unknown = sorted(str(name) for name in data if name not in FIELDS)
    if unknown:
        raise RuleError(unknown[0], f"unknown field; known: {', '.join(FIELDS)}")
    for required in ("name", "metric"):
        if data.get(required) in (None, ""):
            raise RuleError(required, "required")
    fields: dict[str, Any] = {
        FIELDS[name]: parse_duration(value, name) if name in DURATIONS else value
        for name, value in data.items()
        if value is not None or name in ("warning", "critical")
    }
    filters = fields.get("filters")
    if isinstance(filters, Mapping):
        fields["filters"] = {
            key: [values] if isinstance(values, str) else values for key, values in filters.items()
        }
    fields["workspace_id"] = workspace_id
    fields["id"] = rule_id
    try:
        rule = msgspec.convert(fields, AlertRule)
    except msgspec.ValidationError as error:
        found = _AT.search(str(error))
        field = _WRITTEN.get(found[1], found[1]) if found else "rule"
        reason = _AT.sub("", str(error))
        raise RuleError(field, reason) from None
    check_rule(rule)
    return rule


def rule_data(rule: AlertRule) -> dict[str, Any]:
    """The rule as `parse_rule` reads it back (durations in seconds)."""
    built = msgspec.to_builtins(rule)
    return {written: built[attribute] for written, attribute in FIELDS.items()}

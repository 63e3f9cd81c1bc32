"""Alert rules as Prometheus alerting rules, over the series the gateway exports at `/metrics`.

A rule maps when its metric is computed from exported series and every filter and group is a
label of those series; anything else is returned as skipped, with the reason. The series carry
no workspace label, so an exported expression measures the traffic of every workspace; the
rule's workspace is kept as a label of its alerts.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import yaml

from telemetry.alerts.rule import ANOMALY_SCORE, WEEK_S, AlertRule

_REQUESTS: Final = "steerway_requests_total"
_ERRORS: Final = 'status_code=~"5.."'
_DURATION: Final = "gen_ai_client_operation_duration_seconds"
_TTFT: Final = "gen_ai_server_time_to_first_token_seconds"
_TOKENS: Final = "gen_ai_client_token_usage"
_GENAI_LABELS: Final = {"provider": "gen_ai_provider_name", "model": "gen_ai_request_model"}


@dataclass(frozen=True, slots=True)
class _Series:
    """How one analytics metric is read from exported series: `kind` is `count` (increase of
    a counter), `ratio` (rate over rate), `quantile` (histogram_quantile) or `mean`."""

    kind: str
    series: str
    labels: dict[str, str]
    """Analytics dimension → the series' label."""
    matchers: str = ""
    denominator: str = ""
    quantile: float = 0.0
    scale: float = 1.0


def _quantiles(prefix: str, series: str) -> dict[str, _Series]:
    return {
        f"{prefix}_p{int(q * 100)}": _Series(
            "quantile", series, _GENAI_LABELS, quantile=q, scale=1000
        )
        for q in (0.5, 0.9, 0.95, 0.99)
    }


SERIES: Final[dict[str, _Series]] = {
    "requests": _Series("count", _REQUESTS, {"model": "model"}),
    "errors": _Series("count", _REQUESTS, {"model": "model"}, matchers=_ERRORS),
    "error_rate": _Series(
        "ratio", _REQUESTS, {"model": "model"}, matchers=_ERRORS, denominator=_REQUESTS
    ),
    **_quantiles("latency", _DURATION),
    "latency_mean": _Series("mean", _DURATION, _GENAI_LABELS, scale=1000),
    **_quantiles("ttft", _TTFT),
    "ttft_mean": _Series("mean", _TTFT, _GENAI_LABELS, scale=1000),
    "input_tokens": _Series(
        "count", f"{_TOKENS}_sum", _GENAI_LABELS, matchers='gen_ai_token_type="input"'
    ),
    "output_tokens": _Series(
        "count", f"{_TOKENS}_sum", _GENAI_LABELS, matchers='gen_ai_token_type="output"'
    ),
    "total_tokens": _Series("count", f"{_TOKENS}_sum", _GENAI_LABELS),
    "cost": _Series("count", "steerway_cost_usd_total", {"provider": "provider", "model": "model"}),
    "cost_saved": _Series(
        "count", "steerway_cache_saved_usd_total", {"provider": "provider", "model": "model"}
    ),
    "cache_hits": _Series("count", "steerway_cache_requests_total", {}, matchers='result="hit"'),
    "retries": _Series("count", "steerway_retries_total", {"model": "model"}),
    "cache_hit_rate": _Series(
        "ratio",
        "steerway_cache_requests_total",
        {},
        matchers='result="hit"',
        denominator=_REQUESTS,
    ),
}
"""Analytics metrics with an exported equivalent. Latency is the provider attempt's duration
(the gateway's own overhead, well under a millisecond, is not in it)."""

_UNITS: Final = (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


@dataclass(frozen=True, slots=True)
class Skipped:
    rule: AlertRule
    reason: str


@dataclass(frozen=True, slots=True)
class Export:
    text: str
    """The rule file (YAML)."""
    skipped: list[Skipped]


def duration(seconds: int) -> str:
    """A Prometheus duration: `300` → `5m`."""
    for unit, size in _UNITS:
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return "0s"


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _matchers(spec: _Series, rule: AlertRule, base: str) -> str:
    parts = [base] if base else []
    for dimension, values in sorted(rule.filters.items()):
        label = spec.labels[dimension]
        if len(values) == 1:
            parts.append(f'{label}="{_quote(values[0])}"')
        else:
            alternatives = "|".join(_quote(re.escape(value)) for value in values)
            parts.append(f'{label}=~"{alternatives}"')
    return "{" + ",".join(parts) + "}" if parts else ""


def _sum(labels: Sequence[str]) -> str:
    return f"sum by ({', '.join(labels)}) " if labels else "sum"


def _value(spec: _Series, rule: AlertRule, offset: str = "") -> str:
    window = f"[{duration(rule.window_s)}]{offset}"
    group = [spec.labels[dimension] for dimension in rule.group_by]
    sum_by = _sum(group)
    if spec.kind == "count":
        return f"{sum_by}(increase({spec.series}{_matchers(spec, rule, spec.matchers)}{window}))"
    if spec.kind == "ratio":
        top = f"{sum_by}(rate({spec.series}{_matchers(spec, rule, spec.matchers)}{window}))"
        bottom = _matchers(SERIES["requests"], rule, "")
        return f"{top} / {sum_by}(rate({spec.denominator}{bottom}{window}))"
    scale = f" * {spec.scale:g}" if spec.scale != 1 else ""
    if spec.kind == "mean":
        total = f"{sum_by}(rate({spec.series}_sum{_matchers(spec, rule, '')}{window}))"
        count = f"{sum_by}(rate({spec.series}_count{_matchers(spec, rule, '')}{window}))"
        return f"{total} / {count}{scale}"
    buckets = _sum([*group, "le"])
    inner = f"{buckets}(rate({spec.series}_bucket{_matchers(spec, rule, '')}{window}))"
    return f"histogram_quantile({spec.quantile:g}, {inner}){scale}"


_LABEL_NAME: Final = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def _skip_reason(rule: AlertRule) -> str | None:
    for name in rule.labels:
        if not _LABEL_NAME.fullmatch(name) or name.startswith("__"):
            return f"the label name {name!r} is not a Prometheus label name"
    if rule.metric == ANOMALY_SCORE:
        return "anomaly scores are computed from the roll-ups' history, not exported at /metrics"
    spec = SERIES.get(rule.metric)
    if spec is None:
        return f"the metric {rule.metric} is not exported at /metrics"
    for dimension in [*rule.filters, *rule.group_by]:
        if dimension not in spec.labels:
            return f"the exported series of {rule.metric} have no label for {dimension}"
    if rule.min_requests:
        requests = SERIES["requests"].labels
        if any(dimension not in requests for dimension in [*rule.filters, *rule.group_by]):
            return "min_requests cannot be counted by the rule's filters or groups at /metrics"
    return None


def _condition(rule: AlertRule, spec: _Series, threshold: float) -> str:
    current = _value(spec, rule)
    if rule.condition == "change_pct":
        back = WEEK_S if rule.compare_to == "last_week" else rule.window_s
        before = _value(spec, rule, f" offset {duration(back)}")
        change = f"(({current}) - ({before})) / abs({before}) * 100"
        return f"{change} {'>' if threshold > 0 else '<'} {threshold:g}"
    return f"{current} {'>' if rule.condition == 'above' else '<'} {threshold:g}"


def expression(rule: AlertRule, threshold: float) -> str:
    spec = SERIES[rule.metric]
    condition = _condition(rule, spec, threshold)
    if not rule.min_requests:
        return condition
    requests = _value(SERIES["requests"], rule)
    group = [spec.labels[dimension] for dimension in rule.group_by]
    on = f" on ({', '.join(group)})" if group else " on ()"
    return f"({condition}) and{on} ({requests} >= {rule.min_requests})"


class _LabelRefs:
    def __init__(self, labels: dict[str, str]) -> None:
        self._labels = labels

    def __getitem__(self, name: str) -> str:
        return f"{{{{ $labels.{self._labels.get(name, name)} }}}}"


class _Summary(string.Formatter):
    """Formats a rule's message, leaving Prometheus' `{{ ... }}` placeholders whole (a format
    spec such as `{value:.3}` would cut one)."""

    def format_field(self, value: Any, format_spec: str) -> Any:
        if isinstance(value, str) and value.startswith("{{"):
            return value
        return super().format_field(value, format_spec)


def _summary(rule: AlertRule, spec: _Series, severity: str, threshold: float) -> str:
    """The rule's message with Prometheus' template for what only an alert knows."""
    return _Summary().vformat(
        rule.message,
        (),
        {
            "rule": rule.name.replace("{{", "{{`{{`}}"),
            "metric": rule.metric,
            "value": "{{ $value }}",
            "threshold": f"{threshold:g}",
            "severity": severity,
            "state": "firing",
            "window": duration(rule.window_s),
            "group": "".join(
                f" ({name}={{{{ $labels.{spec.labels[name]} }}}})" for name in rule.group_by
            ),
            "labels": _LabelRefs(spec.labels),
        },
    )


def _alert_name(rule: AlertRule) -> str:
    words = re.findall(r"[A-Za-z0-9]+", rule.name)
    name = "".join(word[:1].upper() + word[1:] for word in words)
    return f"Steerway{name}" if name else f"Steerway{rule.id}"


def _alerts(rule: AlertRule, workspace: str, console_url: str | None) -> list[dict[str, Any]]:
    alerts = []
    for severity, threshold in rule.thresholds:
        alert: dict[str, Any] = {"alert": _alert_name(rule), "expr": expression(rule, threshold)}
        if rule.for_s:
            alert["for"] = duration(rule.for_s)
        alert["labels"] = {
            **rule.labels,
            "severity": severity,
            "workspace": workspace,
            "steerway_rule_id": rule.id,
        }
        annotations = {"summary": _summary(rule, SERIES[rule.metric], severity, threshold)}
        if console_url:
            annotations["console"] = f"{console_url.rstrip('/')}/admin/alerts?rule={rule.id}"
        alert["annotations"] = annotations
        alerts.append(alert)
    return alerts


def export_rules(
    rules: Iterable[AlertRule],
    workspaces: dict[str, str],
    *,
    console_url: str | None = None,
) -> Export:
    """The Prometheus rule file for `rules` (one group per workspace, named by its slug from
    `workspaces`, id → slug) and the rules left out."""
    groups: dict[str, list[dict[str, Any]]] = {}
    skipped: list[Skipped] = []
    for rule in rules:
        reason = _skip_reason(rule)
        if reason is not None:
            skipped.append(Skipped(rule, reason))
            continue
        workspace = workspaces.get(rule.workspace_id, rule.workspace_id)
        groups.setdefault(workspace, []).extend(_alerts(rule, workspace, console_url))
    document = {
        "groups": [
            {"name": f"steerway-{workspace}", "rules": alerts}
            for workspace, alerts in groups.items()
        ]
    }
    header = [
        "# Steerway alert rules for Prometheus (steerway alerts export --prometheus).",
        "# The gateway's series carry no workspace label: each expression measures every",
        "# workspace's traffic; the rule's workspace is a label of its alerts.",
    ]
    if skipped:
        header.append("# Skipped (no equivalent over the series exported at /metrics):")
        header += [f"#   {item.rule.name} ({item.rule.id}): {item.reason}" for item in skipped]
    body = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=1000)
    return Export("\n".join(header) + "\n" + body, skipped)

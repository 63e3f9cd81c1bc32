"""An alert rule: which metric to watch, over what window and groups, when it breaches, and
whom to tell.

`check_rule` says what is wrong with a rule, naming the field, before it is stored or evaluated:
an unknown metric, a dimension the metric cannot be split by (asked of the analytics' own
`plan`), thresholds that disagree with the condition, a window the roll-ups cannot read, a
message template that would fail. A rule that passes never fails for its shape at evaluation.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final, Literal

import msgspec

from telemetry.alerts.gauge_metrics import (
    BUDGET_KINDS,
    BUDGET_USED_PCT,
    GAUGE_WINDOW_S,
    GAUGES,
    is_gauge,
)
from telemetry.alerts.score_rules import EVAL_SCORE, ScoreRuleError, check_score_rule
from telemetry.alerts.template import TemplateError, check_template
from telemetry.analytics import MAX_POINTS, AnalyticsQuery, InvalidQuery, Plan, plan
from telemetry.analytics_anomalies import GROUP_DIMENSIONS, KIND_METRICS
from telemetry.schema import DEFAULT_WORKSPACE_ID, usage_rollups

Condition = Literal["above", "below", "change_pct"]
NoData = Literal["ok", "alerting", "keep"]
CompareTo = Literal["previous_window", "last_week"]

CONDITIONS: Final = ("above", "below", "change_pct")
NO_DATA: Final = ("ok", "alerting", "keep")
COMPARISONS: Final = ("previous_window", "last_week")
WEEK_S: Final = 7 * 86400
MIN_WINDOW_S: Final = 60
MAX_WINDOW_S: Final = 31 * 86400
MAX_FOR_S: Final = 7 * 86400
MAX_NAME: Final = 200
ANOMALY_SCORE: Final = "anomaly_score"
DEFAULT_MESSAGE: Final = "{rule}: {metric} {value} over {window}{group} (threshold {threshold})"
_PLANNED_AT: Final = datetime(2026, 1, 1, tzinfo=UTC)
"""Any fixed time: `plan` only needs a range to check a query's shape."""


class RuleError(ValueError):
    """A rule that cannot be used; `field` names what to change, as the config file and the
    API write it (`window`, `for`, `channels`, `filters.model`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


class AlertRule(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    metric: str
    """An analytics metric (`telemetry.analytics_metrics.METRICS`), `anomaly_score`, a gauge
    (`telemetry.alerts.gauge_metrics.GAUGES`: `budget_used_pct`, `deployment_down`), or
    `eval_score` (`telemetry.alerts.score_rules`)."""
    anomaly_kind: str | None = None
    """The rule's `kind`. With `anomaly_score`: which score (`cost`, `requests`, `error_rate`,
    `latency`; see `telemetry.analytics_anomalies`). With `budget_used_pct`: percent of the
    `limit` (None too) or of the `soft_limit`."""
    warning: float | None = None
    critical: float | None = None
    """Thresholds in the metric's unit as the analytics answer it (a rate is a ratio: 0.05 is
    5 %); for `change_pct`, a change in percent (50 is a rise by half, -50 a fall by half).
    Either may be None, not both."""
    condition: Condition = "above"
    compare_to: CompareTo = "previous_window"
    """For `change_pct`: the window just before (`previous_window`) or the same window one week
    earlier (`last_week`)."""
    window_s: int = 300
    for_s: int = 0
    """How long the condition must hold before the alert fires; 0 fires at once."""
    min_requests: int = 0
    """A group with fewer requests in the window does not breach (0: no minimum)."""
    no_data: NoData = "ok"
    """What a group without requests in the window counts as: `ok`, `alerting`, or `keep` (its
    state stays as it is)."""
    filters: dict[str, list[str]] = msgspec.field(default_factory=dict)
    group_by: list[str] = msgspec.field(default_factory=list)
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    """Added to every instance's labels (the group's own win on a clash)."""
    message: str = DEFAULT_MESSAGE
    channel_ids: list[str] = msgspec.field(default_factory=list)
    renotify_s: int = 0
    """While firing, notify again this often; 0: once."""
    notify_on_resolve: bool = True
    muted: bool = False
    """Evaluated and recorded, never notified."""
    built_in: str | None = None
    managed_by: str | None = None
    """`config`: the rule comes from the config file, which alone changes it."""
    id: str = ""
    workspace_id: str = DEFAULT_WORKSPACE_ID

    @property
    def thresholds(self) -> list[tuple[Literal["critical", "warning"], float]]:
        """The thresholds set, the most severe first."""
        found: list[tuple[Literal["critical", "warning"], float]] = []
        if self.critical is not None:
            found.append(("critical", self.critical))
        if self.warning is not None:
            found.append(("warning", self.warning))
        return found


def check_rule(rule: AlertRule) -> None:
    """Raise `RuleError` naming the first field that is wrong."""
    if not rule.name.strip():
        raise RuleError("name", "a rule needs a name")
    if len(rule.name) > MAX_NAME:
        raise RuleError("name", f"at most {MAX_NAME} characters")
    _check_numbers(rule)
    _check_thresholds(rule)
    if rule.metric == EVAL_SCORE:
        try:
            check_score_rule(rule)
        except ScoreRuleError as error:
            raise RuleError(error.field, str(error)) from None
    elif rule.metric == ANOMALY_SCORE:
        _check_anomaly(rule)
    elif rule.anomaly_kind is not None and rule.metric != BUDGET_USED_PCT:
        raise RuleError("kind", f"only for the metrics {ANOMALY_SCORE} and {BUDGET_USED_PCT}")
    for name, values in rule.filters.items():
        if not values:
            raise RuleError(f"filters.{name}", "keeps at least one value")
    if is_gauge(rule.metric):
        _check_gauge(rule)
    elif rule.metric != EVAL_SCORE:
        window_plan(rule)
        if rule.min_requests:
            requests_plan(rule)
    for name, value in rule.labels.items():
        if not name or not isinstance(value, str):
            raise RuleError("labels", "labels are names with text values")
    if len(set(rule.channel_ids)) != len(rule.channel_ids):
        raise RuleError("channels", "names a channel twice")
    try:
        check_template(rule.message)
    except TemplateError as error:
        raise RuleError("message", str(error)) from None


def _check_numbers(rule: AlertRule) -> None:
    if rule.condition not in CONDITIONS:
        raise RuleError("condition", f"one of {', '.join(CONDITIONS)}")
    if rule.compare_to not in COMPARISONS:
        raise RuleError("compare_to", f"one of {', '.join(COMPARISONS)}")
    if rule.compare_to != "previous_window" and rule.condition != "change_pct":
        raise RuleError("compare_to", "only with the condition change_pct")
    if rule.no_data not in NO_DATA:
        raise RuleError("no_data", f"one of {', '.join(NO_DATA)}")
    if not MIN_WINDOW_S <= rule.window_s <= MAX_WINDOW_S:
        raise RuleError("window", f"from {MIN_WINDOW_S} s to {MAX_WINDOW_S // 86400} days")
    if rule.window_s % 60:
        raise RuleError("window", "whole minutes: the roll-ups count per minute")
    if not 0 <= rule.for_s <= MAX_FOR_S:
        raise RuleError("for", f"from 0 to {MAX_FOR_S // 86400} days")
    if rule.min_requests < 0:
        raise RuleError("min_requests", "cannot be negative")
    if rule.renotify_s < 0:
        raise RuleError("renotify", "cannot be negative (0: never again while firing)")
    if 0 < rule.renotify_s < MIN_WINDOW_S:
        raise RuleError("renotify", f"at least {MIN_WINDOW_S} s, or 0 for never")


def _check_thresholds(rule: AlertRule) -> None:
    if rule.warning is None and rule.critical is None:
        raise RuleError("thresholds", "set a warning or a critical threshold, or both")
    for field, value in (("warning", rule.warning), ("critical", rule.critical)):
        if value is not None and value != value:  # NaN
            raise RuleError(field, "must be a number")
    if rule.condition == "change_pct":
        given = [value for _, value in rule.thresholds]
        if any(value == 0 for value in given):
            raise RuleError("thresholds", "a change of 0 % would always breach")
        if len({value > 0 for value in given}) > 1:
            raise RuleError(
                "thresholds", "warning and critical must both be rises (> 0) or both falls (< 0)"
            )
    if rule.warning is None or rule.critical is None:
        return
    rising = rule.condition == "above" or (rule.condition == "change_pct" and rule.critical > 0)
    if rising and rule.critical < rule.warning:
        raise RuleError("critical", "must be at least the warning threshold")
    if not rising and rule.critical > rule.warning:
        raise RuleError("critical", "must be at most the warning threshold")


def _check_anomaly(rule: AlertRule) -> None:
    if rule.anomaly_kind not in KIND_METRICS:
        raise RuleError("kind", f"{ANOMALY_SCORE} takes a kind: one of {', '.join(KIND_METRICS)}")
    if rule.condition == "change_pct":
        raise RuleError("condition", "an anomaly score is compared with thresholds: above, below")
    if len(rule.group_by) > 1 or not set(rule.group_by) <= set(GROUP_DIMENSIONS):
        raise RuleError(
            "group_by", f"an anomaly score is by one of {', '.join(GROUP_DIMENSIONS)}, or none"
        )
    if rule.window_s != 3600:
        raise RuleError("window", "an anomaly score is of one hour: 1h (the last that is over)")


def _check_gauge(rule: AlertRule) -> None:
    """A gauge is read as it stands at each evaluation, per budget or deployment."""
    gauge = GAUGES[rule.metric]
    if rule.condition == "change_pct":
        raise RuleError("condition", f"{rule.metric} is compared with thresholds: above, below")
    if rule.window_s != GAUGE_WINDOW_S:
        raise RuleError(
            "window",
            f"{rule.metric} is read as it stands at each evaluation, not over a window: "
            "leave window out",
        )
    if rule.min_requests:
        raise RuleError("min_requests", f"{rule.metric} does not count requests: leave it out")
    dimensions = ", ".join(gauge.dimensions)
    for name in rule.group_by:
        if name not in gauge.dimensions:
            raise RuleError(
                "group_by", f"{rule.metric} cannot be split by {name!r}; it can be by: {dimensions}"
            )
    if len(set(rule.group_by)) != len(rule.group_by):
        raise RuleError("group_by", "names a dimension twice")
    for name in rule.filters:
        if name not in gauge.dimensions:
            raise RuleError(
                f"filters.{name}", f"{rule.metric} cannot be filtered by it; by: {dimensions}"
            )
    if rule.metric == BUDGET_USED_PCT and rule.anomaly_kind not in (None, *BUDGET_KINDS):
        raise RuleError("kind", f"{BUDGET_USED_PCT} takes a kind: one of {', '.join(BUDGET_KINDS)}")


def measured_metric(rule: AlertRule) -> str:
    """The analytics metric the rule's window is read with (an anomaly score: its kind's)."""
    if rule.metric == ANOMALY_SCORE and rule.anomaly_kind in KIND_METRICS:
        return KIND_METRICS[rule.anomaly_kind]
    return rule.metric


def _query(rule: AlertRule, metric: str, step: int) -> AnalyticsQuery:
    return AnalyticsQuery(
        metric=metric,
        start=_PLANNED_AT,
        end=_PLANNED_AT + timedelta(seconds=rule.window_s),
        step=step,
        group_by=tuple(rule.group_by),
        filters={name: tuple(values) for name, values in rule.filters.items()},
        points=False,
    )


def window_step(rule: AlertRule, metric: str | None = None) -> int:
    """The step the rule's window is read in: a minute when the metric and its dimensions are
    kept per minute and the window is at most `MAX_POINTS` of them, else an hour."""
    try:
        finest = plan(_query(rule, metric or measured_metric(rule), 3600))
    except InvalidQuery as error:
        raise _rule_error(error) from None
    hourly = rule.metric == ANOMALY_SCORE
    if finest.table is usage_rollups and rule.window_s // 60 <= MAX_POINTS and not hourly:
        return 60
    return 3600


def window_plan(rule: AlertRule, metric: str | None = None) -> Plan:
    """The rule's window query as the analytics would read it; `RuleError` when it cannot."""
    step = window_step(rule, metric)
    if rule.window_s % step:
        why = "the metric or a dimension is kept per hour" if step == 3600 else ""
        raise RuleError("window", f"whole hours ({why or f'longer than {MAX_POINTS} minutes'})")
    try:
        return plan(_query(rule, metric or measured_metric(rule), step))
    except InvalidQuery as error:
        raise _rule_error(error) from None


def requests_plan(rule: AlertRule) -> Plan:
    try:
        return window_plan(rule, "requests")
    except RuleError as error:
        raise RuleError(
            "min_requests",
            f"requests cannot be counted by this rule's groups and filters ({error.reason})",
        ) from None


_QUERY_FIELDS: Final = {
    "metric": "metric",
    "group_by": "group_by",
    "step": "window",
    "to": "window",
    "from": "window",
}


def _rule_error(error: InvalidQuery) -> RuleError:
    """The analytics' complaint about the rule's query, named by the rule's field (a filter's
    dimension as `filters.<name>`)."""
    field = _QUERY_FIELDS.get(error.parameter, f"filters.{error.parameter}")
    return RuleError(field, str(error))

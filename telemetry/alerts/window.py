"""What a rule measures at a moment: its metric per group over the window, the requests behind
each group, and for `change_pct` the metric over the window before.

The window is read from the roll-ups in whole steps (`rule.window_step`). Read by the minute, it
ends with the minute in progress, so an evaluation sees requests recorded seconds ago: at
12:03:20 a 5-minute window is [11:59, 12:04). Read by the hour (metrics and dimensions kept per
hour, and windows over 2,000 minutes), it covers the hours that are over: at 12:03:20 a 2-hour
window is [10:00, 12:00). An anomaly score is of the last hour that is over.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.alerts.gauge_metrics import GaugeSources, is_gauge
from telemetry.alerts.gauge_values import gauge_values
from telemetry.alerts.rule import (
    ANOMALY_SCORE,
    WEEK_S,
    AlertRule,
    RuleError,
    requests_plan,
    window_step,
)
from telemetry.alerts.score_rules import EVAL_SCORE, measure_scores
from telemetry.analytics import AnalyticsQuery, AnalyticsResult, run_query
from telemetry.analytics_anomalies import MAX_TOP, AnomalyReport
from telemetry.analytics_anomaly_cache import cached_anomalies
from telemetry.analytics_metrics import METRICS

Group = tuple[tuple[str, str], ...]
"""A group's labels as sorted (dimension, value) pairs; () without `group_by`."""


@dataclass(frozen=True, slots=True)
class Measured:
    value: float | None
    """The metric over the window (None when it cannot be measured, such as a percentile of no
    requests)."""
    requests: int | None
    """Requests of the group in the window; None when requests cannot be counted by the rule's
    groups and filters (a guardrail's findings by guardrail)."""
    previous: float | None = None
    """For `change_pct`: the metric over the window compared with (the one before, or the same
    window a week earlier)."""
    previous_requests: int | None = None
    """For `change_pct`: requests of the group in the window compared with."""


def window_of(rule: AlertRule, now: datetime) -> tuple[datetime, datetime]:
    step = window_step(rule)
    seconds = now.timestamp()
    end = math.ceil(seconds / step) * step if step == 60 else math.floor(seconds / step) * step
    end_at = datetime.fromtimestamp(end, UTC)
    return end_at - timedelta(seconds=rule.window_s), end_at


def counts_requests(rule: AlertRule) -> bool:
    try:
        requests_plan(rule)
    except RuleError:
        return False
    return True


def compared_window(rule: AlertRule, start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """The window a `change_pct` rule compares `[start, end)` with."""
    back = timedelta(seconds=WEEK_S if rule.compare_to == "last_week" else rule.window_s)
    return start - back, end - back


async def measure(
    engine: AsyncEngine, rule: AlertRule, now: datetime, sources: GaugeSources | None = None
) -> dict[Group, Measured]:
    """Every group that had requests (or a value) in the window, measured; for `change_pct`,
    also the groups that had some in the window compared with (a fall to nothing is a change).
    A gauge (`budget_used_pct`, `deployment_down`) is read from `sources` as it stands now."""
    if is_gauge(rule.metric):
        gauges = await gauge_values(engine, rule, now, sources)
        return {group: Measured(value, None) for group, value in gauges.items()}
    if rule.metric == EVAL_SCORE:
        found = await measure_scores(engine, rule, now)
        return {group: Measured(mean, count) for group, (mean, count) in found.items()}
    start, end = window_of(rule, now)
    if rule.metric == ANOMALY_SCORE:
        values = await _scores(engine, rule, start, end, now)
    else:
        values = await _totals(engine, rule, rule.metric, start, end)
    requests: dict[Group, float | None] | None = None
    if rule.metric == "requests":
        requests = values
    elif counts_requests(rule):
        requests = await _totals(engine, rule, "requests", start, end)
    previous: dict[Group, float | None] = {}
    previous_requests: dict[Group, float | None] | None = None
    if rule.condition == "change_pct":
        before, before_end = compared_window(rule, start, end)
        previous = await _totals(engine, rule, rule.metric, before, before_end)
        if rule.min_requests and requests is not None:
            previous_requests = await _totals(engine, rule, "requests", before, before_end)
    return measured_groups(rule, values, requests, previous, previous_requests)


def measured_groups(
    rule: AlertRule,
    values: Mapping[Group, float | None],
    requests: Mapping[Group, float | None] | None,
    previous: Mapping[Group, float | None],
    previous_requests: Mapping[Group, float | None] | None = None,
) -> dict[Group, Measured]:
    """The groups of a window from its metric, requests (None: not countable) and, for
    `change_pct`, the metric and requests (None: not asked) of the window compared with, each per
    group that had rows. Pure: the live evaluation and the preview (`telemetry.alerts.preview`)
    both measure through it."""
    additive = rule.metric in METRICS and METRICS[rule.metric].additive
    found: dict[Group, Measured] = {}
    for group in set(values) | set(requests or ()) | set(previous):
        count = None if requests is None else int(requests.get(group) or 0)
        if count == 0 and rule.group_by and not previous.get(group):
            continue
        value = values.get(group, 0.0 if additive else None)
        compared = None if previous_requests is None else int(previous_requests.get(group) or 0)
        found[group] = Measured(value, count, previous.get(group), compared)
    return found


async def _totals(
    engine: AsyncEngine, rule: AlertRule, metric: str, start: datetime, end: datetime
) -> dict[Group, float | None]:
    query = AnalyticsQuery(
        metric=metric,
        start=start,
        end=end,
        step=window_step(rule),
        group_by=tuple(rule.group_by),
        filters={name: tuple(values) for name, values in rule.filters.items()},
        points=False,
    )
    result: AnalyticsResult = await run_query(engine, query, scope=rule.workspace_id)
    return {tuple(sorted(series.group.items())): _number(series.total) for series in result.series}


async def anomaly_report(
    engine: AsyncEngine, rule: AlertRule, start: datetime, end: datetime, now: datetime
) -> tuple[str | None, AnomalyReport]:
    """The rule's dimension (None without `group_by`) and the anomaly report scoring its kind
    over [start, end) per group (the top groups by requests), from the anomaly reports' cache:
    rules and pages asking about the same hours score them once."""
    assert rule.anomaly_kind is not None
    dimension = rule.group_by[0] if rule.group_by else None
    report = await cached_anomalies(
        engine,
        start=start,
        end=end,
        now=now,
        kinds=(rule.anomaly_kind,),
        dimensions=(dimension,),
        top=MAX_TOP,
        filters={name: tuple(values) for name, values in rule.filters.items()},
        scope=rule.workspace_id,
    )
    return dimension, report


async def _scores(
    engine: AsyncEngine, rule: AlertRule, start: datetime, end: datetime, now: datetime
) -> dict[Group, float | None]:
    """The anomaly score of the window's hour per group."""
    dimension, report = await anomaly_report(engine, rule, start, end, now)
    found: dict[Group, float | None] = {}
    for series in report.series:
        hours = series.between(start, end)
        group: Group = ((dimension, series.group),) if dimension else ()
        found[group] = hours[-1].score if hours else None
    return found


def _number(value: float | Decimal | None) -> float | None:
    return None if value is None else float(value)

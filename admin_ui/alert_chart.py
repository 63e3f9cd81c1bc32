"""An alert's chart: the rule's metric over the alert's window, for the alert's group, with the
rule's warning and critical thresholds as dashed lines and the time the alert was open shaded.

The metric is read through the analytics (`telemetry.analytics.run_query`, as the API's
`GET /admin/api/analytics/{metric}` reads it) with the rule's filters and the group's labels as
filters, per step (a minute when the range allows), so the line shows how the metric moved
rather than the rule's sliding window; the thresholds are in the same unit. An anomaly score or
a change in percent is not on the metric's scale: the chart then shows the metric without
thresholds and says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncEngine

from admin_ui.chart_band import Drawn, Span, band_chart
from admin_ui.chart_parts import Series
from admin_ui.chart_units import UNITS
from telemetry.alerts.rule import ANOMALY_SCORE, AlertRule, RuleError, measured_metric, window_step
from telemetry.analytics import AnalyticsQuery, InvalidQuery, choose_step, run_query
from telemetry.analytics_metrics import METRICS

CRITICAL_COLOUR: Final = "#dc2626"
WARNING_COLOUR: Final = "#d97706"
METRIC_COLOUR: Final = "#3b6fd8"


@dataclass(frozen=True, slots=True)
class AlertChart:
    svg: Markup
    metric: str
    step_seconds: int
    note: str
    """Why thresholds are not drawn, or what the line is; empty when there is nothing to say."""


def _aligned(start: datetime, end: datetime, step: int) -> tuple[datetime, datetime]:
    first = math.floor(start.timestamp() / step) * step
    last = math.ceil(end.timestamp() / step) * step
    return datetime.fromtimestamp(first, UTC), datetime.fromtimestamp(max(last, first + step), UTC)


def _filters(rule: AlertRule, labels: dict[str, str]) -> dict[str, tuple[str, ...]]:
    filters = {name: tuple(values) for name, values in rule.filters.items()}
    for name in rule.group_by:
        if name in labels:
            filters[name] = (labels[name],)
    return filters


def _flat(name: str, value: float, times: list[datetime]) -> Series:
    return Series(name, [(moment, value) for moment in times])


async def alert_chart(
    engine: AsyncEngine,
    rule: AlertRule,
    labels: dict[str, str],
    *,
    workspace_id: str,
    start: datetime,
    end: datetime,
    opened: datetime,
    closed: datetime | None,
) -> AlertChart:
    metric_name = measured_metric(rule)
    metric = METRICS[metric_name]
    try:
        minimum = window_step(rule)
    except RuleError:
        minimum = 60
    step = choose_step(start, end, minimum)
    start, end = _aligned(start, end, step)
    query = AnalyticsQuery(
        metric=metric_name,
        start=start,
        end=end,
        step=step,
        filters=_filters(rule, labels),
    )
    try:
        result = await run_query(engine, query, scope=workspace_id)
    except InvalidQuery as error:
        return AlertChart(Markup(""), metric.title, step, f"The metric cannot be drawn: {error}.")
    points = [
        (moment, None if value is None else float(value))
        for series in result.series
        for moment, value in series.points
    ]
    steps = int((end - start).total_seconds()) // step
    times = [datetime.fromtimestamp(start.timestamp() + n * step, UTC) for n in range(steps + 1)]
    drawn = [Drawn(Series(metric.title, points), colour=METRIC_COLOUR)]
    note = ""
    if rule.metric == ANOMALY_SCORE or rule.condition == "change_pct":
        note = (
            "The rule compares an anomaly score, not the metric itself: no threshold line."
            if rule.metric == ANOMALY_SCORE
            else "The rule compares the change in percent from the window before: no threshold "
            "line on the metric's scale."
        )
    else:
        for severity, value, colour in (
            ("Critical", rule.critical, CRITICAL_COLOUR),
            ("Warning", rule.warning, WARNING_COLOUR),
        ):
            if value is not None:
                drawn.append(
                    Drawn(
                        _flat(f"{severity} threshold", value, times),
                        colour=colour,
                        dashed=True,
                        level=True,
                    )
                )
    unit = metric.unit if metric.unit in UNITS else "count"
    svg = band_chart(
        drawn,
        spans=[Span(opened, closed or end, "The alert was open")],
        start=start,
        end=end,
        step_seconds=step,
        unit=unit,
        chart_id="alert-chart",
        title=f"{metric.title} over the alert's window, with the rule's thresholds",
    )
    return AlertChart(svg, metric.title, step, note)

"""The anomalies panel: hours of cost, requests, error rate and latency that strayed from their
seasonal baseline (`telemetry.analytics_anomalies`), drawn for a dashboard.

The page's range says which hours to look at (whole hours, never the one in progress); each
anomaly found there is listed, newest first, with its kind, group, hours, score, what was
expected and what happened, and a chart of the hours around it: the measured values, the
expected line (the baseline's median), the band the score stays under the threshold in, and the
anomaly's own hours marked. Below, the latest score of every group and kind.

The panel reads `group_by` (workspace and/or model; default both) and `top` (groups per
dimension, the busiest by requests), and a `kind` filter (`filters: {"kind": [...]}`). The page's
`kind` parameter narrows it further (the anomalies page's own select), and the page's filters of
the roll-ups' dimensions apply to every series.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from jinja2 import Environment
from markupsafe import Markup

from admin_ui.analytics_names import DIMENSION_TITLES
from admin_ui.analytics_state import AnalyticsState
from admin_ui.chart_band import Band, Drawn, Span, band_chart
from admin_ui.chart_parts import Series
from admin_ui.insight_params import INSIGHT_FILTERS
from admin_ui.table_values import table_value
from admin_ui.templating import console_environment
from telemetry.analytics import InvalidQuery
from telemetry.analytics_anomalies import (
    DEFAULT_TOP,
    GROUP_DIMENSIONS,
    KIND_METRICS,
    KIND_TITLES,
    KIND_UNITS,
    AnomalyReport,
    GroupAnomaly,
    GroupScores,
)
from telemetry.analytics_anomaly_cache import cached_anomalies
from telemetry.anomalies import HourScore

KIND_PARAMETER: Final = "kind"
MAX_SHOWN: Final = 25
"""Anomalies drawn with a chart; more are counted (the API lists every one)."""
BEFORE: Final = timedelta(hours=36)
AFTER: Final = timedelta(hours=12)
HOUR: Final = timedelta(hours=1)
ACTUAL_COLOUR: Final = "#2f6fe4"
EXPECTED_COLOUR: Final = "#8b949e"


@functools.cache
def _environment() -> Environment:
    return console_environment()


@dataclass(frozen=True, slots=True)
class AnomalyItem:
    found: GroupAnomaly
    dimension_title: str
    label: str
    href: str | None
    chart: Markup

    @property
    def kind_title(self) -> str:
        return KIND_TITLES[self.found.kind]

    def value_text(self, value: float) -> str:
        return table_value(value, self.found.unit)


@dataclass(frozen=True, slots=True)
class LatestRow:
    dimension: str | None
    value: str
    label: str
    href: str | None
    scores: dict[str, HourScore | None]


@dataclass(frozen=True, slots=True)
class AnomaliesView:
    report: AnomalyReport
    items: list[AnomalyItem]
    more: int
    latest: list[LatestRow]
    kinds: tuple[str, ...]
    kind_asked: str
    """The page's `kind` ("" for every kind the panel shows)."""
    kept: list[tuple[str, str]]
    """The page's other parameters, for the kind select's form."""
    notes: list[str]

    @property
    def threshold(self) -> float:
        return self.report.options.threshold


def page_kind(state: AnalyticsState) -> str:
    """The page's `kind` parameter ("" when absent); `InvalidQuery` when it names no kind."""
    asked = next((value for name, value in state.parameters if name == KIND_PARAMETER), "")
    if asked and asked not in KIND_METRICS:
        raise InvalidQuery(KIND_PARAMETER, f"must be one of {', '.join(KIND_METRICS)}")
    return asked


def _window(found: GroupAnomaly, scores: GroupScores, end: datetime) -> list[HourScore]:
    anomaly = found.anomaly
    first = max(anomaly.start - BEFORE, scores.hours[0].at if scores.hours else anomaly.start)
    last = min(anomaly.end + AFTER, end)
    return scores.between(first, max(last, anomaly.end))


def anomaly_chart(
    found: GroupAnomaly, hours: Sequence[HourScore], threshold: float, chart_id: str, title: str
) -> Markup:
    """The hours around an anomaly: measured, expected, the band under the threshold."""
    unit = KIND_UNITS[found.kind]
    band = [
        (
            hour.at,
            None if hour.scale is None or hour.expected is None
            else max(0.0, hour.expected - threshold * hour.scale),
            None if hour.scale is None or hour.expected is None
            else hour.expected + threshold * hour.scale,
        )
        for hour in hours
    ]  # fmt: skip
    anomaly = found.anomaly
    return band_chart(
        [
            Drawn(
                Series(KIND_TITLES[found.kind], [(hour.at, hour.value) for hour in hours]),
                ACTUAL_COLOUR,
            ),
            Drawn(
                Series("Expected", [(hour.at, hour.expected) for hour in hours]),
                EXPECTED_COLOUR,
                dashed=True,
            ),
        ],
        bands=[Band(f"Score under {threshold:g}", band, EXPECTED_COLOUR)],
        spans=[Span(anomaly.start, anomaly.end, f"Anomaly, score {anomaly.score:.1f}")],
        start=hours[0].at,
        end=hours[-1].at + HOUR,
        step_seconds=3600,
        unit=unit,
        chart_id=chart_id,
        title=title,
        height=170,
        width=1180,
    )


def _label(state: AnalyticsState, dimension: str | None, value: str) -> tuple[str, str | None]:
    if dimension is None:
        return "Everything shown", None
    target = state.names.workspace_slug(value) if dimension == "workspace" else value
    return state.names.label(dimension, value), state.links.adding(dimension, target)


async def read_anomalies(
    state: AnalyticsState,
    *,
    dimensions: Sequence[str],
    kinds: Sequence[str],
    top: int | None,
    element_id: str,
    now: datetime,
) -> AnomaliesView:
    for dimension in dimensions:
        if dimension not in GROUP_DIMENSIONS:
            raise InvalidQuery(
                "group_by", f"anomalies are by {' and '.join(GROUP_DIMENSIONS)}, not {dimension}"
            )
    asked = page_kind(state)
    shown_kinds = tuple(k for k in (kinds or KIND_METRICS) if k in KIND_METRICS)
    if asked:
        shown_kinds = tuple(k for k in shown_kinds if k == asked)
    filters = {n: v for n, v in state.filters.values.items() if n in INSIGHT_FILTERS}
    notes = [
        f"Not filtered by {DIMENSION_TITLES.get(name, name).lower()}: anomalies are found in "
        "the roll-ups, which do not keep it."
        for name in state.filters.values
        if name not in INSIGHT_FILTERS
    ]
    page_range = state.page_range
    report = await cached_anomalies(
        state.runner.engine,
        start=page_range.start,
        end=page_range.end,
        now=now,
        kinds=shown_kinds,
        dimensions=tuple(dimensions or GROUP_DIMENSIONS),
        top=top or DEFAULT_TOP,
        filters=filters,
        scope=state.scope,
    )
    series = {(s.kind, s.dimension, s.group): s for s in report.series}
    items = []
    for number, found in enumerate(report.anomalies[:MAX_SHOWN], start=1):
        label, href = _label(state, found.dimension, found.group)
        scores = series[(found.kind, found.dimension, found.group)]
        title = (
            f"{KIND_TITLES[found.kind]} of {label} around {found.anomaly.start:%Y-%m-%d %H:%M} UTC"
        )
        items.append(
            AnomalyItem(
                found=found,
                dimension_title=DIMENSION_TITLES.get(found.dimension or "", "All"),
                label=label,
                href=href,
                chart=anomaly_chart(
                    found,
                    _window(found, scores, report.end),
                    report.options.threshold,
                    f"{element_id}-anomaly-{number}",
                    title,
                ),
            )
        )
    latest: dict[tuple[str | None, str], LatestRow] = {}
    for scores in report.series:
        key = (scores.dimension, scores.group)
        if key not in latest:
            label, href = _label(state, scores.dimension, scores.group)
            latest[key] = LatestRow(scores.dimension, scores.group, label, href, {})
        latest[key].scores[scores.kind] = scores.latest
    kept = [(name, value) for name, value in state.parameters if name != KIND_PARAMETER]
    return AnomaliesView(
        report=report,
        items=items,
        more=max(0, len(report.anomalies) - MAX_SHOWN),
        latest=list(latest.values()),
        kinds=shown_kinds,
        kind_asked=asked,
        kept=kept,
        notes=notes,
    )


def render_anomalies(view: AnomaliesView, element_id: str, path: str) -> Markup:
    template = _environment().get_template("analytics/anomalies_panel.html")
    return Markup(
        template.render(
            view=view,
            element_id=element_id,
            path=path,
            kind_titles=KIND_TITLES,
            all_kinds=tuple(KIND_METRICS),
            dimension_titles=DIMENSION_TITLES,
            table_value=table_value,
        )
    )

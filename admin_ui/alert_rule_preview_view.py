"""A rule's 7-day preview as the rule editor shows it: a chart per group (the groups that fired
longest first) of the metric with the warning and critical thresholds as dashed lines and the
would-be firing shaded, the sentence that sums it up, and the episodes as a table."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from markupsafe import Markup

from admin_ui.chart_band import Drawn, Span, band_chart
from admin_ui.chart_parts import Series
from admin_ui.chart_units import format_value
from telemetry.alerts.preview import Episode, Preview
from telemetry.alerts.preview_answer import metric_unit

CHARTS_SHOWN: Final = 4
EPISODES_SHOWN: Final = 50
WARNING_COLOUR: Final = "#d97706"
CRITICAL_COLOUR: Final = "#dc2626"
METRIC_COLOUR: Final = "#2563eb"
_CHART_UNITS: Final = {
    "percent": "percent",
    "percent_change": "percent",
    "usd": "usd",
    "ms": "ms",
    "tokens": "tokens",
}
"""The preview's unit → the chart's (the rest are counts); a change in percent is drawn as a
ratio, as every percentage of the charts."""


@dataclass(frozen=True, slots=True)
class EpisodeRow:
    group: str
    started_at: datetime
    fired_at: datetime | None
    ended_at: datetime | None
    severity: str
    firing: str


@dataclass(frozen=True, slots=True)
class PreviewView:
    sentence: str
    fired: int
    hours_firing: float
    charts: list[tuple[str, Markup]]
    more_groups: int
    episodes: list[EpisodeRow]
    more_episodes: int
    thresholds: list[tuple[str, str]]
    """(severity, threshold as written)"""


def hours_text(hours: float) -> str:
    rounded = round(hours, 1)
    return f"{int(rounded)}" if rounded.is_integer() else f"{rounded:.1f}"


def fired_sentence(fired: int, hours: float) -> str:
    times = "time" if fired == 1 else "times"
    unit = "hour" if hours_text(hours) == "1" else "hours"
    return (
        f"Would have fired {fired} {times} in the last 7 days ({hours_text(hours)} {unit} firing)."
    )


def group_name(labels: dict[str, str]) -> str:
    return ", ".join(f"{name}={value}" for name, value in labels.items()) or "All requests"


def preview_view(preview: Preview) -> PreviewView:
    rule = preview.rule
    unit = _CHART_UNITS.get(metric_unit(rule.metric, rule.condition), "count")
    scale = 0.01 if rule.condition == "change_pct" else 1.0
    thresholds: list[tuple[str, str]] = [
        (severity, format_value(value * scale, unit)) for severity, value in rule.thresholds
    ]
    charted = [group for group in preview.groups if group.points]
    charts = []
    for number, group in enumerate(charted[:CHARTS_SHOWN], start=1):
        name = group_name(group.labels)
        times = [at for at, _ in group.points]
        lines = [
            Drawn(
                Series(
                    name,
                    [(at, None if value is None else value * scale) for at, value in group.points],
                ),
                colour=METRIC_COLOUR,
                level=True,
            )
        ]
        for severity, value in rule.thresholds:
            colour = CRITICAL_COLOUR if severity == "critical" else WARNING_COLOUR
            level = value * scale
            lines.append(
                Drawn(
                    Series(severity.capitalize(), [(at, level) for at in times]),
                    colour=colour,
                    dashed=True,
                    level=True,
                )
            )
        spans = [_span(episode, preview.end, name) for episode in group.episodes]
        chart = band_chart(
            lines,
            spans=[span for span in spans if span is not None],
            start=preview.start,
            end=preview.end,
            step_seconds=preview.point_step,
            unit=unit,
            chart_id=f"rule-preview-{number}",
            title=f"{name}: the last 7 days with the thresholds and the firing shaded",
            height=200,
        )
        charts.append((name, chart))
    episodes = sorted(
        (
            (group_name(group.labels), episode)
            for group in preview.groups
            for episode in group.episodes
        ),
        key=lambda item: item[1].started_at,
        reverse=True,
    )
    return PreviewView(
        sentence=fired_sentence(preview.fired, preview.hours_firing),
        fired=preview.fired,
        hours_firing=preview.hours_firing,
        charts=charts,
        more_groups=max(0, len(charted) - CHARTS_SHOWN) + len(preview.groups) - len(charted),
        episodes=[_row(name, episode, preview.end) for name, episode in episodes[:EPISODES_SHOWN]],
        more_episodes=max(0, len(episodes) - EPISODES_SHOWN),
        thresholds=thresholds,
    )


def _span(episode: Episode, end: datetime, name: str) -> Span | None:
    if episode.fired_at is None:
        return None
    return Span(
        episode.fired_at,
        episode.ended_at or end,
        f"{name}: would have fired ({episode.severity})",
    )


def _duration(seconds: float) -> str:
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    return f"{hours_text(seconds / 3600)} h"


def _row(name: str, episode: Episode, end: datetime) -> EpisodeRow:
    return EpisodeRow(
        group=name,
        started_at=episode.started_at,
        fired_at=episode.fired_at,
        ended_at=episode.ended_at,
        severity=episode.severity or "",
        firing=_duration(episode.firing_s(end)) if episode.fired_at else "—",
    )

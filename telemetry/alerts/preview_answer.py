"""A rule's preview as the admin API answers it (`POST /admin/api/alerts/rules/preview`) and the
console's rule editor draws it: values in the metric's unit as the analytics answer them (a
rate is a ratio), times in ISO 8601 UTC."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from telemetry.alerts.evaluation import metric_title
from telemetry.alerts.preview import Episode, Preview
from telemetry.alerts.rule import ANOMALY_SCORE
from telemetry.analytics_metrics import METRICS


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def metric_unit(metric: str, condition: str) -> str:
    """The unit of the values previewed: `percent_change` for a change in percent (50: a rise by half), `score` for an anomaly score,
    else the metric's (`percent` there is a ratio, 0..1)."""
    if condition == "change_pct":
        return "percent_change"
    if metric == ANOMALY_SCORE:
        return "score"
    return METRICS[metric].unit


def episode_item(episode: Episode, end: datetime) -> dict[str, Any]:
    return {
        "started_at": iso(episode.started_at),
        "fired_at": iso(episode.fired_at),
        "ended_at": iso(episode.ended_at),
        "severity": episode.severity,
        "firing_s": episode.firing_s(end),
    }


def preview_item(preview: Preview) -> dict[str, Any]:
    rule = preview.rule
    by_severity = preview.by_severity()
    return {
        "object": "alert_rule_preview",
        "from": iso(preview.start),
        "to": iso(preview.end),
        "step": preview.step,
        "point_step": preview.point_step,
        "metric": {
            "name": rule.metric,
            "kind": rule.anomaly_kind,
            "title": metric_title(rule),
            "unit": metric_unit(rule.metric, rule.condition),
        },
        "condition": rule.condition,
        "thresholds": {"warning": rule.warning, "critical": rule.critical},
        "totals": {
            "fired": preview.fired,
            "hours_firing": round(preview.hours_firing, 3),
            "episodes": len(preview.episodes),
            "by_severity": {
                severity: {"fired": int(found["fired"]), "hours_firing": round(found["hours"], 3)}
                for severity, found in by_severity.items()
            },
        },
        "groups": [
            {
                "labels": group.labels,
                "points": [[iso(at), value] for at, value in group.points],
                "episodes": [episode_item(episode, preview.end) for episode in group.episodes],
            }
            for group in preview.groups
        ],
    }

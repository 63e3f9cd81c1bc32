"""What a dashboard is: a named list of panels, each a metric shown one way.

The console's analytics pages (Overview, Usage, Cost, ...) are dashboards defined in code; a
saved dashboard is the same structure stored per workspace, so a built-in page can be copied and
changed. A panel of kind `metric` is an analytics query (`telemetry.analytics`) drawn as a
chart; the other kinds are the views that are more than one query (budgets, forecast,
anomalies, the providers table, the token waterfall, cache savings).

The page's time range and step apply to every panel; a panel holds no time of its own.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final, Literal

import msgspec

from telemetry.analytics import AnalyticsQuery, InvalidQuery, plan

PanelKind = Literal[
    "metric", "budgets", "forecast", "anomalies", "providers", "token_waterfall", "cache_roi"
]
ChartKind = Literal["line", "area", "stacked", "bar", "table", "stat"]
Width = Literal["full", "half", "third", "quarter"]

MAX_PANELS: Final = 40
MAX_NAME: Final = 200
MAX_TITLE: Final = 200
MAX_FILTER_VALUES: Final = 50


class Panel(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    title: str
    kind: PanelKind = "metric"
    metric: str | None = None
    """For `metric` panels: a name from `telemetry.analytics_metrics.METRICS`."""
    chart: ChartKind = "line"
    group_by: list[str] = msgspec.field(default_factory=list)
    filters: dict[str, list[str]] = msgspec.field(default_factory=dict)
    top: int | None = None
    width: Width = "half"


class Dashboard(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    name: str
    description: str = ""
    panels: list[Panel] = msgspec.field(default_factory=list)


class Problem(msgspec.Struct, frozen=True):
    """One thing wrong with a dashboard: where (`panels[2].group_by`) and what."""

    path: str
    message: str


def panel_query(panel: Panel, start: datetime, end: datetime, step: int | None) -> AnalyticsQuery:
    """The analytics query a `metric` panel runs over the page's range."""
    assert panel.metric is not None
    return AnalyticsQuery(
        metric=panel.metric,
        start=start,
        end=end,
        step=step,
        group_by=tuple(panel.group_by),
        filters={name: tuple(values) for name, values in panel.filters.items()},
        top=panel.top if panel.top is not None else (10 if panel.group_by else None),
    )


def problems(dashboard: Dashboard) -> list[Problem]:
    """Everything that stops the dashboard from being shown; [] when it can be."""
    found: list[Problem] = []
    if not dashboard.name.strip():
        found.append(Problem("name", "must not be empty"))
    if len(dashboard.name) > MAX_NAME:
        found.append(Problem("name", f"must be at most {MAX_NAME} characters"))
    if len(dashboard.panels) > MAX_PANELS:
        found.append(Problem("panels", f"at most {MAX_PANELS} panels"))
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for n, panel in enumerate(dashboard.panels):
        path = f"panels[{n}]"
        if not panel.title.strip() or len(panel.title) > MAX_TITLE:
            found.append(Problem(f"{path}.title", f"must be 1 to {MAX_TITLE} characters"))
        if any(len(values) > MAX_FILTER_VALUES for values in panel.filters.values()):
            found.append(
                Problem(f"{path}.filters", f"at most {MAX_FILTER_VALUES} values a dimension")
            )
        if panel.kind != "metric":
            continue
        if panel.metric is None:
            found.append(Problem(f"{path}.metric", "a metric panel needs a metric"))
            continue
        try:
            plan(panel_query(panel, now - timedelta(days=1), now, None))
        except InvalidQuery as error:
            where = {"metric": "metric", "group_by": "group_by", "top": "top"}.get(
                error.parameter, "filters"
            )
            found.append(Problem(f"{path}.{where}", str(error)))
    return found

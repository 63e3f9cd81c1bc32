"""The forecast panel: month-end and 30-day spend (`telemetry.analytics_forecast`), drawn for a
dashboard.

A `forecast` panel without `group_by` shows everything the page shows (its workspace and
filters) as one: the month so far, the month's end and the next 30 days with their 80 %
intervals, the method and its backtest error, and a chart of daily spend over the last eight
weeks with the forecast and its interval band after it. With `group_by` (workspace, key or
model) it is a table, one row per group (the panel's `top`, ten by default, the largest by
spend), each group a link that narrows the page to it, so the chart above shows that group.

Forecasts look at their own history (the last eight weeks, whole UTC days), whatever the page's
range: the range picker does not change them. Page filters of the roll-ups' dimensions apply;
others (tags, end users, rules, guardrails) cannot and the panel says so.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from jinja2 import Environment
from markupsafe import Markup

from admin_ui.analytics_names import DIMENSION_TITLES
from admin_ui.analytics_state import AnalyticsState
from admin_ui.chart_band import Band, Drawn, band_chart
from admin_ui.chart_parts import Series
from admin_ui.chart_svg import sparkline
from admin_ui.insight_params import INSIGHT_FILTERS
from admin_ui.table_values import money, table_value
from admin_ui.templating import console_environment
from telemetry.analytics_forecast import (
    BACKTEST_FOLDS,
    BACKTEST_HORIZON,
    DAY,
    DIMENSIONS,
    HISTORY_DAYS,
    SEASON,
    GroupForecast,
    SpendForecast,
    forecast_spend,
)
from telemetry.forecast import INTERVAL, Projection

SPENT_COLOUR: Final = "#2f6fe4"
METHOD_TITLES: Final = {
    "holt-winters": "Holt-Winters",
    "seasonal-naive-trend": "Seasonal naive with trend",
    "linear-trend": "Linear trend",
    "mean": "Mean",
    "none": "None (no spend yet)",
}


@functools.cache
def _environment() -> Environment:
    return console_environment()


@dataclass(frozen=True, slots=True)
class ForecastRow:
    dimension: str
    value: str
    label: str
    href: str | None
    forecast: GroupForecast
    spark: Markup


@dataclass(frozen=True, slots=True)
class ForecastView:
    found: SpendForecast
    dimension: str | None
    rows: list[ForecastRow]
    chart: Markup | None
    notes: list[str]

    @property
    def empty(self) -> bool:
        if self.dimension is not None:
            return not self.rows
        return not self.found.total.history and not self.found.total.spent_today


def range_text(projection: Projection) -> str:
    return f"{money(projection.lower)} to {money(projection.upper)}"


def wape_text(forecast: GroupForecast) -> str:
    wape = forecast.backtest.wape
    return "—" if wape is None else f"{wape * 100:.1f} %"


def wape_hint(forecast: GroupForecast) -> str:
    tested = forecast.backtest
    if tested.wape is None:
        return (
            f"Too little history to test: a backtest needs more than {BACKTEST_HORIZON} days "
            "of spend before the days it forecasts."
        )
    return (
        f"Weighted absolute percentage error of {METHOD_TITLES.get(tested.method, tested.method)} "
        f"forecasts {BACKTEST_HORIZON} days ahead, from {tested.folds} earlier points of this "
        "history: the sum of the daily errors over the sum of the daily spend."
    )


def forecast_chart(found: SpendForecast, group: GroupForecast, chart_id: str, title: str) -> Markup:
    """Daily spend of the history, then the forecast and its interval from today on, to the
    month's end or 30 days on, whichever is later."""
    # From the first day of spend (at most eight weeks back), so a young history fills the chart.
    start = group.history[0][0] if group.history else found.today - SEASON * DAY
    end = max(found.month_end, found.next_end)
    steps = len(group.daily.values)
    ahead = [found.day(step) for step in range(steps)]
    history = [(day, value) for day, value in group.history if day >= start]
    bridge = history[-1:]  # the forecast line starts where the history ends
    return band_chart(
        [
            Drawn(Series("Spent", history), SPENT_COLOUR),
            Drawn(
                Series("Forecast", bridge + list(zip(ahead, group.daily.values, strict=True))),
                SPENT_COLOUR,
                dashed=True,
            ),
        ],
        bands=[
            Band(
                f"{INTERVAL:.0%} interval",
                list(zip(ahead, group.daily.lower, group.daily.upper, strict=True)),
                SPENT_COLOUR,
            )
        ],
        start=start,
        end=end,
        step_seconds=int(DAY.total_seconds()),
        unit="usd",
        chart_id=chart_id,
        title=title,
        width=1180,
    )


async def read_forecast(
    state: AnalyticsState,
    *,
    dimension: str | None,
    top: int,
    chart_id: str,
    title: str,
    now: datetime,
) -> ForecastView:
    if dimension is not None and dimension not in DIMENSIONS:
        raise ValueError(f"a forecast panel is by {', '.join(DIMENSIONS)}, not {dimension!r}")
    filters = {n: v for n, v in state.filters.values.items() if n in INSIGHT_FILTERS}
    notes = [
        f"Not filtered by {DIMENSION_TITLES.get(name, name).lower()}: spend is forecast from "
        "the roll-ups, which do not keep it."
        for name in state.filters.values
        if name not in INSIGHT_FILTERS
    ]
    found = await forecast_spend(
        state.runner.engine,
        dimension=dimension,
        now=now,
        top=top,
        filters=filters,
        scope=state.scope,
    )
    rows = []
    for group in found.groups:
        assert dimension is not None
        target = (
            state.names.workspace_slug(group.group) if dimension == "workspace" else group.group
        )
        rows.append(
            ForecastRow(
                dimension=dimension,
                value=group.group,
                label=state.names.label(dimension, group.group),
                href=state.links.adding(dimension, target),
                forecast=group,
                spark=sparkline([value for _, value in group.history], unit="usd"),
            )
        )
    chart = None
    if dimension is None:
        chart = forecast_chart(found, found.total, chart_id, title)
    return ForecastView(found=found, dimension=dimension, rows=rows, chart=chart, notes=notes)


def render_forecast(view: ForecastView, element_id: str) -> Markup:
    template = _environment().get_template("analytics/forecast_panel.html")
    return Markup(
        template.render(
            view=view,
            element_id=element_id,
            money=money,
            table_value=table_value,
            range_text=range_text,
            wape_text=wape_text,
            wape_hint=wape_hint,
            method_titles=METHOD_TITLES,
            dimension_titles=DIMENSION_TITLES,
            interval=INTERVAL,
            horizon=BACKTEST_HORIZON,
            folds=BACKTEST_FOLDS,
            history_days=HISTORY_DAYS,
        )
    )

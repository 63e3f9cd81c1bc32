"""Draw a dashboard: every panel's query run concurrently within the viewer's scope, each panel
drawn as its chart says, with its title, unit, a CSV download of its numbers, an empty state and
links that drill down.

    body = await render_dashboard(request, dashboard, page_range)   # Markup for a template

The built-in analytics pages, saved dashboards and any page that shows panels call this. A
`metric` panel is one analytics query (`dashboard_model.panel_query`) over the page's range,
narrowed by the page's filters (`admin_ui.analytics_filters`), drawn as:

- `line`, `area`, `stacked`: values over time, one series per group;
- `bar`: the groups' totals as bars (read as totals only), with the groups listed below as
  drill-down links;
- `table`: the groups' totals with their share and a sparkline (none for "(other)"), each
  group a drill-down link;
- `stat`: one tile, the total with its change against the previous period and a sparkline.

Composite kinds: `token_waterfall` and `cache_roi` (`admin_ui.panel_costs`), `budgets`
(`admin_ui.panel_budgets`), `providers` (`admin_ui.panel_providers`), `forecast`
(`admin_ui.panel_forecast`) and `anomalies` (`admin_ui.panel_anomalies`), the last two drawn by
their own templates into `PanelView.body`.

A panel that cannot be drawn (a metric the page's filters do not fit, a query refused) shows its
problem in place; the rest of the page is drawn all the same.
"""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

import msgspec
from jinja2 import Environment
from litestar import Request
from markupsafe import Markup

from admin_ui.analytics_filters import DRILL_PATH, FilterLinks, PageFilters
from admin_ui.analytics_links import api_url
from admin_ui.analytics_names import DIMENSION_TITLES
from admin_ui.analytics_range import PageRange, per_step, step_label
from admin_ui.analytics_state import AnalyticsState, analytics_state
from admin_ui.chart_colors import series_color
from admin_ui.chart_svg import Series, bar_chart, sparkline, stat_tile, time_chart
from admin_ui.dashboard_model import Dashboard, Panel, panel_query
from admin_ui.panel_anomalies import read_anomalies, render_anomalies
from admin_ui.panel_budgets import BudgetsView, read_budgets
from admin_ui.panel_costs import CacheReturn, Waterfall, read_cache_return, read_waterfall
from admin_ui.panel_forecast import read_forecast, render_forecast
from admin_ui.panel_providers import ProviderRow, measure_units, read_providers
from admin_ui.state import gateway_of
from admin_ui.table_values import table_value
from admin_ui.templating import console_environment
from telemetry.analytics import OTHER, AnalyticsQuery, AnalyticsResult, InvalidQuery, plan
from telemetry.analytics_forecast import DEFAULT_TOP as FORECAST_TOP
from telemetry.analytics_metrics import METRICS, Metric

AnyRequest = Request[Any, Any, Any]

HOUR: Final = 3600
HOURLY_DIMENSIONS: Final = frozenset(
    {"tag", "end_user", "rule", "guardrail", "action", "entity_type"}
)
NO_SPEND_TEXT: Final = (
    "No spend in the last eight weeks to forecast from: forecasts start with a day of spend."
)
SUMMED_UNITS: Final = frozenset({"count", "tokens", "usd"})
"""Units of metrics whose groups with a total of nothing are left out of a chart's legend."""
CHART_WIDTHS: Final = {"full": 1180, "half": 580, "third": 380, "quarter": 280}
"""A chart's drawing width by its panel's: about the panel's own on a wide screen, so that text
is drawn near its natural size (the drawing scales to its column)."""
EMPTY_TEXTS: Final = {
    "usd": "No spend in this range.",
    "tokens": "No tokens in this range.",
    "ms": "No requests to time in this range.",
    "percent": "No requests in this range.",
}


@functools.cache
def _environment() -> Environment:
    return console_environment()


# --- what a template draws -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cell:
    dimension: str
    value: str
    label: str
    href: str | None
    colour: str | None


@dataclass(frozen=True, slots=True)
class GroupRow:
    cells: list[Cell]
    value: float | Decimal | None
    text: str
    exact: str
    """The value as the API writes it (for a reader that compares)."""
    share: float | None
    spark: Markup | None


@dataclass(frozen=True, slots=True)
class Crumb:
    label: str
    href: str | None


@dataclass(slots=True)
class PanelView:
    index: int
    panel: Panel
    title: str
    kind: str
    chart: str
    width: str
    unit: str | None = None
    value_title: str = ""
    subtitle: str = ""
    subtitle_hint: str = ""
    csv_url: str | None = None
    json_url: str | None = None
    svg: Markup | None = None
    tile: Markup | None = None
    rows: list[GroupRow] = field(default_factory=list)
    dimensions: list[str] = field(default_factory=list)
    crumbs: list[Crumb] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    empty: bool = False
    empty_text: str = ""
    budgets: BudgetsView | None = None
    providers: list[ProviderRow] | None = None
    waterfall: Waterfall | None = None
    cache: CacheReturn | None = None
    body: Markup | None = None
    """The panel drawn by a template of its own (forecasts, anomalies)."""

    @property
    def element_id(self) -> str:
        return f"panel-{self.index}"


@dataclass(frozen=True, slots=True)
class DashboardView:
    dashboard: Dashboard
    panels: list[PanelView]
    page_range: PageRange
    chips: list[tuple[str, str, str]]
    """(dimension title, value shown, URL without it) of each page filter."""
    links: FilterLinks

    @property
    def has_data(self) -> bool:
        return any(not panel.empty and panel.error is None for panel in self.panels)

    def groups(self) -> list[tuple[str, list[PanelView]]]:
        """Consecutive stat panels as one strip of tiles, the others one by one."""
        found: list[tuple[str, list[PanelView]]] = []
        for panel in self.panels:
            if panel.chart == "stat" and panel.kind == "metric":
                if found and found[-1][0] == "tiles":
                    found[-1][1].append(panel)
                    continue
                found.append(("tiles", [panel]))
            else:
                found.append(("panel", [panel]))
        return found


# --- queries ---------------------------------------------------------------------------------


def _finest_step(query: AnalyticsQuery) -> int:
    metric = METRICS.get(query.metric)
    named = set(query.group_by) | set(query.filters)
    if (metric is not None and metric.table == "breakdowns") or named & HOURLY_DIMENSIONS:
        return HOUR
    return 60


def fit_step(query: AnalyticsQuery, step: int) -> AnalyticsQuery:
    """The query at the page's step, or at the nearest whole hours for a query only the hourly
    breakdowns answer."""
    finest = _finest_step(query)
    return replace(query, step=step if step % finest == 0 else math.ceil(step / finest) * finest)


class NothingLeft(InvalidQuery):
    """The page's filter and the panel's own keep no value in common."""


def narrowed(query: AnalyticsQuery, filters: PageFilters) -> tuple[AnalyticsQuery, list[str]]:
    """The query with each page filter its metric can take (values intersected with the
    panel's own); the dimensions it could not take. `NothingLeft` when the intersection is
    empty."""
    ignored = []
    for name, values in filters.values.items():
        own = query.filters.get(name)
        kept = values if own is None else tuple(v for v in own if v in values)
        if not kept:
            raise NothingLeft(
                name,
                f"This panel shows {DIMENSION_TITLES.get(name, name).lower()} "
                f"{' or '.join(own or ())} only, which the page's filter leaves out.",
            )
        candidate = replace(query, filters={**query.filters, name: kept})
        try:
            plan(fit_step(candidate, candidate.step or 60))
        except InvalidQuery:
            ignored.append(name)
            continue
        query = candidate
    return query, ignored


def _float(value: float | Decimal | None) -> float | None:
    return None if value is None else float(value)


def _is_empty(result: AnalyticsResult) -> bool:
    for series in result.series:
        if series.total or any(value for _, value in series.points):
            return False
    return True


def panel_metric_query(
    panel: Panel, page_range: PageRange, filters: PageFilters
) -> tuple[AnalyticsQuery, list[str]]:
    """A metric panel's query on this page: drilled, narrowed by the page's filters, at a step
    its metric can take."""
    drilled = msgspec.structs.replace(panel, group_by=list(filters.drilled(panel.group_by)))
    query = panel_query(drilled, page_range.start, page_range.end, page_range.step)
    query, ignored = narrowed(query, filters)
    return fit_step(query, page_range.step), ignored


# --- metric panels ---------------------------------------------------------------------------


def _cells(
    state: AnalyticsState, group: dict[str, str], dimensions: Sequence[str], drill: bool
) -> list[Cell]:
    cells = []
    for name in dimensions:
        value = group.get(name, "")
        label = state.names.label(name, value)
        href = None
        if drill and value != OTHER:
            target = state.names.workspace_slug(value) if name == "workspace" else value
            href = state.links.adding(name, target)
        colour = (
            series_color(label)
            if name in ("model", "provider", "served_model", "deployment")
            else None
        )
        cells.append(Cell(name, value, label, href, colour))
    return cells


def _exact(value: float | Decimal | None) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return repr(float(value))


def _group_rows(
    state: AnalyticsState, result: AnalyticsResult, dimensions: Sequence[str], sparklines: bool
) -> list[GroupRow]:
    metric = result.metric
    whole = float(result.total or 0) if metric.additive else 0.0
    rows = []
    for series in result.series:
        total = series.total
        if not total and series.group:
            continue
        share = float(total) / whole if metric.additive and whole and total is not None else None
        rows.append(
            GroupRow(
                cells=_cells(state, series.group, dimensions, drill=True),
                value=total,
                text=table_value(total, metric.unit),
                exact=_exact(total),
                share=share,
                spark=sparkline([_float(v) for _, v in series.points], unit=metric.unit)
                if sparklines and series.points
                else None,
            )
        )
    return rows


def _crumbs(state: AnalyticsState, panel: Panel) -> list[Crumb]:
    """The drill path a workspace-first panel went down, each step but the last a link back."""
    if not panel.group_by or panel.group_by[0] != DRILL_PATH[0]:
        return []
    fixed = [name for name in DRILL_PATH if state.filters.fixed(name)]
    if not fixed or (fixed == ["workspace"] and not state.operator_view):
        return []
    links = state.links
    crumbs = []
    if state.operator_view and "workspace" in fixed:
        crumbs.append(Crumb("All workspaces", links.without(*DRILL_PATH)))
    elif "workspace" not in fixed:
        crumbs.append(Crumb("All", links.without(*DRILL_PATH[1:])))
    for position, name in enumerate(fixed):
        if name == "workspace":
            label = state.names.workspace_slug(state.filters.workspace_id or "")
        else:
            label = state.names.label(name, state.filters.values[name][0])
        deeper = DRILL_PATH[DRILL_PATH.index(name) + 1 :]
        last = position == len(fixed) - 1
        crumbs.append(Crumb(label, None if last else links.without(*deeper)))
    return crumbs


async def _metric_panel(state: AnalyticsState, view: PanelView) -> None:
    panel = view.panel
    metric = METRICS.get(panel.metric or "")
    if metric is None:
        view.error = f"Unknown metric {panel.metric!r}."
        return
    view.unit = metric.unit
    view.value_title = metric.title
    page_range = state.page_range
    try:
        query, ignored = panel_metric_query(panel, page_range, state.filters)
        # Bars draw each group's total, and a tile its previous period's: no time axis, so
        # those are read as totals only (one scan of the range's coarsest rows). A table draws
        # no sparkline for "(other)", whose steps would take a scan of every group.
        result = await state.runner.run(
            replace(query, points=panel.chart != "bar", other_points=panel.chart != "table")
        )
        previous = None
        if panel.chart == "stat":
            before = page_range.previous()
            previous = await state.runner.run(
                replace(query, start=before.start, end=before.end, points=False)
            )
    except NothingLeft as error:
        view.empty, view.empty_text = True, str(error)
        return
    except InvalidQuery as error:
        view.error = str(error)
        return
    view.notes.extend(
        f"Not filtered by {DIMENSION_TITLES.get(name, name).lower()}: {metric.title.lower()} "
        "is not kept by it."
        for name in ignored
    )
    dimensions = list(query.group_by)
    view.dimensions = dimensions
    view.subtitle = _subtitle(view.title, dimensions, panel, result.step)
    if result.step != page_range.step:
        view.subtitle_hint = (
            f"{metric.title} by these dimensions is kept per hour, so this panel's step is "
            f"{step_label(result.step)}."
        )
    view.csv_url = api_url(query, result.step, state.workspace_param)
    view.json_url = api_url(query, result.step, state.workspace_param, "json")
    view.crumbs = _crumbs(state, panel)
    view.empty = _is_empty(result)
    view.empty_text = EMPTY_TEXTS.get(metric.unit, "Nothing in this range.")
    _draw(state, view, metric, result, previous)


def _subtitle(title: str, dimensions: Sequence[str], panel: Panel, step: int) -> str:
    parts = []
    grouped = "by " + " and ".join(DIMENSION_TITLES.get(d, d).lower() for d in dimensions)
    if dimensions and grouped not in title.lower():
        parts.append(grouped)
    if panel.chart in ("line", "area", "stacked"):
        parts.append(per_step(step))
    if panel.filters:
        parts.append(
            ", ".join(
                f"{DIMENSION_TITLES.get(name, name).lower()} {' or '.join(values)}"
                for name, values in sorted(panel.filters.items())
            )
        )
    return " · ".join(parts)


def _draw(
    state: AnalyticsState,
    view: PanelView,
    metric: Metric,
    result: AnalyticsResult,
    previous: AnalyticsResult | None,
) -> None:
    names = state.names
    chart = view.chart
    if chart == "stat":
        values = [_float(value) for _, value in result.series[0].points] if result.series else []
        view.tile = stat_tile(
            view.title,
            _float(result.total),
            metric.unit,
            previous=_float(previous.total) if previous is not None else None,
            sparkline_values=values,
            higher_is_better=metric.higher_is_better,
        )
        return
    if chart in ("line", "area", "stacked"):
        shown = [
            item
            for item in result.series
            if not (metric.unit in SUMMED_UNITS and result.group_by and not item.total)
        ]
        series = [
            Series(
                names.group_label(item.group, result.group_by) if result.group_by else metric.title,
                [(moment, _float(value)) for moment, value in item.points],
            )
            for item in shown
        ]
        view.svg = time_chart(
            series,
            start=result.start,
            end=result.end,
            step_seconds=result.step,
            unit=metric.unit,
            kind=chart,  # type: ignore[arg-type]
            chart_id=f"{view.element_id}-chart",
            title=view.title,
            width=CHART_WIDTHS.get(view.width, CHART_WIDTHS["half"]),
        )
        return
    view.rows = _group_rows(state, result, view.dimensions, sparklines=chart == "table")
    if chart == "bar":
        view.svg = bar_chart(
            [
                (
                    " · ".join(cell.label for cell in row.cells) or metric.title,
                    float(row.value or 0),
                )
                for row in view.rows
            ],
            unit=metric.unit,
            chart_id=f"{view.element_id}-chart",
            title=view.title,
            width=CHART_WIDTHS.get(view.width, CHART_WIDTHS["half"]),
        )


# --- composite panels ------------------------------------------------------------------------


def _base_query(
    state: AnalyticsState, metric: str = "requests"
) -> tuple[AnalyticsQuery, list[str]]:
    page_range = state.page_range
    query = AnalyticsQuery(
        metric=metric, start=page_range.start, end=page_range.end, step=page_range.step
    )
    query, ignored = narrowed(query, state.filters)
    return fit_step(query, page_range.step), ignored


def _ignored_notes(ignored: Sequence[str], what: str) -> list[str]:
    return [
        f"Not filtered by {DIMENSION_TITLES.get(name, name).lower()}: {what} is not kept by it."
        for name in ignored
    ]


async def _composite_panel(request: AnyRequest, state: AnalyticsState, view: PanelView) -> None:
    kind = view.kind
    if kind in ("forecast", "anomalies"):
        await _insight_panel(state, view)
        return
    gateway = gateway_of(request)
    try:
        if kind == "budgets":
            view.unit = "usd"
            view.budgets = await read_budgets(
                gateway.engine,
                names=state.names,
                scope=state.scope,
                config=gateway.config,
                ledger=gateway.ledger,
                keys=state.filters.values.get("key"),
                end_users=state.filters.values.get("end_user"),
            )
            view.empty = not view.budgets.rows
            view.empty_text = (
                "No budget is set. Give a key or a workspace a budget on its page, or set "
                "budgets.end_user and budgets.buckets in the config."
            )
            return
        base, ignored = _base_query(state)
        view.notes.extend(_ignored_notes(ignored, "this view"))
        if kind == "providers":
            view.providers = await read_providers(
                state.runner.run, base, gateway.config, include_idle=not state.filters.values
            )
            view.empty = not view.providers
            view.empty_text = "No model is configured and none served a request in this range."
            view.csv_url = api_url(
                replace(base, metric="requests", group_by=("model", "deployment")),
                base.step or state.page_range.step,
                state.workspace_param,
            )
        elif kind == "token_waterfall":
            view.unit = "usd"
            view.waterfall = await read_waterfall(state.runner.run, base, gateway.config)
            view.empty = view.waterfall.empty
            view.empty_text = "No tokens in this range."
            view.csv_url = api_url(
                replace(
                    base,
                    metric="cost",
                    group_by=("deployment",),
                    filters={**base.filters, "cache_hit": ("false",)},
                ),
                base.step or state.page_range.step,
                state.workspace_param,
            )
        elif kind == "cache_roi":
            view.unit = "usd"
            view.cache = await read_cache_return(state.runner.run, base)
            view.empty = view.cache.empty
            view.empty_text = "No requests in this range."
            saved, spent = view.cache.saved_series, view.cache.spent_series
            view.svg = time_chart(
                [
                    Series("Spent", [(m, _float(v)) for m, v in spent.series[0].points]),
                    Series(
                        "Saved by the cache", [(m, _float(v)) for m, v in saved.series[0].points]
                    ),
                ],
                start=spent.start,
                end=spent.end,
                step_seconds=spent.step,
                unit="usd",
                kind="line",
                chart_id=f"{view.element_id}-chart",
                title=view.title,
                height=160,
                width=CHART_WIDTHS.get(view.width, CHART_WIDTHS["half"]),
            )
            view.csv_url = api_url(
                replace(base, metric="cost_saved"), spent.step, state.workspace_param
            )
        else:
            view.error = f"Unknown panel kind {kind!r}."
    except NothingLeft as error:
        view.empty, view.empty_text = True, str(error)
    except InvalidQuery as error:
        view.error = str(error)


async def _insight_panel(state: AnalyticsState, view: PanelView) -> None:
    """A forecast or an anomalies panel, drawn by its own template."""
    panel = view.panel
    now = datetime.now(UTC)
    try:
        if view.kind == "forecast":
            if len(panel.group_by) > 1:
                raise InvalidQuery("group_by", "a forecast panel is by one dimension at most")
            view.unit = "usd"
            forecast = await read_forecast(
                state,
                dimension=panel.group_by[0] if panel.group_by else None,
                top=panel.top or FORECAST_TOP,
                chart_id=f"{view.element_id}-chart",
                title=view.title,
                now=now,
            )
            view.empty, view.empty_text = forecast.empty, NO_SPEND_TEXT
            view.body = render_forecast(forecast, view.element_id)
        else:
            anomalies = await read_anomalies(
                state,
                dimensions=panel.group_by,
                kinds=panel.filters.get("kind", ()),
                top=panel.top,
                element_id=view.element_id,
                now=now,
            )
            view.body = render_anomalies(anomalies, view.element_id, state.path)
    except InvalidQuery as error:
        view.error = str(error)
    except ValueError as error:
        view.error = str(error)


# --- the page --------------------------------------------------------------------------------


def _chips(state: AnalyticsState) -> list[tuple[str, str, str]]:
    chips = []
    for name, values in state.filters.values.items():
        for value in values:
            chips.append(
                (
                    DIMENSION_TITLES.get(name, name),
                    state.names.label(name, value),
                    state.links.removing(name, value),
                )
            )
    return chips


async def dashboard_view(
    request: AnyRequest, dashboard: Dashboard, page_range: PageRange
) -> DashboardView:
    """Every panel's numbers, read concurrently, ready for `dashboard.html`."""
    state = await analytics_state(request, page_range)
    views = [
        PanelView(
            index=index,
            panel=panel,
            title=panel.title,
            kind=panel.kind,
            chart=panel.chart if panel.kind == "metric" else panel.kind,
            width=panel.width,
        )
        for index, panel in enumerate(dashboard.panels, start=1)
    ]
    await asyncio.gather(
        *(
            _metric_panel(state, view)
            if view.kind == "metric"
            else _composite_panel(request, state, view)
            for view in views
        )
    )
    return DashboardView(
        dashboard=dashboard,
        panels=views,
        page_range=page_range,
        chips=_chips(state),
        links=state.links,
    )


async def render_dashboard(
    request: AnyRequest, dashboard: Dashboard, page_range: PageRange
) -> Markup:
    """The dashboard's panels as HTML for a console page (which links `charts.css`,
    `charts.js` and `analytics.css`; `analytics_pages.analytics_page` does)."""
    view = await dashboard_view(request, dashboard, page_range)
    return render_view(view)


def render_view(view: DashboardView) -> Markup:
    template = _environment().get_template("analytics/dashboard.html")
    return Markup(
        template.render(
            view=view,
            measures=measure_units(),
            table_value=table_value,
            dimension_titles=DIMENSION_TITLES,
        )
    )

"""The console's Forecast and Anomalies pages: `/admin/analytics/forecast` and
`/admin/analytics/anomalies`, built-in dashboards (`admin_ui.dashboards_builtin`) of forecast and
anomalies panels (`admin_ui.panel_forecast`, `admin_ui.panel_anomalies`) in the analytics shell.

Forecasts read their own eight weeks of history, so the Forecast page's top bar has no range or
step; the Anomalies page's range says which hours to look at, and has no step (anomalies are
found hour by hour).
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.response import Template
from markupsafe import Markup

from admin_ui.analytics_pages import analytics_page, nav_key
from admin_ui.analytics_range import PageRange
from admin_ui.analytics_state import analytics_state
from admin_ui.dashboard_render import render_dashboard
from admin_ui.dashboards_builtin import BUILTIN
from admin_ui.panel_anomalies import page_kind

AnyRequest = Request[Any, Any, Any]


async def insight_page(request: AnyRequest, name: str, template: str) -> Template:
    dashboard = BUILTIN[name]

    async def body(page_range: PageRange) -> Markup:
        # A `kind` the page cannot show is the page's problem (a 400), not one panel's.
        if name == "anomalies":
            page_kind(await analytics_state(request, page_range))
        return await render_dashboard(request, dashboard, page_range)

    return await analytics_page(
        request,
        nav_active=nav_key(name),
        title=dashboard.name,
        description=dashboard.description,
        body=body,
        template=template,
    )


class InsightPages(Controller):
    path = "/analytics"

    @get("/forecast", name="console:analytics-forecast")
    async def forecast(self, request: AnyRequest) -> Template:
        return await insight_page(request, "forecast", "analytics/forecast_page.html")

    @get("/anomalies", name="console:analytics-anomalies")
    async def anomalies(self, request: AnyRequest) -> Template:
        return await insight_page(request, "anomalies", "analytics/anomalies_page.html")

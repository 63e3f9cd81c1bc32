"""The console's analytics pages: `/admin/analytics` (Overview) and `/usage`, `/cost`,
`/performance`, `/safety`, `/providers` under it.

Each page is a built-in dashboard (`admin_ui.dashboards_builtin`) drawn by
`admin_ui.dashboard_render`, under a top bar whose range picker and step apply to every panel
(`admin_ui.analytics_range`). Other pages made of panels (saved dashboards, forecasts,
anomalies) use the same shell through `analytics_page`:

    return await analytics_page(
        request, nav_active="analytics-forecast", title="Forecast", description="...",
        body=lambda page_range: render_something(request, page_range),
    )
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, Final

from jinja2 import Environment
from litestar import Controller, Request, get
from litestar.response import Template
from markupsafe import Markup

from admin_ui.alert_box import firing_box
from admin_ui.analytics_range import (
    InvalidRange,
    PageRange,
    default_range,
    range_picker,
    read_page_range,
)
from admin_ui.analytics_state import analytics_state
from admin_ui.dashboard_model import Dashboard
from admin_ui.dashboard_render import render_dashboard
from admin_ui.dashboards_builtin import BUILTIN
from admin_ui.deployment_health import read_health
from admin_ui.pages import ADMIN_PATH, page
from admin_ui.state import gateway_of
from admin_ui.templating import console_environment
from telemetry.analytics import InvalidQuery

AnyRequest = Request[Any, Any, Any]
Body = Callable[[PageRange], Awaitable[Markup]]

ANALYTICS_PATH: Final = f"{ADMIN_PATH}/analytics"
PAGES: Final = (
    ("overview", "Overview", ANALYTICS_PATH),
    ("usage", "Usage", f"{ANALYTICS_PATH}/usage"),
    ("cost", "Cost", f"{ANALYTICS_PATH}/cost"),
    ("performance", "Performance", f"{ANALYTICS_PATH}/performance"),
    ("safety", "Safety", f"{ANALYTICS_PATH}/safety"),
    ("providers", "Providers", f"{ANALYTICS_PATH}/providers"),
)
"""(name, title, path) of each built-in page, in the navigation's order."""


@functools.cache
def _environment() -> Environment:
    return console_environment()


def _fragment(template: str, **context: Any) -> Markup:
    return Markup(_environment().get_template(template).render(**context))


def nav_key(name: str) -> str:
    return "analytics" if name == "overview" else f"analytics-{name}"


async def analytics_page(
    request: AnyRequest,
    *,
    nav_active: str,
    title: str,
    description: str,
    body: Body,
    before: Callable[[PageRange], Markup] | None = None,
    after: Callable[[PageRange], Markup] | None = None,
    template: str = "analytics/page.html",
) -> Template:
    """A page in the analytics shell: the range picker in the top bar, the range's title, and
    `body(page_range)` (with `before` and `after` around it). A range or filter the page cannot
    show answers 400 with the reason and the picker to change it. `template` may extend
    `analytics/page.html` to show less of the picker."""
    problem = None
    parameters = [(name, str(value)) for name, value in request.query_params.multi_items()]
    try:
        page_range = read_page_range(parameters)
    except InvalidRange as error:
        page_range, problem = default_range(), f"{error.parameter}: {error}"
    content = Markup("")
    if problem is None:
        try:
            await analytics_state(request, page_range)
            content = (
                (before(page_range) if before else Markup(""))
                + await body(page_range)
                + (after(page_range) if after else Markup(""))
            )
        except InvalidQuery as error:
            problem = f"{error.parameter}: {error}"
    picker = range_picker(page_range, parameters)
    return await page(
        request,
        template,
        nav_active=nav_active,
        status_code=400 if problem else 200,
        page_title=title,
        description=description,
        page_range=page_range,
        picker=picker,
        topbar_hidden=picker.kept,
        problem=problem,
        body=content,
        analytics_pages=PAGES,
        current_page=nav_active,
        nav_key=nav_key,
    )


def _dashboard_body(request: AnyRequest, dashboard: Dashboard) -> Body:
    async def body(page_range: PageRange) -> Markup:
        return await render_dashboard(request, dashboard, page_range)

    return body


async def builtin_page(
    request: AnyRequest,
    name: str,
    *,
    before: Callable[[PageRange], Markup] | None = None,
    after: Callable[[PageRange], Markup] | None = None,
) -> Template:
    dashboard = BUILTIN[name]
    return await analytics_page(
        request,
        nav_active=nav_key(name),
        title=dashboard.name,
        description=dashboard.description,
        body=_dashboard_body(request, dashboard),
        before=before,
        after=after,
    )


class AnalyticsPages(Controller):
    path = "/analytics"

    @get("/", name="console:analytics")
    async def overview(self, request: AnyRequest) -> Template:
        box = await firing_box(request)
        return await builtin_page(request, "overview", before=lambda _: box)

    @get("/usage", name="console:analytics-usage")
    async def usage(self, request: AnyRequest) -> Template:
        return await builtin_page(request, "usage")

    @get("/cost", name="console:analytics-cost")
    async def cost(self, request: AnyRequest) -> Template:
        return await builtin_page(request, "cost")

    @get("/performance", name="console:analytics-performance")
    async def performance(self, request: AnyRequest) -> Template:
        gateway = gateway_of(request)

        def health(_: PageRange) -> Markup:
            return _fragment(
                "analytics/health.html", health=read_health(gateway.config, gateway.health)
            )

        return await builtin_page(request, "performance", after=health)

    @get("/safety", name="console:analytics-safety")
    async def safety(self, request: AnyRequest) -> Template:
        return await builtin_page(request, "safety")

    @get("/providers", name="console:analytics-providers")
    async def providers(self, request: AnyRequest) -> Template:
        return await builtin_page(request, "providers")

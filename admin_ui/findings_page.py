"""The console's Insights page, `/admin/insights`: the four insights of `telemetry.insights`
over the range of the top bar, in the analytics shell (`admin_ui.analytics_pages`), read
through the same functions as `/admin/api/insights`."""

from __future__ import annotations

import functools
from decimal import Decimal
from typing import Any, Final

from jinja2 import Environment
from litestar import Controller, Request, get, post
from litestar.response import Redirect, Template
from markupsafe import Markup

from admin_ui.analytics_api import _visible_keys
from admin_ui.analytics_pages import analytics_page
from admin_ui.analytics_range import InvalidRange, PageRange, read_page_range
from admin_ui.analytics_state import analytics_state
from admin_ui.findings_api import prices_of
from admin_ui.findings_params import MAX_RANGE
from admin_ui.formatting import dollars
from admin_ui.insight_summaries import (
    SUMMARY_PROBLEM,
    can_summarise,
    summarise_group,
    summary_model,
)
from admin_ui.pages import ADMIN_PATH, csrf_token, url_with
from admin_ui.state import gateway_of
from admin_ui.templating import console_environment
from gateway.errors import GatewayError
from telemetry.analytics import InvalidQuery
from telemetry.insights.error_summaries import SUMMARIES
from telemetry.insights.findings import read_insights
from telemetry.insights.max_tokens import RATIO
from telemetry.insights.notes import (
    cheaper_model_notes,
    error_notes,
    max_tokens_notes,
    repeat_notes,
)
from telemetry.insights.scope import InsightScope

AnyRequest = Request[Any, Any, Any]

PATH: Final = f"{ADMIN_PATH}/insights"
NAV: Final = "insights"
DEFAULT_LAST: Final = "7d"
DESCRIPTION: Final = (
    "Where cost can fall and what fails: a cheaper model of equal quality for a workload, "
    "identical requests the cache missed, max_tokens far above the answers, and provider "
    "errors grouped by message."
)
_SMALL: Final = Decimal("0.000001")
VERDICTS: Final = {
    "equal_quality": ("ok", "Equal quality"),
    "worse": ("error", "Worse"),
    "inconclusive": ("warning", "Inconclusive"),
    "not_enough_data": ("neutral", "Not enough data"),
}


def per_request(value: Decimal | None) -> str:
    """A cost per request, to the micro-dollar (it is a mean: more digits say nothing)."""
    return dollars(None if value is None else value.quantize(_SMALL))


@functools.cache
def _environment() -> Environment:
    environment = console_environment()
    environment.filters["per_request"] = per_request
    return environment


async def _scope(request: AnyRequest, page_range: PageRange) -> InsightScope:
    scope = (await analytics_state(request, page_range)).scope
    if page_range.end - page_range.start > MAX_RANGE:
        raise InvalidQuery("from", f"insights read at most {MAX_RANGE.days} days")
    return InsightScope(gateway_of(request).engine, scope, page_range.start, page_range.end)


class FindingsPage(Controller):
    path = "/insights"

    @get("/", name="console:insights")
    async def insights(self, request: AnyRequest) -> Template | Redirect:
        if not any(name in request.query_params for name in ("last", "from", "to")):
            # A week by default, as the API: most insights need more than a day of requests.
            kept = [(n, v) for n, v in request.query_params.multi_items() if n != "step"]
            return Redirect(url_with(PATH, [*kept, ("last", DEFAULT_LAST)]), status_code=302)

        async def body(page_range: PageRange) -> Markup:
            scope = await _scope(request, page_range)
            found = await read_insights(
                scope,
                prices_of(request),
                summarise_errors=SUMMARIES.summariser(scope.workspace_id),
            )
            keys = await _visible_keys(request, scope.workspace_id)
            template = _environment().get_template("insights/body.html")
            return Markup(
                template.render(
                    found=found,
                    keys=keys,
                    verdicts=VERDICTS,
                    ratio=RATIO,
                    csrf_token=csrf_token(request),
                    summaries={
                        "on": summary_model(request) is not None,
                        "allowed": can_summarise(request, scope.workspace_id),
                        "query": str(request.url.query or ""),
                        "problem": request.query_params.get(SUMMARY_PROBLEM),
                        "failed": request.query_params.get("summary_of"),
                    },
                    notes={
                        "cheaper": cheaper_model_notes(found.cheaper_models),
                        "repeats": repeat_notes(found.repeats),
                        "max_tokens": max_tokens_notes(found.max_tokens),
                        "errors": error_notes(found.errors),
                    },
                )
            )

        return await analytics_page(
            request,
            nav_active=NAV,
            title="Insights",
            description=DESCRIPTION,
            body=body,
            template="insights/page.html",
        )

    @post("/errors/{fingerprint:str}/summary", name="console:insights-error-summary")
    async def summarise_error(self, request: AnyRequest, fingerprint: str) -> Redirect:
        """Asks the summary model about one error group of the page's range and workspace, then
        shows the page again (the summary, or why there is none)."""
        parameters = [(n, str(v)) for n, v in request.query_params.multi_items()]
        try:
            scope = await _scope(request, read_page_range(parameters))
        except (InvalidRange, InvalidQuery) as error:
            raise GatewayError(400, f"{error.parameter}: {error}", param=error.parameter) from None
        problem = await summarise_group(request, scope, fingerprint)
        kept = [(n, v) for n, v in parameters if n not in (SUMMARY_PROBLEM, "summary_of")]
        if problem is not None:
            kept += [(SUMMARY_PROBLEM, problem), ("summary_of", fingerprint[:32])]
        return Redirect(url_with(PATH, kept) + "#insight-errors", status_code=303)

"""The console's comparisons, under Quality: `/admin/quality/comparisons` lists them with a form
for a new one; `/new` is the confirmation page (the set, both variants, the estimated replay
and judge cost) whose form alone starts the comparison; `/{id}` shows its progress, per-variant
scores with 95 % intervals, the paired difference with a verdict, and each request's original
and replay traces. Everything goes through `admin_ui.comparison_planning`, the functions behind
`POST /admin/api/comparisons`.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import parse_qsl, urlencode

from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect

from admin_ui.auth import workspace_scope
from admin_ui.comparison_planning import Plan, create_and_start, plan
from admin_ui.comparison_views import comparison_json
from admin_ui.comparisons_api import visible_comparison
from admin_ui.console_auth import require_permission
from admin_ui.evaluation_pages import choices, filter_items, workspace_labels
from admin_ui.evaluation_queueing import PERMISSION, can_queue, offered_evaluators, read_set_query
from admin_ui.pages import ADMIN_PATH, page, url_with
from admin_ui.principals import principal
from admin_ui.state import gateway_of
from gateway.errors import GatewayError
from telemetry.comparison.requests import MAX_REQUESTS
from telemetry.comparison.store import cancel_comparison, list_comparisons

AnyRequest = Request[Any, Any, Any]

PATH: Final = f"{ADMIN_PATH}/quality/comparisons"
DOCS: Final = "docs/quality.md"
FORM_FIELDS: Final = ("name", "evaluator", "a_model", "a_system", "b_model", "b_system", "filters")
MAX_FILTERS_TEXT: Final = 2000
REFRESH_WHILE_RUNNING_S: Final = 2
"""How often a running comparison's page refreshes its content, until the comparison ends."""


def compare_these_url(request: AnyRequest) -> str | None:
    """The traces explorer's link to a new comparison of the requests it shows: the form, with
    the explorer's filters filled in; None for those who may not start one."""
    if not can_queue(request, workspace_scope(request)):
        return None
    filters = urlencode(filter_items(request.query_params.multi_items()))
    return url_with(PATH, [("filters", filters)]) + "#comparison-form"


def _form(values: Any) -> dict[str, str]:
    return {name: str(values.get(name) or "")[:20_000] for name in FORM_FIELDS}


def _filter_pairs(text: str) -> list[tuple[str, str]]:
    """The explorer's query string (`tag=a&model=b`, a leading `?` or a whole URL allowed)."""
    text = text.strip()[:MAX_FILTERS_TEXT]
    if "?" in text:
        text = text.split("?", 1)[1]
    return filter_items(parse_qsl(text, keep_blank_values=False))


def _variants(form: dict[str, str]) -> dict[str, Any]:
    return {
        side: {
            "model": form[f"{side}_model"],
            "system_prompt": form[f"{side}_system"] or None,
        }
        for side in ("a", "b")
    }


async def _plan_of(request: AnyRequest, form: dict[str, str]) -> Plan:
    query = await read_set_query(request, _filter_pairs(form["filters"]))
    return await plan(
        request,
        name=form["name"],
        evaluator_id=form["evaluator"],
        query=query,
        variants=_variants(form),
    )


async def _list_page(
    request: AnyRequest, form: dict[str, str], error: GatewayError | None = None
) -> Response[Any]:
    engine = gateway_of(request).engine
    found = await list_comparisons(engine, workspace_ids=principal(request).workspace_ids)
    evaluators = await offered_evaluators(request, workspace_scope(request))
    config = gateway_of(request).config
    models = config.model_names() if config is not None else []
    return await page(
        request,
        "quality/comparisons.html",
        nav_active="quality-comparisons",
        status_code=200 if error is None else error.status,
        rows=[comparison_json(c, results=False) for c in found],
        labels=await workspace_labels(request),
        evaluators=choices(evaluators, await workspace_labels(request)),
        models=models,
        defaults={"a": models[0] if models else "", "b": models[-1] if models else ""},
        form=form,
        error=error,
        can_create=can_queue(request, workspace_scope(request)),
        max_requests=MAX_REQUESTS,
        docs=DOCS,
    )


class ComparisonPages(Controller):
    path = "/quality/comparisons"
    include_in_schema = False

    @get("/", name="console:comparisons")
    async def comparisons(self, request: AnyRequest) -> Response[Any]:
        form = _form(request.query_params)
        if not form["filters"]:
            form["filters"] = "last=24h"
        return await _list_page(request, form)

    @get("/new", name="console:comparison-new")
    async def confirm(self, request: AnyRequest) -> Response[Any]:
        form = _form(request.query_params)
        try:
            found = await _plan_of(request, form)
        except GatewayError as refused:
            if refused.status not in (400, 404):
                raise
            return await _list_page(request, form, refused)
        return await page(
            request,
            "quality/comparison_new.html",
            nav_active="quality-comparisons",
            plan=found,
            estimate=found.estimate(request),
            form=form,
            back_url=url_with(PATH, list(form.items())),
            filters=found.query.items,
            docs=DOCS,
        )

    @post("/new", status_code=303)
    async def start(self, request: AnyRequest) -> Response[Any]:
        form = _form(await request.form())
        try:
            found = await _plan_of(request, form)
            comparison_id = await create_and_start(request, found)
        except GatewayError as refused:
            if refused.status not in (400, 404):
                raise
            return await _list_page(request, form, refused)
        return Redirect(f"{PATH}/{comparison_id}", status_code=303)

    @get("/{comparison_id:str}", name="console:comparison")
    async def comparison(self, request: AnyRequest, comparison_id: str) -> Response[Any]:
        found = await visible_comparison(request, comparison_id)
        shown = comparison_json(found, results=True)
        return await page(
            request,
            "quality/comparison.html",
            nav_active="quality-comparisons",
            c=shown,
            refresh_while_running=REFRESH_WHILE_RUNNING_S
            if found.status in ("pending", "running")
            else None,
            can_cancel=found.status in ("pending", "running")
            and principal(request).can(PERMISSION, found.workspace_id),
            docs=DOCS,
        )

    @post("/{comparison_id:str}/cancel", status_code=303)
    async def cancel(self, request: AnyRequest, comparison_id: str) -> Response[Any]:
        found = await visible_comparison(request, comparison_id)
        require_permission(request, PERMISSION, found.workspace_id)
        await cancel_comparison(gateway_of(request).engine, found.comparison_id, found.workspace_id)
        return Redirect(f"{PATH}/{found.comparison_id}", status_code=303)

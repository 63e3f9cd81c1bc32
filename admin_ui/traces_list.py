"""`/admin/traces`, the console's home: the recorded requests, filtered, sorted and paged.

The rows come from `telemetry.search.search_traces` with the URL read exactly as
`GET /admin/api/traces` reads its query (`admin_ui.list_pages`), so the page and the API list the
same requests; the page's **JSON** link opens the API with the same query. Key and workspace
names come from one query each per page, whatever the number of rows.
"""

from __future__ import annotations

from typing import Any, Final

import sqlalchemy as sa
from litestar import Controller, Request, get
from litestar.response import Template

from admin_ui.auth import workspace_scope
from admin_ui.comparison_pages import compare_these_url
from admin_ui.evaluation_pages import evaluate_these_url
from admin_ui.list_pages import (
    KEY_FIELD,
    PAGE_SIZES,
    SORTS,
    Field,
    directory,
    flag,
    list_items,
    page_context,
    read_list,
)
from admin_ui.pages import ADMIN_PATH, page, url_with
from admin_ui.search_params import TRACES
from admin_ui.state import gateway_of
from telemetry.schema import traces
from telemetry.search import OPERATION_ROUTES, TRACE_STATUSES, search_traces
from telemetry.summary import GUARDRAIL_ACTIONS

AnyRequest = Request[Any, Any, Any]

TRACES_PATH: Final = f"{ADMIN_PATH}/traces"
API_PATH: Final = f"{ADMIN_PATH}/api/traces"
FALLBACK_MODEL: Final = "gpt-4o-mini"

FIELDS: Final = (
    Field("model", "Model", suggest="models", size=14, hint="The model the client asked for"),
    Field("status", "Status", kind="checks", choices=tuple((s, s) for s in TRACE_STATUSES)),
    KEY_FIELD,
    Field("end_user", "End user", size=12),
    Field("tag", "Tag", size=10, hint="Comma-separated: requests with every tag"),
    Field("trace_id", "Trace id", placeholder="id or its start", size=14),
    Field("min_duration_ms", "Duration ≥", kind="number", unit="ms", placeholder="", size=6),
    Field("max_duration_ms", "Duration ≤", kind="number", unit="ms", placeholder="", size=6),
    Field("min_cost", "Cost ≥", kind="number", unit="$", placeholder="", size=6),
    Field("max_cost", "Cost ≤", kind="number", unit="$", placeholder="", size=6),
    flag("cache_hit", "Cache hit"),
    Field("guardrail", "Guardrail", suggest="guardrails", size=10, hint="Found something"),
    Field("rule", "Rule", suggest="rules", size=12, hint="A steering rule's id that matched"),
    Field("sort", "Sort", kind="choice", choices=SORTS),
    # More filters
    Field("served_model", "Served model", more=True, size=14),
    Field("provider", "Provider", suggest="providers", more=True, size=10),
    Field("deployment", "Deployment", suggest="deployments", more=True, size=16),
    Field("error_type", "Error type", more=True, size=14, placeholder="e.g. upstream_timeout"),
    Field("http_status", "HTTP status", kind="number", more=True, size=5, placeholder=""),
    Field("tag_match", "Tags", kind="choice", more=True, choices=(("", "all"), ("any", "any"))),
    Field("metadata", "Metadata", more=True, size=14, placeholder="key=value"),
    flag("guardrail_triggered", "Guardrail triggered", more=True),
    Field(
        "guardrail_action",
        "Guardrail action",
        kind="checks",
        more=True,
        choices=tuple((a, a) for a in GUARDRAIL_ACTIONS),
    ),
    Field("request_id", "Request id", more=True, size=16, placeholder="x-request-id"),
    flag("stream", "Streamed", more=True),
    Field(
        "operation",
        "API",
        kind="checks",
        more=True,
        choices=tuple((o, o) for o in OPERATION_ROUTES),
        hint="The API the client called",
    ),
    flag("evaluated", "Evaluated", more=True),
    Field("evaluator", "Evaluator", more=True, size=12, hint="Judged by this evaluator"),
    Field("min_score", "Score ≥", kind="number", unit="0-100", more=True, placeholder="", size=5),
    Field("max_score", "Score ≤", kind="number", unit="0-100", more=True, placeholder="", size=5),
    Field("eval_flag", "Judge flag", more=True, size=12, placeholder="e.g. hallucination"),
    Field("limit", "Rows", kind="choice", more=True, choices=PAGE_SIZES),
)


async def any_trace(request: AnyRequest) -> bool:
    """Whether the viewer's workspaces hold any trace at all (an empty list says how to make
    the first one only when none does)."""
    scope = workspace_scope(request)
    statement = sa.select(traces.c.trace_id).limit(1)
    if scope is not None:
        statement = statement.where(traces.c.workspace_id == scope)
    async with gateway_of(request).engine.connect() as conn:
        return (await conn.execute(statement)).first() is not None


def example_model(request: AnyRequest) -> str:
    config = gateway_of(request).config
    models = config.model_names() if config is not None else []
    return models[0] if models else FALLBACK_MODEL


class TraceListPage(Controller):
    path = "/traces"

    @get("/", name="console:traces")
    async def traces(self, request: AnyRequest) -> Template:
        read = await read_list(request, TRACES, search_traces)
        names = await directory(request)
        context = page_context(request, TRACES_PATH, read, names, FIELDS)
        unfiltered = not context["bar"].active
        first_ever = not read.rows and read.error is None and unfiltered
        return await page(
            request,
            "traces.html",
            nav_active="traces",
            auto_refresh=True,
            status_code=read.status_code,
            workspace_rows=names.workspaces,
            api_url=url_with(API_PATH, list_items(request)),
            no_traces_at_all=first_ever and not await any_trace(request),
            gateway_url=str(request.base_url).rstrip("/"),
            example_model=example_model(request),
            evaluate_url=evaluate_these_url(request),
            compare_url=compare_these_url(request),
            **context,
        )

"""`/admin/traces`, the console's home: the recorded requests, filtered, sorted and paged.

The rows come from `telemetry.search.search_traces` with the URL read exactly as
`GET /admin/api/traces` reads its query (`admin_ui.list_pages`), so the page and the API list the
same requests; the page's **JSON** link opens the API with the same query. Key and workspace
names come from one query each per page, whatever the number of rows.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Final

import sqlalchemy as sa
from litestar import Controller, Request, get
from litestar.response import Template

from admin_ui.auth import workspace_scope
from admin_ui.list_pages import (
    PAGE_SIZES,
    Directory,
    Field,
    ListRead,
    config_suggestions,
    directory,
    filter_bar,
    flag,
    key_label,
    list_items,
    paging,
    read_list,
    replaced,
)
from admin_ui.pages import ADMIN_PATH, page, url_with
from admin_ui.search_params import TRACES
from admin_ui.state import gateway_of
from telemetry.schema import traces
from telemetry.search import TRACE_STATUSES, search_traces
from telemetry.summary import GUARDRAIL_ACTIONS

AnyRequest = Request[Any, Any, Any]

TRACES_PATH: Final = f"{ADMIN_PATH}/traces"
API_PATH: Final = f"{ADMIN_PATH}/api/traces"
FALLBACK_MODEL: Final = "gpt-4o-mini"
SORTS: Final = (("", "Newest"), ("duration", "Slowest"), ("cost", "Most expensive"))
SORT_TEXTS: Final = {
    "newest": "newest first",
    "duration": "slowest first",
    "cost": "most expensive first (where the cost is known)",
}

KEY_FIELD: Final = Field("key", "Key", kind="choice")
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
    Field("limit", "Rows", kind="choice", more=True, choices=PAGE_SIZES),
)


def fields_for(request: AnyRequest, names: Directory) -> tuple[Field, ...]:
    """The filter bar's fields, the key choice listing the keys this viewer may see."""
    keys = replace(KEY_FIELD, choices=names.key_choices(operator=workspace_scope(request) is None))
    return tuple(keys if f is KEY_FIELD else f for f in FIELDS)


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


def list_context(
    request: AnyRequest, path: str, read: ListRead, names: Directory, fields: tuple[Field, ...]
) -> dict[str, Any]:
    """What every list page's template needs: the filter bar, rows, paging and names."""
    scope = workspace_scope(request)
    filtered_workspace = any(
        name == "workspace" and value for name, value in request.query_params.multi_items()
    )
    return {
        "bar": filter_bar(
            request, path, fields, error=read.error, suggestions=config_suggestions(request)
        ),
        "rows": read.rows,
        "paging": paging(request, path, read.next_cursor),
        "workspace_name": names.workspace_name,
        "show_workspace": scope is None and not filtered_workspace,
        "key_label": key_label,
        "filter_url": lambda name, value: replaced(request, path, name, str(value)),
        "sort_text": SORT_TEXTS.get(read.query.sort if read.query else "newest", ""),
    }


class TraceListPage(Controller):
    path = "/traces"

    @get("/", name="console:traces")
    async def traces(self, request: AnyRequest) -> Template:
        read = await read_list(request, TRACES, search_traces)
        names = await directory(request)
        context = list_context(request, TRACES_PATH, read, names, fields_for(request, names))
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
            **context,
        )

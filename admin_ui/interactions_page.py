"""`/admin/interactions`: every call to a provider (and every answer from the cache), attempt by
attempt, each linking to its trace.

Read through `telemetry.search.search_interactions` with the URL read as
`GET /admin/api/interactions` reads its query, like the traces list (`admin_ui.traces_list`).
"""

from __future__ import annotations

from typing import Any, Final

from litestar import Controller, Request, get
from litestar.response import Template

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
from admin_ui.search_params import INTERACTIONS
from telemetry.search import INTERACTION_STATUSES, search_interactions

AnyRequest = Request[Any, Any, Any]

INTERACTIONS_PATH: Final = f"{ADMIN_PATH}/interactions"
API_PATH: Final = f"{ADMIN_PATH}/api/interactions"

FIELDS: Final = (
    Field("model", "Model", suggest="models", size=14, hint="The model the client asked for"),
    Field("provider", "Provider", suggest="providers", size=10),
    Field("deployment", "Deployment", suggest="deployments", size=16),
    Field(
        "status",
        "Status",
        kind="checks",
        choices=tuple((s, s) for s in INTERACTION_STATUSES),
    ),
    KEY_FIELD,
    Field("attempt", "Attempt", kind="number", size=3, placeholder="", hint="1: the first try"),
    flag("cache_hit", "Cache hit"),
    Field("min_duration_ms", "Latency ≥", kind="number", unit="ms", placeholder="", size=6),
    Field("max_duration_ms", "Latency ≤", kind="number", unit="ms", placeholder="", size=6),
    Field("min_cost", "Cost ≥", kind="number", unit="$", placeholder="", size=6),
    Field("trace_id", "Trace id", placeholder="id or its start", size=14),
    Field("sort", "Sort", kind="choice", choices=SORTS),
    # More filters
    Field("served_model", "Served model", more=True, size=14),
    Field("error_type", "Error type", more=True, size=14),
    Field("http_status", "HTTP status", kind="number", more=True, size=5, placeholder=""),
    Field("max_cost", "Cost ≤", kind="number", unit="$", more=True, placeholder="", size=6),
    Field("min_ttft_ms", "TTFT ≥", kind="number", unit="ms", more=True, placeholder="", size=6),
    Field("max_ttft_ms", "TTFT ≤", kind="number", unit="ms", more=True, placeholder="", size=6),
    flag("stream", "Streamed", more=True),
    Field("operation", "Operation", more=True, size=10, placeholder="chat, embeddings"),
    Field("finish_reason", "Finish reason", more=True, size=10),
    flag("usage_estimated", "Tokens estimated", more=True),
    Field("end_user", "End user", more=True, size=12),
    Field("tag", "Tag", more=True, size=10),
    Field("metadata", "Metadata", more=True, size=14, placeholder="key=value"),
    flag("evaluated", "Evaluated", more=True),
    Field("evaluator", "Evaluator", more=True, size=12, hint="Judged this attempt"),
    Field("min_score", "Score ≥", kind="number", unit="0-100", more=True, placeholder="", size=5),
    Field("max_score", "Score ≤", kind="number", unit="0-100", more=True, placeholder="", size=5),
    Field("eval_flag", "Judge flag", more=True, size=12, placeholder="e.g. hallucination"),
    Field("limit", "Rows", kind="choice", more=True, choices=PAGE_SIZES),
)


class InteractionListPage(Controller):
    path = "/interactions"

    @get("/", name="console:interactions")
    async def interactions(self, request: AnyRequest) -> Template:
        read = await read_list(request, INTERACTIONS, search_interactions)
        names = await directory(request)
        return await page(
            request,
            "interactions.html",
            nav_active="interactions",
            auto_refresh=True,
            status_code=read.status_code,
            workspace_rows=names.workspaces,
            api_url=url_with(API_PATH, list_items(request)),
            **page_context(request, INTERACTIONS_PATH, read, names, FIELDS),
        )

"""`/admin/violations`: what the guardrails found, and how often each acted.

The findings are listed as `GET /admin/api/violations` lists them; above the list, the same
findings counted by guardrail and action (`telemetry.list_counts`), each count opening the list
of the findings it counts. A finding names the kinds and counts of what was found, never the
matched text.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Final

from litestar import Controller, Request, get
from litestar.response import Template

from admin_ui.auth import workspace_scope
from admin_ui.formatting import status_tone
from admin_ui.list_pages import (
    ANY,
    KEY_FIELD,
    PAGE_SIZES,
    Field,
    directory,
    list_items,
    page_context,
    query_items,
    read_list,
)
from admin_ui.pages import ADMIN_PATH, page, url_with
from admin_ui.search_params import VIOLATIONS
from admin_ui.state import gateway_of
from gateway.guardrails.model import KINDS
from telemetry.list_counts import violation_counts
from telemetry.search import search_violations
from telemetry.summary import GUARDRAIL_ACTIONS

AnyRequest = Request[Any, Any, Any]

VIOLATIONS_PATH: Final = f"{ADMIN_PATH}/violations"
API_PATH: Final = f"{ADMIN_PATH}/api/violations"

FIELDS: Final = (
    Field("guardrail", "Guardrail", suggest="guardrails", size=12),
    Field("kind", "Kind", suggest="guardrail-kinds", size=12),
    Field("entity_type", "Entity type", size=14, placeholder="e.g. EMAIL_ADDRESS"),
    Field("action", "Action", kind="checks", choices=tuple((a, a) for a in GUARDRAIL_ACTIONS)),
    Field(
        "direction",
        "Direction",
        kind="choice",
        choices=(ANY, ("input", "input"), ("output", "output")),
    ),
    KEY_FIELD,
    Field("trace_id", "Trace id", placeholder="id or its start", size=14),
    Field("limit", "Rows", kind="choice", choices=PAGE_SIZES),
)


def count_url(request: AnyRequest, guardrail: str, action: str | None) -> str:
    kept = query_items(request, "cursor", "guardrail", "action")
    chosen = [("guardrail", guardrail)]
    if action is not None:
        chosen.append(("action", action))
    return url_with(VIOLATIONS_PATH, [*kept, *chosen])


class ViolationListPage(Controller):
    path = "/violations"

    @get("/", name="console:violations")
    async def violations(self, request: AnyRequest) -> Template:
        read = await read_list(request, VIOLATIONS, search_violations)
        names = await directory(request)
        counts = None
        if read.query is not None:
            counts = await violation_counts(
                gateway_of(request).engine, read.query.filters, scope=workspace_scope(request)
            )
            strongest_first = [a for a in GUARDRAIL_ACTIONS if a in counts.values]
            counts = replace(
                counts,
                values=strongest_first + [v for v in counts.values if v not in strongest_first],
            )
        context = page_context(request, VIOLATIONS_PATH, read, names, FIELDS)
        context["bar"].suggestions["guardrail-kinds"] = list(KINDS)
        return await page(
            request,
            "violations.html",
            nav_active="violations",
            auto_refresh=True,
            status_code=read.status_code,
            workspace_rows=names.workspaces,
            api_url=url_with(API_PATH, list_items(request)),
            counts=counts,
            status_tone_of=status_tone,
            count_url=lambda guardrail, action=None: count_url(request, guardrail, action),
            **context,
        )

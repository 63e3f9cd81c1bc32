"""`/admin/decisions`: what the gateway decided, and the paths requests took.

Three views of one time range and scope:

- the decisions, filtered and paged as `GET /admin/api/decisions` lists them;
- those decisions counted by type and outcome (`telemetry.list_counts`);
- the paths requests took, rules → deployment → provider → outcome, counted from the traces'
  summaries (`telemetry.decision_paths`) and drawn as a flow (`admin_ui.path_flow`).

The counts read the list's own conditions, so each count is the number of rows the list shows
with that type and outcome; a count opens that list. The paths read the requests of the same
range, workspace, key and trace id, and of the rule when one is asked for.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from litestar import Controller, Request, get
from litestar.response import Template

from admin_ui.auth import workspace_scope
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
from admin_ui.path_flow import outcome_tone, render, steps_of
from admin_ui.search_params import DECISIONS
from admin_ui.state import gateway_of
from telemetry.decision_paths import PathCounts, request_paths
from telemetry.list_counts import GroupedCounts, decision_counts
from telemetry.search import DecisionFilter, TraceFilter, search_decisions
from telemetry.summary import DECISION_OUTCOMES

AnyRequest = Request[Any, Any, Any]

DECISIONS_PATH: Final = f"{ADMIN_PATH}/decisions"
API_PATH: Final = f"{ADMIN_PATH}/api/decisions"
TYPES: Final = (
    "rule_evaluation",
    "model_selection",
    "rate_limit",
    "budget_check",
    "cache_decision",
    "guardrail",
    "retry",
    "fallback",
    "cooldown",
)
COMPONENTS: Final = ("rules", "router", "admission", "cache", "guardrails", "reliability")
OUTCOME_TONES: Final = {
    "matched": "ok",
    "selected": "ok",
    "allowed": "ok",
    "hit": "ok",
    "pass": "ok",
    "denied": "warning",
    "degraded": "warning",
    "soft_limit": "warning",
    "masked": "warning",
    "flagged": "warning",
    "retried": "warning",
    "fell_back": "warning",
    "cooldown": "warning",
    "unavailable": "error",
    "blocked": "error",
    "error": "error",
}

FIELDS: Final = (
    Field("type", "Type", suggest="decision-types", size=14),
    Field(
        "outcome",
        "Outcome",
        kind="choice",
        choices=(ANY, *((outcome, outcome) for outcome in DECISION_OUTCOMES)),
    ),
    Field("rule", "Rule", suggest="rules", size=12, hint="A steering rule's id"),
    Field("component", "Component", suggest="components", size=10),
    KEY_FIELD,
    Field("trace_id", "Trace id", placeholder="id or its start", size=14),
    Field("limit", "Rows", kind="choice", choices=PAGE_SIZES),
)


def outcome_tone_of(outcome: str | None) -> str:
    return OUTCOME_TONES.get(outcome or "", "neutral")


def paths_filter(filters: DecisionFilter) -> TraceFilter:
    """The requests behind the decisions of `filters`: same range, workspace, key, trace id,
    and the rule when one is named (a rule that matched the request)."""
    return TraceFilter(
        since=filters.since,
        until=filters.until,
        as_of=filters.as_of,
        workspace_ids=filters.workspace_ids,
        api_key_ids=filters.api_key_ids,
        trace_id_prefix=filters.trace_id_prefix,
        rules=filters.rules,
    )


def count_url(request: AnyRequest, type_name: str, outcome: str | None) -> str:
    """The list of the decisions one count counts."""
    kept = query_items(request, "cursor", "type", "outcome")
    chosen = [("type", type_name)]
    if outcome is not None:
        chosen.append(("outcome", outcome))
    return url_with(DECISIONS_PATH, [*kept, *chosen])


class DecisionListPage(Controller):
    path = "/decisions"

    @get("/", name="console:decisions")
    async def decisions(self, request: AnyRequest) -> Template:
        read = await read_list(request, DECISIONS, search_decisions)
        names = await directory(request)
        counts: GroupedCounts | None = None
        paths: PathCounts | None = None
        if read.query is not None:
            engine = gateway_of(request).engine
            scope = workspace_scope(request)
            counts, paths = await asyncio.gather(
                decision_counts(engine, read.query.filters, scope=scope),
                request_paths(engine, paths_filter(read.query.filters), scope=scope),
            )
        context = page_context(request, DECISIONS_PATH, read, names, FIELDS)
        context["bar"].suggestions.update(
            {"decision-types": list(TYPES), "components": list(COMPONENTS)}
        )
        return await page(
            request,
            "decisions.html",
            nav_active="decisions",
            auto_refresh=True,
            status_code=read.status_code,
            workspace_rows=names.workspaces,
            api_url=url_with(API_PATH, list_items(request)),
            counts=counts,
            paths=paths,
            path_steps=steps_of,
            path_chart=render(paths.every) if paths is not None else "",
            path_tone=outcome_tone,
            outcome_tone=outcome_tone_of,
            decision_only_filters=any(
                name in ("type", "outcome", "component") for name, _ in query_items(request)
            ),
            count_url=lambda type_name, outcome=None: count_url(request, type_name, outcome),
            **context,
        )

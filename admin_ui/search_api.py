"""`GET /admin/api/traces`, `/interactions`, `/decisions` and `/violations`: the recorded
requests, provider attempts, decisions and guardrail findings, filtered and paged.

Each answers `{"object": "list", "data": [...], "next_cursor": ..., "has_more": ...}`, newest
first unless `sort` says otherwise; pass `next_cursor` back as `cursor` for the next page. An
admin key of one workspace lists that workspace's rows only (`telemetry.search`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import Controller, Request, get

from admin_ui.auth import workspace_scope
from admin_ui.openapi import described
from admin_ui.search_params import (
    DECISIONS,
    INTERACTIONS,
    TRACES,
    VIOLATIONS,
    ListQuery,
    ListSpec,
    bad,
    parse_list_query,
)
from admin_ui.serialise import plain
from admin_ui.state import gateway_of
from admin_ui.workspace_operations import visible_workspace
from telemetry.search import (
    InvalidCursor,
    Page,
    search_decisions,
    search_interactions,
    search_traces,
    search_violations,
)

AnyRequest = Request[Any, Any, Any]
Search = Callable[..., Awaitable[Page[Any]]]


async def read_list_query(
    request: AnyRequest,
    spec: ListSpec[Any],
    *,
    ignore: Iterable[str] = (),
    items: Iterable[tuple[str, str]] | None = None,
) -> ListQuery[Any]:
    """The request's query parameters (or `items`, read instead of them) as `spec`'s filters,
    its workspace resolved within the caller's scope (another workspace is a 404, as everywhere
    in the admin API). Names in `ignore` (a page's own parameters) are passed over."""
    query = parse_list_query(
        spec,
        request.query_params.multi_items() if items is None else items,
        now=datetime.now(UTC),
        ignore=ignore,
    )
    if query.workspace is not None:
        found = await visible_workspace(request, query.workspace)
        query = query.with_workspace(found.workspace_id)
    return query


async def list_answer(request: AnyRequest, spec: ListSpec[Any], search: Search) -> dict[str, Any]:
    query = await read_list_query(request, spec)
    try:
        page = await search(
            gateway_of(request).engine,
            query.filters,
            scope=workspace_scope(request),
            sort=query.sort,
            limit=query.limit,
            cursor=query.cursor,
        )
    except InvalidCursor as error:
        raise bad("cursor", f"is not valid: {error}", "invalid_cursor") from None
    return {
        "object": "list",
        "data": [plain(msgspec.structs.asdict(row)) for row in page.rows],
        "next_cursor": page.next_cursor,
        "has_more": page.next_cursor is not None,
    }


class InteractionController(Controller):
    path = "/interactions"

    @get("/", operation_class=described(query=INTERACTIONS.openapi()))
    async def list_interactions(self, request: AnyRequest) -> dict[str, Any]:
        """Provider attempts (and cache answers), newest first or by latency or cost."""
        return await list_answer(request, INTERACTIONS, search_interactions)


class DecisionController(Controller):
    path = "/decisions"

    @get("/", operation_class=described(query=DECISIONS.openapi()))
    async def list_decisions(self, request: AnyRequest) -> dict[str, Any]:
        """Decisions (rules, selection, limits, cache, guardrails, retries), newest first."""
        return await list_answer(request, DECISIONS, search_decisions)


class ViolationController(Controller):
    path = "/violations"

    @get("/", operation_class=described(query=VIOLATIONS.openapi()))
    async def list_violations(self, request: AnyRequest) -> dict[str, Any]:
        """Guardrail findings, newest first."""
        return await list_answer(request, VIOLATIONS, search_violations)


async def list_traces_answer(request: AnyRequest) -> dict[str, Any]:
    """`GET /admin/api/traces` (served by the trace controller, beside one trace's detail)."""
    return await list_answer(request, TRACES, search_traces)

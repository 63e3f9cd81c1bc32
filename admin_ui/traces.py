"""`GET /admin/api/traces`: recorded requests, filtered and paged (`admin_ui.search_api`);
`GET /admin/api/traces/{trace_id}`: one request as recorded, with everything under it.

An admin key of one workspace, or a user, reads the traces of its own workspaces only; another
workspace's trace is a 404.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.connection import ASGIConnection

from admin_ui.openapi import described
from admin_ui.principals import principal
from admin_ui.search_api import list_traces_answer
from admin_ui.search_params import TRACES
from admin_ui.serialise import plain
from admin_ui.state import gateway_of
from gateway.errors import GatewayError
from telemetry.queries import TraceDetail, trace_detail


def trace_not_found(trace_id: str) -> GatewayError:
    return GatewayError(
        404, f"No trace with id '{trace_id[:64]}'.", code="trace_not_found", param="trace_id"
    )


async def visible_trace(
    connection: ASGIConnection[Any, Any, Any, Any], trace_id: str
) -> TraceDetail:
    """The trace if the caller may read its workspace, else a 404 (as if it did not exist)."""
    visible = principal(connection).workspace_ids
    only = next(iter(visible)) if visible is not None and len(visible) == 1 else None
    detail = await trace_detail(gateway_of(connection).engine, trace_id, workspace_id=only)
    if detail is None or (visible is not None and detail.trace["workspace_id"] not in visible):
        raise trace_not_found(trace_id)
    return detail


class TraceController(Controller):
    path = "/traces"

    @get("/", operation_class=described(query=TRACES.openapi()))
    async def list_traces(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        """Requests, newest first or by duration or cost, with a summary of each."""
        return await list_traces_answer(request)

    @get("/{trace_id:str}", operation_class=described())
    async def trace(self, request: Request[Any, Any, Any], trace_id: str) -> dict[str, Any]:
        detail = await visible_trace(request, trace_id)
        return {
            "trace": plain(detail.trace),
            "spans": plain(detail.spans),
            "decisions": plain(detail.decisions),
            "interactions": plain(detail.interactions),
            "guardrail_violations": plain(detail.violations),
        }

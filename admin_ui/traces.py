"""`GET /admin/api/traces`: recorded requests, filtered and paged (`admin_ui.search_api`);
`GET /admin/api/traces/{trace_id}`: one request as recorded, with everything under it.

An admin key of one workspace reads that workspace's traces only; another's is a 404.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get

from admin_ui.auth import workspace_scope
from admin_ui.openapi import described
from admin_ui.search_api import list_traces_answer
from admin_ui.search_params import TRACES
from admin_ui.serialise import plain
from admin_ui.state import gateway_of
from gateway.errors import GatewayError
from telemetry.queries import trace_detail


def trace_not_found(trace_id: str) -> GatewayError:
    return GatewayError(
        404, f"No trace with id '{trace_id[:64]}'.", code="trace_not_found", param="trace_id"
    )


class TraceController(Controller):
    path = "/traces"

    @get("/", operation_class=described(query=TRACES.openapi()))
    async def list_traces(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        """Requests, newest first or by duration or cost, with a summary of each."""
        return await list_traces_answer(request)

    @get("/{trace_id:str}", operation_class=described())
    async def trace(self, request: Request[Any, Any, Any], trace_id: str) -> dict[str, Any]:
        detail = await trace_detail(
            gateway_of(request).engine, trace_id, workspace_id=workspace_scope(request)
        )
        if detail is None:
            raise trace_not_found(trace_id)
        return {
            "trace": plain(detail.trace),
            "spans": plain(detail.spans),
            "decisions": plain(detail.decisions),
            "interactions": plain(detail.interactions),
            "guardrail_violations": plain(detail.violations),
        }

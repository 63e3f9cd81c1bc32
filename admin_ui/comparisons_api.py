"""`/admin/api/comparisons`: compare two models or two system prompts on recorded requests.

    POST /              {"evaluator_id", "filter": {...}, "variants": {"a": {"model",
                         "system_prompt"?}, "b": {...}}, "name"?}
                        answers the estimate (200) and runs nothing;
                        with "confirm": true, stores the comparison and starts it (202).
    GET  /              the comparisons of the workspaces the caller reads, newest first.
    GET  /{id}          one comparison with its summary and per-request results.
    POST /{id}/cancel   stops a pending or running comparison before its next request.

Creating and cancelling need `evaluations.write` in the evaluator's workspace.
"""

from __future__ import annotations

from typing import Any, Final

from litestar import Controller, Request, Response, get, post

from admin_ui.comparison_planning import create_and_start, plan
from admin_ui.comparison_views import comparison_json
from admin_ui.console_auth import require_permission
from admin_ui.evaluation_queueing import PERMISSION, read_id, read_set_query
from admin_ui.evaluations_api import filter_items
from admin_ui.openapi import Query, described, text
from admin_ui.principals import principal
from admin_ui.rules import json_object
from admin_ui.search_params import bad
from admin_ui.state import gateway_of
from admin_ui.workspace_operations import fields_of
from gateway.errors import GatewayError, clipped, invalid_request
from telemetry.comparison.store import (
    LIST_LIMIT,
    StoredComparison,
    cancel_comparison,
    get_comparison,
    list_comparisons,
)
from telemetry.escaping import UNSTORABLE_PROBLEM, find_unstorable

AnyRequest = Request[Any, Any, Any]

FIELDS: Final = ("name", "evaluator_id", "filter", "variants", "confirm")
_ID_PATH: Final = (Query("comparison_id", "The comparison's id.", text(32)),)
_VARIANT: Final = {
    "type": "object",
    "required": ["model"],
    "properties": {
        "model": {"type": "string", "description": "A public model of the gateway."},
        "system_prompt": {
            "type": ["string", "null"],
            "description": "Replaces the recorded system messages; left out: kept as recorded.",
        },
    },
}
CREATE_SCHEMA: Final = {
    "type": "object",
    "required": ["evaluator_id", "filter", "variants"],
    "properties": {
        "name": {"type": "string"},
        "evaluator_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
        "filter": {
            "type": "object",
            "description": "The traces explorer's parameters; at most 200 requests, newest first.",
        },
        "variants": {
            "type": "object",
            "required": ["a", "b"],
            "properties": {"a": _VARIANT, "b": _VARIANT},
        },
        "confirm": {"type": "boolean", "description": "Run it; without it only the estimate."},
    },
}


def comparison_not_found(given: str) -> GatewayError:
    return GatewayError(
        404,
        f"No comparison with id '{clipped(given, 64)}'.",
        code="comparison_not_found",
        param="comparison_id",
    )


async def visible_comparison(request: AnyRequest, comparison_id: str) -> StoredComparison:
    found = await get_comparison(
        gateway_of(request).engine,
        read_id(comparison_id, "comparison_id"),
        workspace_ids=principal(request).workspace_ids,
    )
    if found is None:
        raise comparison_not_found(comparison_id)
    return found


class ComparisonController(Controller):
    path = "/comparisons"

    @post(
        "/",
        status_code=202,
        operation_class=described(
            body=CREATE_SCHEMA,
            success=(
                {"application/json": {"type": "object"}},
                "The estimate without `confirm`: nothing runs (202: stored and started).",
            ),
        ),
    )
    async def create_comparison(self, request: AnyRequest) -> Response[dict[str, Any]]:
        """Estimate a comparison, or with `confirm: true` store and start it."""
        body = fields_of(await json_object(request), FIELDS, ())
        where = find_unstorable(body, "")
        if where is not None:
            raise bad(where or "body", UNSTORABLE_PROBLEM)
        for required in ("evaluator_id", "filter", "variants"):
            if required not in body:
                raise invalid_request(f"'{required}' is required.", param=required)
        confirm = body.get("confirm", False)
        if not isinstance(confirm, bool):
            raise bad("confirm", "must be true or false")
        query = await read_set_query(request, filter_items(body["filter"]))
        found = await plan(
            request,
            name=body.get("name"),
            evaluator_id=body["evaluator_id"],
            query=query,
            variants=body["variants"],
        )
        estimate = {"object": "comparison.estimate", "name": found.name, **found.estimate(request)}
        if not confirm:
            return Response(estimate, status_code=200)
        comparison_id = await create_and_start(request, found)
        stored = await visible_comparison(request, comparison_id)
        return Response(comparison_json(stored, results=False), status_code=202)

    @get(
        "/",
        operation_class=described(
            query=(Query("limit", "At most this many, newest first (1-100).", text()),)
        ),
    )
    async def list_comparisons(self, request: AnyRequest) -> dict[str, Any]:
        given = request.query_params.get("limit", str(LIST_LIMIT))
        if not given.isascii() or not given.isdigit() or not 1 <= int(given) <= LIST_LIMIT:
            raise bad("limit", f"must be a whole number from 1 to {LIST_LIMIT}")
        found = await list_comparisons(
            gateway_of(request).engine,
            workspace_ids=principal(request).workspace_ids,
            limit=int(given),
        )
        return {"object": "list", "data": [comparison_json(c, results=False) for c in found]}

    @get("/{comparison_id:str}", operation_class=described(path=_ID_PATH))
    async def get_comparison(self, request: AnyRequest, comparison_id: str) -> dict[str, Any]:
        return comparison_json(await visible_comparison(request, comparison_id), results=True)

    @post("/{comparison_id:str}/cancel", status_code=200, operation_class=described(path=_ID_PATH))
    async def cancel_comparison(self, request: AnyRequest, comparison_id: str) -> dict[str, Any]:
        """Stop a pending or running comparison; a 409 when it has ended."""
        found = await visible_comparison(request, comparison_id)
        require_permission(request, PERMISSION, found.workspace_id)
        engine = gateway_of(request).engine
        if not await cancel_comparison(engine, found.comparison_id, found.workspace_id):
            raise GatewayError(
                409,
                f"The comparison has already ended ({found.status}).",
                code="comparison_ended",
                param="comparison_id",
            )
        return comparison_json(await visible_comparison(request, comparison_id), results=False)

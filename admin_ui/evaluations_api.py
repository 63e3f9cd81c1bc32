"""`POST /admin/api/evaluations/queue`: evaluate recorded answers now, on a person's request.

    {"evaluator_id": "...", "trace_id": "..."}
        queues the trace's chat answers that have stored content (202);
    {"evaluator_id": "...", "filter": {"model": "gpt-4o", "last": "24h", ...}}
        answers what the set would cost, queuing nothing (200): the traces and answers the
        filter finds (the traces explorer's parameters, at most 1,000 traces, newest first),
        those without stored content, and the judge's estimated tokens and cost;
    {"evaluator_id": "...", "filter": {...}, "confirm": true}
        queues that set (202).

The evaluator must be enabled and in a workspace the caller reads (else 404), and queuing
needs `evaluations.write` there (an admin, an owner or the workspace's admin key). Everything
is read within the evaluator's workspace.
"""

from __future__ import annotations

from typing import Any, Final

from litestar import Controller, Request, Response, post

from admin_ui.console_auth import require_permission
from admin_ui.evaluation_queueing import (
    PERMISSION,
    judge_estimate,
    queue,
    read_id,
    read_set_query,
    set_selection,
    trace_selection,
    visible_evaluator,
)
from admin_ui.openapi import described
from admin_ui.rules import json_object
from admin_ui.search_params import bad
from admin_ui.workspace_operations import fields_of
from gateway.errors import invalid_request
from telemetry.escaping import UNSTORABLE_PROBLEM, find_unstorable
from telemetry.evaluation.on_demand import MAX_TRACES, EvaluatorChoice, QueueOutcome, Selection

AnyRequest = Request[Any, Any, Any]

FIELDS: Final = ("evaluator_id", "trace_id", "filter", "confirm")
MAX_FILTER_VALUES: Final = 50
QUEUE_SCHEMA: Final = {
    "type": "object",
    "required": ["evaluator_id"],
    "properties": {
        "evaluator_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
        "trace_id": {"type": "string", "description": "One trace: its answers are queued."},
        "filter": {
            "type": "object",
            "description": "The traces explorer's parameters (as GET /admin/api/traces takes "
            "them; a list for a repeated one). At most 1,000 traces, newest first.",
            "additionalProperties": {
                "anyOf": [
                    {"type": ["string", "number", "boolean"]},
                    {"type": "array", "items": {"type": ["string", "number", "boolean"]}},
                ]
            },
        },
        "confirm": {
            "type": "boolean",
            "description": "With `filter`: queue the set; without it only the estimate is given.",
        },
    },
}


def _text(value: Any, param: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise bad(param, "must be a string, a number, a boolean or a list of them")


def filter_items(value: Any) -> list[tuple[str, str]]:
    """The body's `filter` as the query string's name/value pairs."""
    if not isinstance(value, dict):
        raise invalid_request(
            "'filter' must be an object of the traces list's parameters.", param="filter"
        )
    items: list[tuple[str, str]] = []
    for name, given in value.items():
        param = f"filter.{name[:100]}"
        values = given if isinstance(given, list) else [given]
        if len(values) > MAX_FILTER_VALUES:
            raise bad(param, f"takes at most {MAX_FILTER_VALUES} values")
        items += [(name, _text(item, param)) for item in values]
    return items


def answer(
    evaluator: EvaluatorChoice,
    selection: Selection,
    request: AnyRequest,
    outcome: QueueOutcome | None,
) -> dict[str, Any]:
    found = judge_estimate(request, evaluator, selection)
    return {
        "object": "evaluation.queue",
        "evaluator": {
            "id": evaluator.evaluator_id,
            "name": evaluator.name,
            "workspace_id": evaluator.workspace_id,
            "judge_model": evaluator.judge_model,
        },
        "traces": selection.traces,
        "traces_limit": MAX_TRACES,
        "more_traces": selection.more_traces,
        "interactions": len(selection.candidates),
        "with_content": len(selection.with_content),
        "skipped_no_content": selection.without_content,
        "estimate": {**found.as_json(), "price_known": found.cost_usd is not None},
        "queued": None if outcome is None else outcome.as_json(),
    }


class EvaluationQueueController(Controller):
    path = "/evaluations"

    @post(
        "/queue",
        status_code=202,
        operation_class=described(
            body=QUEUE_SCHEMA,
            success=(
                {"application/json": {"type": "object"}},
                "A set's estimate without `confirm`: nothing was queued (202: queued).",
            ),
        ),
    )
    async def queue_evaluations(self, request: AnyRequest) -> Response[dict[str, Any]]:
        """Queue evaluations of one trace or a filtered set (the set first answers its
        estimate; `confirm: true` queues it)."""
        body = fields_of(await json_object(request), FIELDS, ())
        where = find_unstorable(body, "")
        if where is not None:
            raise bad(where or "body", UNSTORABLE_PROBLEM)
        if "evaluator_id" not in body:
            raise invalid_request("'evaluator_id' is required.", param="evaluator_id")
        evaluator = await visible_evaluator(request, read_id(body["evaluator_id"], "evaluator_id"))
        if ("trace_id" in body) == ("filter" in body):
            raise invalid_request(
                "Give either 'trace_id' (one trace) or 'filter' (a set of traces).",
                param="trace_id",
            )
        confirm = body.get("confirm", False)
        if not isinstance(confirm, bool):
            raise bad("confirm", "must be true or false")
        if "trace_id" in body:
            if "confirm" in body:
                raise bad("confirm", "applies to a 'filter' only: one trace is queued at once")
            trace_id = body["trace_id"]
            if not isinstance(trace_id, str) or not trace_id:
                raise bad("trace_id", "must be a trace id")
            require_permission(request, PERMISSION, evaluator.workspace_id)
            selection = await trace_selection(request, evaluator, trace_id)
            outcome = await queue(request, evaluator, selection, {"trace_id": trace_id})
            return Response(answer(evaluator, selection, request, outcome), status_code=202)
        query = await read_set_query(request, filter_items(body["filter"]))
        require_permission(request, PERMISSION, evaluator.workspace_id)
        selection = await set_selection(request, evaluator, query.filters)
        if not confirm:
            return Response(answer(evaluator, selection, request, None), status_code=200)
        outcome = await queue(request, evaluator, selection, {"filter": query.as_json()})
        return Response(answer(evaluator, selection, request, outcome), status_code=202)

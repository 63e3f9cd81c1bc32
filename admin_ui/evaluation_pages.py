"""The console's on-demand evaluations: an **Evaluate** box on a trace's page, and
`/admin/traces/evaluate`, where the traces explorer's filters become a set to evaluate.

The set page is a confirmation: it reads the explorer's filters from its URL (the same query
`/admin/traces` reads, the top bar's default range included), shows how many traces and answers
they hold, how many lack stored content, and what the judge is expected to cost, and queues
nothing until its form is sent. Both read and queue through `admin_ui.evaluation_queueing`,
the functions behind `POST /admin/api/evaluations/queue`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect

from admin_ui.auth import workspace_scope
from admin_ui.evaluation_queueing import (
    SetQuery,
    can_queue,
    judge_estimate,
    offered_evaluators,
    queue,
    read_id,
    read_set_query,
    set_selection,
    trace_selection,
    visible_evaluator,
)
from admin_ui.list_pages import RANGE_PARAMETERS
from admin_ui.pages import ADMIN_PATH, DEFAULT_RANGE, page, url_with
from admin_ui.state import gateway_of
from admin_ui.traces import visible_trace
from gateway.errors import GatewayError
from gateway.keys.store import KeyStore
from telemetry.evaluation.on_demand import MAX_TRACES, EvaluatorChoice, QueueOutcome, Selection
from telemetry.evaluation.on_demand_cost import JudgeEstimate

AnyRequest = Request[Any, Any, Any]

TRACES_PATH: Final = f"{ADMIN_PATH}/traces"
SET_PATH: Final = f"{TRACES_PATH}/evaluate"
DOCS: Final = "docs/quality.md"
OUTCOME_PARAMETERS: Final = ("queued", "running", "skipped")
SET_PAGE_OWN: Final = ("evaluator", "refresh", "cursor", "sort", "limit", *OUTCOME_PARAMETERS)
"""Parameters of the set page (or of the explorer's page) that are not filters."""
FORM_OWN: Final = ("csrf_token", "evaluator_id")


# --- what both show -------------------------------------------------------------------------------


def choices(evaluators: Sequence[EvaluatorChoice], labels: dict[str, str]) -> list[tuple[str, str]]:
    """(id, label) of each evaluator; with several workspaces, each says its own."""
    several = len({e.workspace_id for e in evaluators}) > 1
    shown = []
    for evaluator in evaluators:
        label = evaluator.name
        if evaluator.judge_model:
            label += f" (judge: {evaluator.judge_model})"
        if several:
            label += f" · {labels.get(evaluator.workspace_id, evaluator.workspace_id)}"
        shown.append((evaluator.evaluator_id, label))
    return shown


async def workspace_labels(request: AnyRequest) -> dict[str, str]:
    found = await KeyStore(gateway_of(request).engine).list_workspaces()
    return {w.workspace_id: w.slug for w in found}


def _count(value: str | None) -> int | None:
    if value is None or not value.isascii() or not value.isdigit() or len(value) > 9:
        return None
    return int(value)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the last queuing did, read back from the page's URL after the redirect."""

    queued: int
    running: int
    skipped: int
    evaluator: str


def outcome_of(request: AnyRequest, evaluators: Sequence[EvaluatorChoice]) -> Outcome | None:
    params = request.query_params
    counts = [_count(params.get(name)) for name in OUTCOME_PARAMETERS]
    if any(c is None for c in counts):
        return None
    queued, running, skipped = (c or 0 for c in counts)
    wanted = params.get("evaluator")
    name = next((e.name for e in evaluators if e.evaluator_id == wanted), "the evaluator")
    return Outcome(queued, running, skipped, name)


def outcome_items(outcome: QueueOutcome) -> list[tuple[str, str]]:
    return [
        ("queued", str(outcome.queued)),
        ("running", str(outcome.already_running)),
        ("skipped", str(outcome.skipped_no_content)),
    ]


# --- the box on a trace's page ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TraceBox:
    """The trace page's Evaluate box: shown to those who may queue in the trace's workspace."""

    shown: bool
    action: str
    choices: list[tuple[str, str]]
    outcome: Outcome | None
    chosen: str = ""
    """The evaluator just queued for, chosen again."""
    docs: str = DOCS


async def trace_box(request: AnyRequest, trace: dict[str, Any]) -> TraceBox:
    workspace_id = trace["workspace_id"]
    action = f"{TRACES_PATH}/{trace['trace_id']}/evaluate"
    if not can_queue(request, workspace_id):
        return TraceBox(False, action, [], None)
    evaluators = await offered_evaluators(request, workspace_id)
    outcome = outcome_of(request, evaluators)
    chosen = request.query_params.get("evaluator", "") if outcome else ""
    return TraceBox(True, action, choices(evaluators, {}), outcome, chosen)


# --- the set page ---------------------------------------------------------------------------------


def filter_items(items: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The explorer's filters among `items`, with the top bar's default range when none."""
    kept = [(n, v) for n, v in items if v != "" and n not in SET_PAGE_OWN and n not in FORM_OWN]
    if not any(name in RANGE_PARAMETERS for name, _ in kept):
        kept.append(("last", DEFAULT_RANGE))
    return kept


@dataclass(frozen=True, slots=True)
class Plan:
    evaluator: EvaluatorChoice
    selection: Selection
    estimate: JudgeEstimate


def evaluate_these_url(request: AnyRequest) -> str | None:
    """The explorer's link to evaluate what it shows; None for those who may not queue."""
    if not can_queue(request, workspace_scope(request)):
        return None
    return url_with(SET_PATH, filter_items(request.query_params.multi_items()))


async def _set_page(
    request: AnyRequest, items: list[tuple[str, str]], chosen: str | None
) -> Response[Any]:
    """The confirmation page: evaluators of the filtered workspace (or of the viewer's), the
    chosen one's plan for the set, or the filters' refusal."""
    error: GatewayError | None = None
    query: SetQuery | None = None
    try:
        query = await read_set_query(request, items)
    except GatewayError as refused:
        if refused.status not in (400, 404):
            raise
        error = refused
    workspace = workspace_scope(request)
    if query is not None and len(query.filters.workspace_ids) == 1:
        workspace = query.filters.workspace_ids[0]
    evaluators = await offered_evaluators(request, workspace)
    labels = await workspace_labels(request)
    evaluator = next((e for e in evaluators if e.evaluator_id == chosen), None)
    if evaluator is None and evaluators:
        evaluator = evaluators[0]
    plan: Plan | None = None
    if query is not None and evaluator is not None:
        selection = await set_selection(request, evaluator, query.filters)
        plan = Plan(evaluator, selection, judge_estimate(request, evaluator, selection))
    return await page(
        request,
        "evaluation/evaluate_traces.html",
        nav_active="traces",
        topbar_action=TRACES_PATH,
        status_code=200 if error is None else error.status,
        filters=[(n, v) for n, v in items if not (n == "last" and v == DEFAULT_RANGE)],
        range_text=next((f"{n} {v}" for n, v in items if n in RANGE_PARAMETERS), ""),
        hidden=items,
        back_url=url_with(TRACES_PATH, items),
        evaluators=choices(evaluators, labels),
        chosen=evaluator.evaluator_id if evaluator else "",
        plan=plan,
        error=error,
        can_queue=evaluator is not None and can_queue(request, evaluator.workspace_id),
        outcome=outcome_of(request, evaluators),
        max_traces=MAX_TRACES,
        docs=DOCS,
        workspace_label=labels.get(evaluator.workspace_id, "") if evaluator else "",
    )


class EvaluationPages(Controller):
    path = "/traces"
    include_in_schema = False

    @get("/evaluate", name="console:evaluate-traces")
    async def evaluate_traces(self, request: AnyRequest) -> Response[Any]:
        items = filter_items(request.query_params.multi_items())
        return await _set_page(request, items, request.query_params.get("evaluator"))

    @post("/evaluate", status_code=303)
    async def queue_traces(self, request: AnyRequest) -> Response[Any]:
        form = await request.form()
        items = filter_items((str(n), str(v)) for n, v in form.multi_items())
        evaluator = await visible_evaluator(
            request, read_id(form.get("evaluator_id"), "evaluator_id")
        )
        query = await read_set_query(request, items)
        selection = await set_selection(request, evaluator, query.filters)
        outcome = await queue(request, evaluator, selection, {"filter": query.as_json()})
        target = [*items, ("evaluator", evaluator.evaluator_id), *outcome_items(outcome)]
        return Redirect(url_with(SET_PATH, target), status_code=303)

    @post("/{trace_id:str}/evaluate", status_code=303)
    async def queue_trace(self, request: AnyRequest, trace_id: str) -> Response[Any]:
        form = await request.form()
        detail = await visible_trace(request, trace_id)
        evaluator = await visible_evaluator(
            request, read_id(form.get("evaluator_id"), "evaluator_id")
        )
        selection = await trace_selection(request, evaluator, detail.trace["trace_id"])
        outcome = await queue(request, evaluator, selection, {"trace_id": trace_id})
        target = [("evaluator", evaluator.evaluator_id), *outcome_items(outcome)]
        return Redirect(f"{TRACES_PATH}/{trace_id}?{urlencode(target)}#evaluate", status_code=303)

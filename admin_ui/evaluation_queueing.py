"""What the console and `POST /admin/api/evaluations/queue` share when a person asks for
evaluations: finding the evaluator within the caller's workspaces, checking the caller may
queue there, pricing the judge, and reading a set's filters as the traces explorer reads them.

The judge model is a public model of the running config; its price is its deployment's (the
dearest one when several serve it, so the estimate does not fall short), else the price table
with the config's `prices` applied.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from litestar import Request

from admin_ui.audit import record_change
from admin_ui.console_auth import require_permission
from admin_ui.principals import principal
from admin_ui.search_api import read_list_query
from admin_ui.search_params import TRACES, bad
from admin_ui.state import gateway_of
from gateway.config.file import GatewayConfig
from gateway.errors import GatewayError, clipped
from providers.pricing import ModelPrice, PriceTable
from telemetry.escaping import UNSTORABLE_PROBLEM, has_unstorable
from telemetry.evaluation.on_demand import (
    MAX_TRACES,
    EvaluatorChoice,
    QueueOutcome,
    Selection,
    enabled_evaluator,
    enabled_evaluators,
    enqueue,
    select_trace,
    select_traces,
)
from telemetry.evaluation.on_demand_cost import JudgeEstimate, estimate
from telemetry.search import TraceFilter

AnyRequest = Request[Any, Any, Any]

PERMISSION: Final = "evaluations.write"
NOT_A_FILTER: Final = ("cursor",)
"""List parameters a set refuses: a set is every matching trace up to the bound, not a page."""
PAGE_ONLY: Final = ("sort", "limit")
"""List parameters a set passes over: it always takes the newest traces."""
_ID: Final = re.compile(r"^[0-9a-f]{32}$")


def evaluator_not_found(given: str) -> GatewayError:
    return GatewayError(
        404,
        f"No enabled evaluator with id '{clipped(given, 64)}'.",
        code="evaluator_not_found",
        param="evaluator_id",
    )


def read_id(value: Any, param: str) -> str:
    if not isinstance(value, str) or _ID.match(value) is None:
        raise bad(param, "must be an id as the API gives it (32 hexadecimal digits)")
    return value


async def visible_evaluator(request: AnyRequest, evaluator_id: str) -> EvaluatorChoice:
    """The enabled evaluator if the caller may read its workspace, else a 404."""
    found = await enabled_evaluator(
        gateway_of(request).engine,
        evaluator_id,
        workspace_ids=principal(request).workspace_ids,
    )
    if found is None:
        raise evaluator_not_found(evaluator_id)
    return found


async def offered_evaluators(
    request: AnyRequest, workspace_id: str | None
) -> list[EvaluatorChoice]:
    """The enabled evaluators of `workspace_id`, or of every workspace the caller reads."""
    visible = principal(request).workspace_ids
    wanted = visible
    if workspace_id is not None:
        wanted = frozenset({workspace_id} if visible is None else {workspace_id} & visible)
    return await enabled_evaluators(gateway_of(request).engine, workspace_ids=wanted)


def can_queue(request: AnyRequest, workspace_id: str | None) -> bool:
    """Whether the caller may queue evaluations in `workspace_id` (None: in some workspace)."""
    who = principal(request)
    if workspace_id is None:
        return who.is_operator or any(who.can(PERMISSION, ws) for ws in who.roles)
    return who.can(PERMISSION, workspace_id)


def judge_price(config: GatewayConfig | None, judge_model: str | None) -> ModelPrice | None:
    if judge_model is None:
        return None
    table = config.price_table() if config is not None else PriceTable.shipped()
    deployments = config.deployments(judge_model) if config is not None else ()
    prices = [price for d in deployments if (price := d.price_in(table)) is not None]
    if prices:
        return max(prices, key=lambda p: (p.input_per_million, p.output_per_million))
    return table.lookup(judge_model)


def judge_estimate(
    request: AnyRequest, evaluator: EvaluatorChoice, selection: Selection
) -> JudgeEstimate:
    characters = [c.content_characters or 0 for c in selection.with_content]
    price = judge_price(gateway_of(request).config, evaluator.judge_model)
    return estimate(characters, evaluator.definition, price)


# --- one trace ------------------------------------------------------------------------------------


def trace_not_in(trace_id: str) -> GatewayError:
    return GatewayError(
        404,
        f"No trace with id '{clipped(trace_id, 64)}' in the evaluator's workspace.",
        code="trace_not_found",
        param="trace_id",
    )


async def trace_selection(
    request: AnyRequest, evaluator: EvaluatorChoice, trace_id: str
) -> Selection:
    found = await select_trace(
        gateway_of(request).engine, trace_id, workspace_id=evaluator.workspace_id
    )
    if found is None:
        raise trace_not_in(trace_id)
    return found


# --- a filtered set -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SetQuery:
    filters: TraceFilter
    items: list[tuple[str, str]]
    """The filters as the explorer's URL spells them."""

    def as_json(self) -> dict[str, str | list[str]]:
        """The filters for the audit log: a repeated parameter as a list."""
        found: dict[str, list[str]] = {}
        for name, value in self.items:
            found.setdefault(name, []).append(value)
        return {name: values[0] if len(values) == 1 else values for name, values in found.items()}


async def read_set_query(request: AnyRequest, items: Iterable[tuple[str, str]]) -> SetQuery:
    """`items` (the explorer's parameters) read as the traces list reads them; a 400 for one it
    would refuse, or for a page's cursor."""
    kept = []
    for name, value in items:
        if has_unstorable(name) or has_unstorable(value):
            raise bad(name if not has_unstorable(name) else "filter", UNSTORABLE_PROBLEM)
        if name in NOT_A_FILTER:
            raise bad(name, "does not apply: a set is every matching trace, newest first")
        if name not in PAGE_ONLY:
            kept.append((name, value))
    query = await read_list_query(request, TRACES, items=kept)
    return SetQuery(query.filters, kept)


def check_set_workspace(filters: TraceFilter, evaluator: EvaluatorChoice) -> None:
    if filters.workspace_ids and evaluator.workspace_id not in filters.workspace_ids:
        raise bad("workspace", "names another workspace than the evaluator's")


async def set_selection(
    request: AnyRequest, evaluator: EvaluatorChoice, filters: TraceFilter
) -> Selection:
    check_set_workspace(filters, evaluator)
    return await select_traces(
        gateway_of(request).engine,
        filters,
        workspace_id=evaluator.workspace_id,
        limit=MAX_TRACES,
    )


# --- queuing ------------------------------------------------------------------------------------


async def queue(
    request: AnyRequest, evaluator: EvaluatorChoice, selection: Selection, what: dict[str, Any]
) -> QueueOutcome:
    """Queue the selection after checking the caller may, with an audit entry saying what was
    asked (`what`: the trace or the filters) and what was queued."""
    who = require_permission(request, PERMISSION, evaluator.workspace_id)
    engine = gateway_of(request).engine
    outcome = await enqueue(engine, evaluator, selection, now=datetime.now(UTC))
    await record_change(
        engine,
        actor=who,
        action="evaluation.queue",
        target_type="evaluator",
        target_id=evaluator.evaluator_id,
        workspace_id=evaluator.workspace_id,
        after={**what, "evaluator": evaluator.name, **outcome.as_json()},
        address=who.address,
    )
    return outcome

"""Planning a comparison for the admin API and the console: reading what was asked (the
evaluator, the set of recorded requests, the two variants), estimating its cost, and creating
and starting it once confirmed.

The set is the traces explorer's filters within the evaluator's workspace, at most
`MAX_REQUESTS` requests, newest first; it is frozen when the comparison is created, so what runs
is what was estimated.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from litestar import Request

from admin_ui.audit import record_change
from admin_ui.console_auth import require_permission
from admin_ui.evaluation_queueing import (
    PERMISSION,
    SetQuery,
    check_set_workspace,
    judge_price,
    read_id,
    visible_evaluator,
)
from admin_ui.search_params import bad
from admin_ui.state import gateway_of
from gateway.errors import GatewayError, invalid_request
from telemetry.comparison.estimate import judging_estimate, total_cost, variant_estimate
from telemetry.comparison.requests import MAX_REQUESTS, RequestSet, select_requests
from telemetry.comparison.store import create_comparison
from telemetry.escaping import UNSTORABLE_PROBLEM, has_unstorable
from telemetry.evaluation.on_demand import EvaluatorChoice

AnyRequest = Request[Any, Any, Any]

SIDES: Final = ("a", "b")
MAX_NAME: Final = 200
MAX_SYSTEM_PROMPT: Final = 20_000


@dataclass(frozen=True, slots=True)
class Variant:
    model: str
    system_prompt: str | None

    def as_json(self) -> dict[str, Any]:
        return {"model": self.model, "system_prompt": self.system_prompt}


@dataclass(frozen=True, slots=True)
class Plan:
    name: str
    evaluator: EvaluatorChoice
    query: SetQuery
    variants: dict[str, Variant]
    requests: RequestSet

    def estimate(self, request: AnyRequest) -> dict[str, Any]:
        config = gateway_of(request).config
        found = self.requests.requests
        sides = {
            side: variant_estimate(found, v.model, v.system_prompt, judge_price(config, v.model))
            for side, v in self.variants.items()
        }
        judge = judging_estimate(
            found, self.evaluator.definition, judge_price(config, self.evaluator.judge_model)
        )
        total = total_cost([*(e.cost_usd for e in sides.values()), judge.cost_usd])
        return {
            "requests": len(found),
            "requests_limit": MAX_REQUESTS,
            "more_traces": self.requests.more_traces,
            "skipped_no_content": self.requests.without_content,
            "variants": {side: e.as_json() for side, e in sides.items()},
            "judge": {**judge.as_json(), "model": self.evaluator.judge_model},
            "total_cost_usd": None if total is None else str(total),
            "price_known": total is not None,
        }


def read_name(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_NAME:
        raise bad("name", f"must be a text of at most {MAX_NAME} characters")
    return value.strip()


def read_variant(request: AnyRequest, side: str, value: Any) -> Variant:
    param = f"variants.{side}"
    if not isinstance(value, dict):
        raise bad(param, "must be an object with 'model' and optionally 'system_prompt'")
    unknown = sorted(set(value) - {"model", "system_prompt"})
    if unknown:
        raise bad(f"{param}.{unknown[0][:50]}", "is not a field of a variant")
    model = value.get("model")
    if not isinstance(model, str) or not model.strip():
        raise bad(f"{param}.model", "must name a public model of the gateway")
    config = gateway_of(request).config
    if config is None or not config.deployments(model):
        raise bad(f"{param}.model", f"'{model[:100]}' is not a public model of the gateway")
    system = value.get("system_prompt")
    if system is not None and (not isinstance(system, str) or len(system) > MAX_SYSTEM_PROMPT):
        raise bad(
            f"{param}.system_prompt", f"must be a text of at most {MAX_SYSTEM_PROMPT} characters"
        )
    if isinstance(system, str) and has_unstorable(system):
        raise bad(f"{param}.system_prompt", UNSTORABLE_PROBLEM)
    return Variant(model, system if system else None)


def read_variants(request: AnyRequest, value: Any) -> dict[str, Variant]:
    if not isinstance(value, dict) or set(value) != set(SIDES):
        raise invalid_request(
            "'variants' must be an object with two variants, 'a' and 'b'.", param="variants"
        )
    found = {side: read_variant(request, side, value[side]) for side in SIDES}
    if found["a"] == found["b"]:
        raise bad("variants", "the two variants are the same: change the model or the prompt")
    return found


async def plan(
    request: AnyRequest,
    *,
    name: Any,
    evaluator_id: Any,
    query: SetQuery,
    variants: Any,
) -> Plan:
    evaluator = await visible_evaluator(request, read_id(evaluator_id, "evaluator_id"))
    if evaluator.judge_model is None:
        raise bad("evaluator_id", "the evaluator names no judge model")
    chosen = read_variants(request, variants)
    require_permission(request, PERMISSION, evaluator.workspace_id)
    check_set_workspace(query.filters, evaluator)
    requests = await select_requests(
        gateway_of(request).engine, query.filters, workspace_id=evaluator.workspace_id
    )
    label = read_name(name) or f"{chosen['a'].model} vs {chosen['b'].model}"
    return Plan(label, evaluator, query, chosen, requests)


def nothing_to_compare() -> GatewayError:
    return GatewayError(
        400,
        "The filters find no chat request with a stored prompt and answer to replay.",
        code="invalid_request",
        param="filter",
    )


async def create_and_start(request: AnyRequest, found: Plan) -> str:
    """Store the confirmed comparison and start it in this process's runner."""
    if not found.requests.requests:
        raise nothing_to_compare()
    who = require_permission(request, PERMISSION, found.evaluator.workspace_id)
    gateway = gateway_of(request)
    if gateway.comparisons is None:
        raise GatewayError(503, "The gateway is starting.", code="starting")
    estimate = found.estimate(request)
    definition = {
        "filter": found.query.as_json(),
        "variants": {side: v.as_json() for side, v in found.variants.items()},
        "evaluator": {
            "id": found.evaluator.evaluator_id,
            "name": found.evaluator.name,
            "judge_model": found.evaluator.judge_model,
            "definition": found.evaluator.definition,
        },
        "requests": [
            {
                "trace_id": r.trace_id,
                "interaction_id": r.interaction_id,
                "requested_model": r.requested_model,
            }
            for r in found.requests.requests
        ],
    }
    comparison_id = await create_comparison(
        gateway.engine,
        workspace_id=found.evaluator.workspace_id,
        name=found.name,
        definition=definition,
        estimate=estimate,
        total=len(found.requests.requests),
        created_by=who.name,
    )
    await record_change(
        gateway.engine,
        actor=who,
        action="comparison.create",
        target_type="comparison",
        target_id=comparison_id,
        workspace_id=found.evaluator.workspace_id,
        after={
            "name": found.name,
            "filter": found.query.as_json(),
            "variants": definition["variants"],
            "evaluator": found.evaluator.name,
            "requests": len(found.requests.requests),
            "estimated_cost_usd": estimate["total_cost_usd"],
        },
        address=who.address,
    )
    gateway.comparisons.runner.start(comparison_id)
    return comparison_id


def money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)

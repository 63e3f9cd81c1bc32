"""What the evaluators API and the console's evaluator pages both do: read an evaluator from
what was sent, list the visible ones with their state, and create, replace or delete one with
its audit entry. Each raises `DefinitionError` for the caller to show in its own way."""

from __future__ import annotations

from typing import Any

from litestar import Request

from admin_ui import alerts_access as access
from admin_ui.state import gateway_of
from rules.recorded import condition_problem
from telemetry.evaluation.definition import FIELDS, EvaluatorDefinition, parse_definition
from telemetry.evaluation.state import EvaluatorState, evaluator_states
from telemetry.evaluation.store import (
    Evaluator,
    create_evaluator,
    delete_evaluator,
    load_evaluators,
    update_evaluator,
)

AnyRequest = Request[Any, Any, Any]


def definition_of(request: AnyRequest, body: dict[str, Any]) -> EvaluatorDefinition:
    """The definition in `body`, its judge checked against the config's public models."""
    config = gateway_of(request).config
    return parse_definition(
        {key: value for key, value in body.items() if key in FIELDS},
        models=config.model_names() if config is not None else None,
        check_condition=condition_problem,
    )


async def visible_evaluators(
    request: AnyRequest,
) -> tuple[list[Evaluator], dict[str, EvaluatorState]]:
    """The evaluators of the caller's workspaces, oldest first, and their states by id."""
    engine = gateway_of(request).engine
    workspace_ids = await access.readable_workspaces(request)
    found = await load_evaluators(engine, workspace_ids=workspace_ids)
    scope = workspace_ids if workspace_ids is not None else {e.workspace_id for e in found}
    return found, await evaluator_states(engine, [e.id for e in found], scope)


async def create(
    request: AnyRequest,
    workspace_id: str,
    name: str,
    definition: EvaluatorDefinition,
    *,
    enabled: bool,
) -> Evaluator:
    made = await create_evaluator(
        gateway_of(request).engine,
        workspace_id=workspace_id,
        name=name,
        definition=definition,
        enabled=enabled,
    )
    await access.audit(
        request, "evaluator.create", ("evaluator", made.id), workspace_id, after=made.to_json()
    )
    return made


async def replace(
    request: AnyRequest,
    current: Evaluator,
    name: str,
    definition: EvaluatorDefinition,
    *,
    enabled: bool,
) -> Evaluator:
    stored = await update_evaluator(
        gateway_of(request).engine, current, name=name, definition=definition, enabled=enabled
    )
    await access.audit(
        request,
        "evaluator.update",
        ("evaluator", current.id),
        current.workspace_id,
        before=current.to_json(),
        after=stored.to_json(),
    )
    return stored


async def remove(request: AnyRequest, current: Evaluator) -> None:
    await delete_evaluator(gateway_of(request).engine, current)
    await access.audit(
        request,
        "evaluator.delete",
        ("evaluator", current.id),
        current.workspace_id,
        before=current.to_json(),
    )

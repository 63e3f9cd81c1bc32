"""`/admin/api/evaluators`: evaluators listed (with their queue and today's spend), read,
created, replaced and deleted, within the caller's workspaces. A body is the evaluator as the
config file writes it (`telemetry.evaluation.definition`); a problem is a 400 naming the field,
a name already used in the workspace a 409, an evaluator of the config file a 409 (change it
in the file). Changes need the `settings.write` permission of the evaluator's workspace."""

from __future__ import annotations

from typing import Any, Final

from litestar import Controller, Request, Response, delete, get, post, put

from admin_ui import alerts_access as access
from admin_ui import evaluator_changes as changes
from admin_ui.console_auth import require_permission
from admin_ui.openapi import Query, described, nullable, object_schema, text
from admin_ui.state import gateway_of
from gateway.errors import GatewayError, clipped, invalid_request
from telemetry.evaluation.definition import (
    FIELDS,
    DefinitionError,
    EvaluatorDefinition,
    check_name,
)
from telemetry.evaluation.state import evaluator_states
from telemetry.evaluation.store import (
    ORIGIN_CONFIG,
    Evaluator,
    EvaluatorNameTaken,
    get_evaluator,
)

AnyRequest = Request[Any, Any, Any]

PERMISSION: Final = "settings.write"
BODY_FIELDS: Final = ("name", "enabled", *FIELDS)
READ_ONLY: Final = ("object", "id", "workspace_id", "origin", "created_at", "updated_at", "state")
_CRITERION: Final = {
    "anyOf": [
        text(40),
        object_schema({"name": text(40), "rubric": text(2000)}, required=("name",)),
    ]
}
_JUDGE: Final = {
    "anyOf": [
        text(256),
        object_schema(
            {
                "model": text(256),
                "temperature": {"type": "number", "minimum": 0, "maximum": 2},
                "timeout_s": {"type": "number", "exclusiveMinimum": 0, "maximum": 600},
            },
            required=("model",),
        ),
    ]
}
_PROPERTIES: Final = {
    "name": text(200),
    "enabled": {"type": "boolean"},
    "condition": nullable(object_schema()),
    "sampling_rate": {"type": "number", "minimum": 0, "maximum": 1},
    "judge": _JUDGE,
    "criteria": {"type": "array", "items": _CRITERION, "minItems": 1, "maxItems": 12},
    "daily_cap_usd": nullable({"type": ["string", "number"]}),
    "max_attempts": {"type": "integer", "minimum": 1, "maximum": 10},
}
CREATE_SCHEMA: Final = object_schema(
    {**_PROPERTIES, "workspace": text()}, required=("name", "judge")
)
UPDATE_SCHEMA: Final = object_schema(_PROPERTIES, required=("name", "judge"))
_ID_PATH: Final = (Query("evaluator_id", "The evaluator's id.", text(32)),)


def _not_found(given: str) -> GatewayError:
    return GatewayError(
        404,
        f"No evaluator with id '{clipped(given, 64)}'.",
        code="evaluator_not_found",
        param="evaluator_id",
    )


def _invalid(error: DefinitionError) -> GatewayError:
    if isinstance(error, EvaluatorNameTaken):
        return GatewayError(
            409, f"The name is taken: {error.reason}.", code="evaluator_conflict", param="name"
        )
    return invalid_request(
        f"The evaluator is not valid: {error.field}: {error.reason}.",
        param=error.field,
        code="invalid_evaluator",
    )


def _refuse_if_from_config(found: Evaluator) -> None:
    if found.origin == ORIGIN_CONFIG:
        raise GatewayError(
            409,
            "This evaluator comes from the config file (evaluators): change it there; the "
            "gateway applies the file when it starts.",
            code="evaluator_managed_by_config",
        )


def _parsed(request: AnyRequest, body: dict[str, Any]) -> tuple[str, bool, EvaluatorDefinition]:
    enabled = body.get("enabled", True)
    try:
        if not isinstance(enabled, bool):
            raise DefinitionError("enabled", "must be true or false")
        name = check_name(body.get("name"))
        definition = changes.definition_of(request, body)
    except DefinitionError as error:
        raise _invalid(error) from None
    return name, enabled, definition


async def visible_evaluator(request: AnyRequest, evaluator_id: str) -> Evaluator:
    """The evaluator if the caller sees its workspace, else a 404 (as if it did not exist)."""
    found = None
    if access.is_id(evaluator_id):
        found = await get_evaluator(gateway_of(request).engine, evaluator_id)
    if found is None or not access.visible(request, found.workspace_id):
        raise _not_found(evaluator_id)
    return found


class EvaluatorController(Controller):
    path = "/evaluators"

    @get(
        "/",
        operation_class=described(
            query=(Query("workspace", "Only this workspace's evaluators (id or slug).", text()),)
        ),
    )
    async def list_evaluators(self, request: AnyRequest) -> dict[str, Any]:
        """The evaluators of the caller's workspaces, oldest first, each with `state`: its
        queue (pending, running, failed), what ended today by status, and spend today."""
        found, states = await changes.visible_evaluators(request)
        return {
            "object": "list",
            "data": [{**e.to_json(), "state": states[e.id].to_json()} for e in found],
        }

    @get("/{evaluator_id:str}", operation_class=described(path=_ID_PATH))
    async def get_evaluator(self, request: AnyRequest, evaluator_id: str) -> dict[str, Any]:
        found = await visible_evaluator(request, evaluator_id)
        states = await evaluator_states(
            gateway_of(request).engine, [found.id], [found.workspace_id]
        )
        return {**found.to_json(), "state": states[found.id].to_json()}

    @post("/", status_code=201, operation_class=described(body=CREATE_SCHEMA, conflict=True))
    async def create_evaluator(self, request: AnyRequest) -> dict[str, Any]:
        """A new evaluator in `workspace` (the caller's own when left out)."""
        body = await access.body_fields(request, (*BODY_FIELDS, "workspace"), READ_ONLY)
        workspace_id = await access.target_workspace(
            request, body.pop("workspace", None), PERMISSION
        )
        name, enabled, definition = _parsed(request, body)
        try:
            made = await changes.create(request, workspace_id, name, definition, enabled=enabled)
        except DefinitionError as error:
            raise _invalid(error) from None
        return made.to_json()

    @put(
        "/{evaluator_id:str}",
        operation_class=described(body=UPDATE_SCHEMA, path=_ID_PATH, conflict=True),
    )
    async def replace_evaluator(self, request: AnyRequest, evaluator_id: str) -> dict[str, Any]:
        """Replace the evaluator with the body (`enabled` true when left out)."""
        current = await visible_evaluator(request, evaluator_id)
        require_permission(request, PERMISSION, current.workspace_id)
        _refuse_if_from_config(current)
        body = await access.body_fields(request, BODY_FIELDS, READ_ONLY)
        name, enabled, definition = _parsed(request, body)
        try:
            stored = await changes.replace(request, current, name, definition, enabled=enabled)
        except DefinitionError as error:
            raise _invalid(error) from None
        return stored.to_json()

    @delete("/{evaluator_id:str}", status_code=204, operation_class=described(path=_ID_PATH))
    async def delete_evaluator(self, request: AnyRequest, evaluator_id: str) -> Response[None]:
        """Delete the evaluator and its waiting queue rows; its evaluations stay."""
        current = await visible_evaluator(request, evaluator_id)
        require_permission(request, PERMISSION, current.workspace_id)
        _refuse_if_from_config(current)
        await changes.remove(request, current)
        return Response(None, status_code=204)

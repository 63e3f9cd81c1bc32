"""What can be done to keys through the admin API and the console: list, find, create, update,
revoke. Both call these functions, so the two never disagree on what is visible or valid.

Bodies are JSON objects with the fields of `gateway.keys.KeyInfo` as the API takes them; every
refusal is a `GatewayError` whose `param` is the path of the field (`budgets[1].window`). An
admin of one workspace sees and manages that workspace's keys only: another workspace's key is a
404, and the keys it creates land in its own workspace.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar import Request

from admin_ui.auth import workspace_scope
from admin_ui.state import check_guardrail_names
from admin_ui.workspace_operations import (
    fields_of,
    invalid_field,
    key_store_of,
    visible_workspace,
)
from gateway.errors import GatewayError, invalid_request
from gateway.keys import CreatedKey, KeyInfo, UnknownWorkspace
from gateway.limits_model import InvalidField, parse_budgets
from telemetry import times
from telemetry.schema import DEFAULT_WORKSPACE_ID

AnyRequest = Request[Any, Any, Any]

UPDATE_FIELDS = (
    "name",
    "role",
    "expires_at",
    "allowed_models",
    "rpm_limit",
    "tpm_limit",
    "max_parallel",
    "budgets",
    "default_tags",
    "guardrails",
    "metadata",
)
CREATE_FIELDS = ("workspace", *UPDATE_FIELDS)
READ_ONLY_FIELDS = (
    "object",
    "id",
    "workspace_id",
    "display_prefix",
    "status",
    "created_at",
    "revoked_at",
)


def key_not_found(key_id: str) -> GatewayError:
    return GatewayError(
        404, f"No key with id '{key_id[:64]}'.", code="key_not_found", param="key_id"
    )


def expiry_from_json(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidField("expires_at", f"expected an ISO 8601 time such as {times.EXAMPLE}")
    try:
        return times.parse_iso_time(value)
    except times.InvalidTime as error:
        raise InvalidField("expires_at", str(error)) from None


def store_arguments(body: dict[str, Any]) -> dict[str, Any]:
    """The body's key fields as `KeyStore.create`/`update` arguments; the store validates the
    rest with the same field names."""
    arguments = {name: value for name, value in body.items() if name != "workspace"}
    if "budgets" in body:
        arguments["budgets"] = parse_budgets(body["budgets"], "budgets")
    if "expires_at" in body:
        arguments["expires_at"] = expiry_from_json(body["expires_at"])
    return arguments


async def visible_key(request: AnyRequest, key_id: str) -> KeyInfo:
    """The key if this request's admin may see it, else a 404."""
    found = await key_store_of(request).get(key_id)
    scope = workspace_scope(request)
    if found is None or (scope is not None and found.workspace_id != scope):
        raise key_not_found(key_id)
    return found


async def visible_keys(
    request: AnyRequest, workspace: str | None, *, include_revoked: bool
) -> list[KeyInfo]:
    """The keys this request's admin may see, oldest first; `workspace` (id or slug) narrows
    them to one workspace (a 404 if it cannot be seen)."""
    scope = workspace_scope(request)
    if workspace:
        scope = (await visible_workspace(request, workspace)).workspace_id
    return await key_store_of(request).list(workspace_id=scope, include_revoked=include_revoked)


async def create_key(request: AnyRequest, raw: dict[str, Any]) -> CreatedKey:
    """A new key from a create body: `name`, `workspace` (id or slug; the caller's own
    workspace, or the default one for an operator, when absent) and the key fields."""
    body = fields_of(raw, CREATE_FIELDS, READ_ONLY_FIELDS)
    if "name" not in body:
        raise invalid_request("'name' is required.", param="name", code="invalid_value")
    workspace = body.get("workspace")
    if workspace is not None and not isinstance(workspace, str):
        raise invalid_field(InvalidField("workspace", "expected a workspace id or slug"))
    if workspace:
        workspace_id = (await visible_workspace(request, workspace)).workspace_id
    else:
        workspace_id = workspace_scope(request) or DEFAULT_WORKSPACE_ID
    try:
        check_guardrail_names(request, body.get("guardrails"), "guardrails")
        arguments = store_arguments(body)
        name = arguments.pop("name")
        optional = {field: value for field, value in arguments.items() if value is not None}
        return await key_store_of(request).create(name, workspace_id=workspace_id, **optional)
    except InvalidField as error:
        raise invalid_field(error) from None
    except UnknownWorkspace:
        raise invalid_request(
            f"No workspace '{workspace_id}'.", param="workspace", code="workspace_not_found"
        ) from None


async def update_key(request: AnyRequest, key_id: str, raw: dict[str, Any]) -> KeyInfo:
    """The key with an update body applied: only the fields it names change, a list replaces
    the stored one, null clears one. A key never moves to another workspace."""
    raw = dict(raw)
    current = await visible_key(request, key_id)
    moved = raw.pop("workspace_id", current.workspace_id)
    if moved != current.workspace_id or "workspace" in raw:
        raise invalid_request(
            "A key cannot move to another workspace; create a new key there.",
            param="workspace",
            code="invalid_value",
        )
    body = fields_of(raw, UPDATE_FIELDS, READ_ONLY_FIELDS)
    try:
        check_guardrail_names(request, body.get("guardrails"), "guardrails")
        updated = await key_store_of(request).update(key_id, **store_arguments(body))
    except InvalidField as error:
        raise invalid_field(error) from None
    if updated is None:
        raise key_not_found(key_id)
    return updated


async def revoke_key(request: AnyRequest, key_id: str) -> KeyInfo:
    """Revoke a visible key (keys are never deleted: their traces keep pointing at them)."""
    found = await visible_key(request, key_id)
    revoked = await key_store_of(request).revoke(found.key_id)
    if revoked is None:
        raise key_not_found(key_id)
    return revoked

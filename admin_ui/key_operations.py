"""What can be done to keys through the admin API and the console: list, find, create, update,
revoke. Both call these functions, so the two never disagree on what is visible, allowed or
valid, and both leave the same audit entries.

Bodies are JSON objects with the fields of `gateway.keys.store.KeyInfo` as the API takes them; every
refusal is a `GatewayError` whose `param` is the path of the field (`budgets[1].window`). An
admin of one workspace sees and manages that workspace's keys only: another workspace's key is a
404, and the keys it creates land in its own workspace. Changing keys takes the `keys.write`
permission in their workspace (see `admin_ui.principals`); an admin key of the default workspace
acts as an operator, so only operators create, change or revoke one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Request

from admin_ui.audit import record_change
from admin_ui.auth import ADMIN_ROLE, workspace_scope
from admin_ui.console_auth import principal, require_permission
from admin_ui.serialise import iso_time
from admin_ui.state import check_guardrail_names, gateway_of
from admin_ui.workspace_operations import (
    fields_of,
    invalid_field,
    key_store_of,
    visible_workspace,
)
from gateway.errors import GatewayError, invalid_request
from gateway.keys.limits import InvalidField, parse_budgets
from gateway.keys.store import CreatedKey, KeyInfo, UnknownWorkspace
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


def key_item(key: KeyInfo) -> dict[str, Any]:
    """A key as the API shows it: never its hash, never its plaintext."""
    return {
        "object": "api_key",
        "id": key.key_id,
        "workspace_id": key.workspace_id,
        "name": key.name,
        "role": key.role,
        "display_prefix": key.display_prefix,
        "status": key.status(datetime.now(UTC)),
        "created_at": _time(key.created_at),
        "expires_at": _time(key.expires_at),
        "revoked_at": _time(key.revoked_at),
        "allowed_models": None if key.allowed_models is None else list(key.allowed_models),
        "rpm_limit": key.rpm_limit,
        "tpm_limit": key.tpm_limit,
        "max_parallel": key.max_parallel,
        "budgets": [budget.to_json() for budget in key.budgets],
        "default_tags": list(key.default_tags),
        "guardrails": list(key.guardrails),
        "metadata": key.metadata,
    }


def _time(value: datetime | None) -> str | None:
    return None if value is None else iso_time(value)


def require_key_permission(request: AnyRequest, workspace_id: str, role: Any) -> None:
    """403 unless the caller may change keys of the workspace; only operators for an admin key
    of the default workspace (such a key acts as an operator)."""
    require_permission(request, "keys.write", workspace_id)
    if role == ADMIN_ROLE and workspace_id == DEFAULT_WORKSPACE_ID:
        require_permission(request, "keys.operator")


async def audit_key(
    request: AnyRequest, action: str, before: KeyInfo | None, after: KeyInfo
) -> None:
    """The change in the audit log, as the API shows keys: never a plaintext or a hash."""
    shown_before = None if before is None else key_item(before)
    shown_after = key_item(after)
    if shown_before == shown_after:
        return
    who = principal(request)
    await record_change(
        gateway_of(request).engine,
        actor=who,
        action=action,
        target_type="key",
        target_id=after.key_id,
        workspace_id=after.workspace_id,
        before=shown_before,
        after=shown_after,
        address=who.address,
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
    if found is None or not principal(request).sees(found.workspace_id):
        raise key_not_found(key_id)
    return found


async def visible_keys(
    request: AnyRequest, workspace: str | None, *, include_revoked: bool
) -> list[KeyInfo]:
    """The keys this request's admin may see, oldest first; `workspace` (id or slug) narrows
    them to one workspace (a 404 if it cannot be seen)."""
    visible = principal(request).workspace_ids
    scope = next(iter(visible)) if visible is not None and len(visible) == 1 else None
    if workspace:
        scope = (await visible_workspace(request, workspace)).workspace_id
    found = await key_store_of(request).list(workspace_id=scope, include_revoked=include_revoked)
    return [key for key in found if visible is None or key.workspace_id in visible]


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
    require_key_permission(request, workspace_id, body.get("role"))
    try:
        check_guardrail_names(request, body.get("guardrails"), "guardrails")
        arguments = store_arguments(body)
        name = arguments.pop("name")
        optional = {field: value for field, value in arguments.items() if value is not None}
        created = await key_store_of(request).create(name, workspace_id=workspace_id, **optional)
    except InvalidField as error:
        raise invalid_field(error) from None
    except UnknownWorkspace:
        raise invalid_request(
            f"No workspace '{workspace_id}'.", param="workspace", code="workspace_not_found"
        ) from None
    await audit_key(request, "key.create", None, created.info)
    return created


async def update_key(request: AnyRequest, key_id: str, raw: dict[str, Any]) -> KeyInfo:
    """The key with an update body applied: only the fields it names change, a list replaces
    the stored one, null clears one. A key never moves to another workspace."""
    raw = dict(raw)
    current = await visible_key(request, key_id)
    require_key_permission(request, current.workspace_id, current.role)
    require_key_permission(request, current.workspace_id, raw.get("role"))
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
    await audit_key(request, "key.update", current, updated)
    return updated


async def revoke_key(request: AnyRequest, key_id: str) -> KeyInfo:
    """Revoke a visible key (keys are never deleted: their traces keep pointing at them)."""
    found = await visible_key(request, key_id)
    require_key_permission(request, found.workspace_id, found.role)
    revoked = await key_store_of(request).revoke(found.key_id)
    if revoked is None:
        raise key_not_found(key_id)
    await audit_key(request, "key.revoke", found, revoked)
    return revoked

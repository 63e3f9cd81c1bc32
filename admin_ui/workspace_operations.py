"""What can be done to workspaces through the admin API and the console: list, find, create,
update. Both call these functions, so the two never disagree on what is visible or valid.

Bodies are JSON objects as the API takes them; every refusal is a `GatewayError` whose `param`
names the field. What the caller can see, and may change, is decided here: operators create
workspaces; a workspace's owners and admins (and operators) change its name and settings, never
a workspace's own admin key, since a workspace's limits bound what its keys do. Every change is
written to the audit log.
"""

from __future__ import annotations

from typing import Any

from litestar import Request

from admin_ui.audit import record_change
from admin_ui.auth import operator_required
from admin_ui.console_auth import principal, require_permission
from admin_ui.serialise import iso_time
from admin_ui.state import check_guardrail_names, gateway_of
from gateway.errors import GatewayError, invalid_request
from gateway.keys.limits import InvalidField
from gateway.keys.store import KeyStore, Workspace, WorkspaceExists

AnyRequest = Request[Any, Any, Any]

CREATE_FIELDS = ("slug", "name", "settings")
UPDATE_FIELDS = ("name", "settings")
READ_ONLY_FIELDS = ("object", "id", "created_at")


def key_store_of(request: AnyRequest) -> KeyStore:
    return KeyStore(gateway_of(request).engine)


def invalid_field(error: InvalidField) -> GatewayError:
    return invalid_request(
        f"{error.param}: {error.problem}.", param=error.param, code="invalid_value"
    )


def workspace_not_found(workspace: str) -> GatewayError:
    return GatewayError(
        404, f"No workspace '{workspace[:100]}'.", code="workspace_not_found", param="workspace"
    )


def fields_of(
    body: dict[str, Any],
    allowed: tuple[str, ...],
    read_only: tuple[str, ...] = READ_ONLY_FIELDS,
) -> dict[str, Any]:
    """The body's fields, refusing any this call does not take (read-only ones are ignored, so a
    fetched object can be sent back as it is)."""
    for name in body:
        if name not in allowed and name not in read_only:
            raise invalid_request(
                f"Unknown field '{name[:100]}'; expected one of {', '.join(allowed)}.",
                param=name[:100],
                code="unknown_field",
            )
    return {name: value for name, value in body.items() if name in allowed}


async def visible_workspace(request: AnyRequest, workspace: str) -> Workspace:
    """The workspace (by id or slug) if this request's admin may see it, else a 404."""
    found = await key_store_of(request).get_workspace(workspace)
    if found is None or not principal(request).sees(found.workspace_id):
        raise workspace_not_found(workspace)
    return found


async def visible_workspaces(request: AnyRequest) -> list[Workspace]:
    """Every workspace this request's admin may see, oldest first."""
    who = principal(request)
    found = await key_store_of(request).list_workspaces()
    return [w for w in found if who.sees(w.workspace_id)]


def workspace_item(workspace: Workspace) -> dict[str, Any]:
    return {
        "object": "workspace",
        "id": workspace.workspace_id,
        "slug": workspace.slug,
        "name": workspace.name,
        "settings": workspace.settings,
        "created_at": iso_time(workspace.created_at) if workspace.created_at else None,
    }


def require_settings_permission(request: AnyRequest, workspace_id: str) -> None:
    """403 unless the caller may change this workspace's name and settings."""
    who = principal(request)
    if who.kind == "key" and not who.is_operator:
        raise operator_required()
    require_permission(request, "settings.write", workspace_id)


async def audit_workspace(
    request: AnyRequest, action: str, before: Workspace | None, after: Workspace
) -> None:
    shown_before = None if before is None else workspace_item(before)
    shown_after = workspace_item(after)
    if shown_before == shown_after:
        return
    who = principal(request)
    await record_change(
        gateway_of(request).engine,
        actor=who,
        action=action,
        target_type="workspace",
        target_id=after.workspace_id,
        workspace_id=after.workspace_id,
        before=shown_before,
        after=shown_after,
        address=who.address,
    )


def _check_settings_guardrails(request: AnyRequest, settings: Any) -> None:
    if isinstance(settings, dict):
        check_guardrail_names(request, settings.get("guardrails"), "settings.guardrails")


async def create_workspace(request: AnyRequest, raw: dict[str, Any]) -> Workspace:
    """A new workspace from a create body (`slug`, `name`?, `settings`?)."""
    require_permission(request, "workspaces.create")
    body = fields_of(raw, CREATE_FIELDS)
    if "slug" not in body:
        raise invalid_request("'slug' is required.", param="slug", code="invalid_value")
    settings = body.get("settings")
    try:
        _check_settings_guardrails(request, settings)
        created = await key_store_of(request).create_workspace(
            body["slug"],
            name=body.get("name"),
            settings={} if settings is None else settings,
        )
    except InvalidField as error:
        raise invalid_field(error) from None
    except WorkspaceExists as error:
        raise GatewayError(
            409, f"{str(error).capitalize()}.", code="workspace_exists", param="slug"
        ) from None
    await audit_workspace(request, "workspace.create", None, created)
    return created


async def update_workspace(request: AnyRequest, workspace: str, raw: dict[str, Any]) -> Workspace:
    """The workspace (id or slug) with an update body applied: `name`, `settings` merged into
    what is stored. A `slug` may be sent back unchanged, never changed."""
    who = principal(request)
    if who.kind == "key" and not who.is_operator:
        raise operator_required()  # before looking: a workspace's admin key never could
    current = await visible_workspace(request, workspace)
    require_settings_permission(request, current.workspace_id)
    raw = dict(raw)
    slug = raw.pop("slug", None)
    body = fields_of(raw, UPDATE_FIELDS)
    if slug is not None and slug != current.slug:
        raise invalid_request(
            "A workspace's slug cannot change.", param="slug", code="invalid_value"
        )
    if body.get("settings", {}) is None:
        raise invalid_field(InvalidField("settings", "expected an object"))
    try:
        _check_settings_guardrails(request, body.get("settings"))
        updated = await key_store_of(request).update_workspace(current.workspace_id, **body)
    except InvalidField as error:
        raise invalid_field(error) from None
    if updated is None:
        raise workspace_not_found(workspace)
    await audit_workspace(request, "workspace.update", current, updated)
    return updated

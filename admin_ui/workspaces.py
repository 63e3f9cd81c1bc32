"""`/admin/api/workspaces`: list, read, create, update (name and settings: the limits and the
guardrails, `settings.guardrails`, run on every request of the workspace's keys).

An admin key of one workspace sees only that workspace (any other is a 404, as if it did not
exist); creating workspaces is the operator's (the master key, an admin key of the default
workspace, an operator user). A workspace's settings are changed by operators and by its own
owners and admins signed in to the console; never by a workspace's admin key, since a
workspace's limits bound what its keys do.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, patch, post

from admin_ui.audit import record_change
from admin_ui.auth import operator_required, require_global_admin
from admin_ui.console_auth import principal, require_permission
from admin_ui.openapi import described, nullable, object_schema, strings, text
from admin_ui.rules import json_object
from admin_ui.serialise import iso_time
from admin_ui.state import check_guardrail_names, gateway_of
from gateway.errors import GatewayError, invalid_request
from gateway.keys import KeyStore, Workspace, WorkspaceExists
from gateway.limits_model import InvalidField

AnyRequest = Request[Any, Any, Any]

CREATE_FIELDS = ("slug", "name", "settings")
UPDATE_FIELDS = ("name", "settings")
READ_ONLY_FIELDS = ("object", "id", "created_at")
SETTINGS_SCHEMA = nullable(object_schema({"guardrails": strings()}))


# --- shared by the workspace and key controllers -----------------------------------------------


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


def workspace_item(workspace: Workspace) -> dict[str, Any]:
    return {
        "object": "workspace",
        "id": workspace.workspace_id,
        "slug": workspace.slug,
        "name": workspace.name,
        "settings": workspace.settings,
        "created_at": iso_time(workspace.created_at) if workspace.created_at else None,
    }


# --- the controller -----------------------------------------------------------------------------


class WorkspaceController(Controller):
    path = "/workspaces"

    @get("/", operation_class=described())
    async def list_workspaces(self, request: AnyRequest) -> dict[str, Any]:
        who = principal(request)
        found = await key_store_of(request).list_workspaces()
        data = [workspace_item(w) for w in found if who.sees(w.workspace_id)]
        return {"object": "list", "data": data}

    @get("/{workspace:str}", operation_class=described())
    async def get_workspace(self, request: AnyRequest, workspace: str) -> dict[str, Any]:
        return workspace_item(await visible_workspace(request, workspace))

    @post(
        "/",
        status_code=201,
        guards=[require_global_admin],
        operation_class=described(
            body=object_schema(
                {"slug": text(), "name": nullable(text()), "settings": SETTINGS_SCHEMA},
                required=("slug",),
                closed=True,
            ),
            conflict=True,
        ),
    )
    async def create_workspace(self, request: AnyRequest) -> dict[str, Any]:
        body = fields_of(await json_object(request), CREATE_FIELDS)
        if "slug" not in body:
            raise invalid_request("'slug' is required.", param="slug", code="invalid_value")
        settings = body.get("settings")
        try:
            if isinstance(settings, dict):
                check_guardrail_names(request, settings.get("guardrails"), "settings.guardrails")
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
        return workspace_item(created)

    @patch(
        "/{workspace:str}",
        operation_class=described(
            body=object_schema(
                {"slug": text(), "name": nullable(text()), "settings": SETTINGS_SCHEMA},
                closed=True,
            )
        ),
    )
    async def update_workspace(self, request: AnyRequest, workspace: str) -> dict[str, Any]:
        who = principal(request)
        if who.kind == "key" and not who.is_operator:
            raise operator_required()  # a workspace's admin key never changed its limits
        current = await visible_workspace(request, workspace)
        require_permission(request, "settings.write", current.workspace_id)
        raw = await json_object(request)
        slug = raw.pop("slug", None)
        body = fields_of(raw, UPDATE_FIELDS)
        if slug is not None and slug != current.slug:
            raise invalid_request(
                "A workspace's slug cannot change.", param="slug", code="invalid_value"
            )
        if body.get("settings", {}) is None:
            raise invalid_field(InvalidField("settings", "expected an object"))
        try:
            settings = body.get("settings")
            if isinstance(settings, dict):
                check_guardrail_names(request, settings.get("guardrails"), "settings.guardrails")
            updated = await key_store_of(request).update_workspace(current.workspace_id, **body)
        except InvalidField as error:
            raise invalid_field(error) from None
        if updated is None:
            raise workspace_not_found(workspace)
        await audit_workspace(request, "workspace.update", current, updated)
        return workspace_item(updated)

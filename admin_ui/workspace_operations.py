"""What can be done to workspaces through the admin API and the console: list, find, create,
update. Both call these functions, so the two never disagree on what is visible or valid.

Bodies are JSON objects as the API takes them; every refusal is a `GatewayError` whose `param`
names the field. Who may create or change a workspace is decided by the caller (a route guard, a
page's permission check); what the caller can see is decided here, by `workspace_scope`.
"""

from __future__ import annotations

from typing import Any

from litestar import Request

from admin_ui.auth import workspace_scope
from admin_ui.state import check_guardrail_names, gateway_of
from gateway.errors import GatewayError, invalid_request
from gateway.keys import KeyStore, Workspace, WorkspaceExists
from gateway.limits_model import InvalidField

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
    scope = workspace_scope(request)
    if found is None or (scope is not None and found.workspace_id != scope):
        raise workspace_not_found(workspace)
    return found


async def visible_workspaces(request: AnyRequest) -> list[Workspace]:
    """Every workspace this request's admin may see, oldest first."""
    scope = workspace_scope(request)
    found = await key_store_of(request).list_workspaces()
    return [w for w in found if scope is None or w.workspace_id == scope]


def _check_settings_guardrails(request: AnyRequest, settings: Any) -> None:
    if isinstance(settings, dict):
        check_guardrail_names(request, settings.get("guardrails"), "settings.guardrails")


async def create_workspace(request: AnyRequest, raw: dict[str, Any]) -> Workspace:
    """A new workspace from a create body (`slug`, `name`?, `settings`?)."""
    body = fields_of(raw, CREATE_FIELDS)
    if "slug" not in body:
        raise invalid_request("'slug' is required.", param="slug", code="invalid_value")
    settings = body.get("settings")
    try:
        _check_settings_guardrails(request, settings)
        return await key_store_of(request).create_workspace(
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


async def update_workspace(request: AnyRequest, workspace: str, raw: dict[str, Any]) -> Workspace:
    """The workspace (id or slug) with an update body applied: `name`, `settings` merged into
    what is stored. A `slug` may be sent back unchanged, never changed."""
    raw = dict(raw)
    slug = raw.pop("slug", None)
    body = fields_of(raw, UPDATE_FIELDS)
    if slug is not None and slug != (await visible_workspace(request, workspace)).slug:
        raise invalid_request(
            "A workspace's slug cannot change.", param="slug", code="invalid_value"
        )
    if body.get("settings", {}) is None:
        raise invalid_field(InvalidField("settings", "expected an object"))
    try:
        _check_settings_guardrails(request, body.get("settings"))
        updated = await key_store_of(request).update_workspace(workspace, **body)
    except InvalidField as error:
        raise invalid_field(error) from None
    if updated is None:
        raise workspace_not_found(workspace)
    return updated

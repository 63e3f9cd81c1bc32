"""Who may do what on the console's key and workspace pages: one check per action.

Today's rules are the admin API's: every admin key may read and manage keys of the workspaces it
sees (`workspace_scope`: one for a workspace's admin, every one for the operator), and only the
operator may create workspaces or change their name and limits. A page calls `ensure_can` once
per action and asks `can` to decide what to offer, so a finer set of roles changes this module
only.
"""

from __future__ import annotations

from typing import Any, Literal

from litestar.connection import ASGIConnection

from admin_ui.auth import admin_key, global_admin, operator_required, workspace_scope
from gateway.errors import GatewayError

Permission = Literal["keys.read", "keys.write", "workspaces.read", "workspaces.write"]
AnyConnection = ASGIConnection[Any, Any, Any, Any]


def can(connection: AnyConnection, permission: Permission, workspace_id: str | None) -> bool:
    """Whether this request's admin may do `permission` in `workspace_id` (None: in every
    workspace, or in a workspace not chosen yet)."""
    if permission == "workspaces.write":
        return global_admin(admin_key(connection))
    scope = workspace_scope(connection)
    return scope is None or workspace_id is None or workspace_id == scope


def ensure_can(connection: AnyConnection, permission: Permission, workspace_id: str | None) -> None:
    """403 unless `can`. A workspace the admin may not see never gets this far: looking it up
    is already a 404."""
    if can(connection, permission, workspace_id):
        return
    if permission == "workspaces.write":
        raise operator_required()
    raise GatewayError(
        403,
        "Your account may not do this here.",
        type="permission_error",
        code="permission_denied",
    )

"""Who may do what on the console's key and workspace pages: one check per action.

The answers are the request principal's permissions (`admin_ui.principals`): reading a
workspace's keys takes `read`, changing them `keys.write`, changing a workspace `settings.write`
(never for a workspace's own admin key) and creating one `workspaces.create`. A page calls
`ensure_can` once per action and asks `can` to decide what to offer. The operations behind the
pages (`key_operations`, `workspace_operations`) check again, so a page cannot forget.
"""

from __future__ import annotations

from typing import Any, Literal

from litestar.connection import ASGIConnection

from admin_ui.auth import operator_required
from admin_ui.console_auth import permission_denied
from admin_ui.principals import Principal, principal

Permission = Literal["keys.read", "keys.write", "workspaces.read", "workspaces.write"]
AnyConnection = ASGIConnection[Any, Any, Any, Any]

_PERMISSIONS: dict[Permission, str] = {
    "keys.read": "read",
    "keys.write": "keys.write",
    "workspaces.read": "read",
    "workspaces.write": "settings.write",
}


def _allowed(who: Principal, permission: Permission, workspace_id: str | None) -> bool:
    if permission == "workspaces.write":
        if workspace_id is None:
            return who.can("workspaces.create")
        if who.kind == "key" and not who.is_operator:
            return False
    needed = _PERMISSIONS[permission]
    if workspace_id is None:  # in some workspace, not chosen yet
        return who.is_operator or any(who.can(needed, ws) for ws in who.roles)
    return who.can(needed, workspace_id)


def can(connection: AnyConnection, permission: Permission, workspace_id: str | None) -> bool:
    """Whether this request's principal may do `permission` in `workspace_id` (None: in a
    workspace not chosen yet, or, for `workspaces.write`, create one)."""
    return _allowed(principal(connection), permission, workspace_id)


def ensure_can(connection: AnyConnection, permission: Permission, workspace_id: str | None) -> None:
    """403 unless `can`. A workspace the principal may not see never gets this far: looking it
    up is already a 404."""
    who = principal(connection)
    if _allowed(who, permission, workspace_id):
        return
    if permission == "workspaces.write" and who.kind == "key":
        raise operator_required()
    if permission == "workspaces.write" and workspace_id is None:
        raise permission_denied(who, "workspaces.create")
    raise permission_denied(who, _PERMISSIONS[permission])

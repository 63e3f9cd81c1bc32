"""Who is making an admin request, and what they may do: a console user or an admin key.

Permissions are either about one workspace or gateway-wide:

| permission | viewer | admin | owner | workspace admin key | operator |
|---|---|---|---|---|---|
| `read` (traces, keys, the workspace) | yes | yes | yes | yes | every workspace |
| `keys.write` | | yes | yes | yes | every workspace |
| `settings.write` (the workspace's name, limits, guardrails) | | yes | yes | | every workspace |
| `audit.read`, `users.read` | | yes | yes | `audit.read` | every workspace |
| `users.write` (roles in the workspace, disabling, password links) | | | yes | | every workspace |
| `dashboards.write` (dashboards shared with the workspace: share, change, delete) | | yes | yes | yes | every workspace |
| `alerts.write` (alert rules, channels; acknowledging and resolving alerts) | | yes | yes | yes | every workspace |
| `reports.write` (report definitions; running a report now) | | yes | yes | yes | every workspace |
| `evaluations.write` (queuing evaluations of recorded answers on demand) | | yes | yes | yes | every workspace |
| `rules.read`, `rules.write`, `simulate`, `workspaces.create`, `users.operator` | | | | | yes |
| `keys.operator` (admin keys of the default workspace, which act as operators) | | | | | yes |

Operators are users with `is_operator`, the master key, and admin keys of the default workspace.
An admin key of another workspace keeps exactly what it could do before there were roles.
Anyone who may `read` a workspace may keep private dashboards in it; sharing one with the
workspace, or changing one someone else shared, takes `dashboards.write`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from litestar.connection import ASGIConnection

from admin_ui.audit import Actor
from admin_ui.users import Membership, User
from gateway.entry.auth import MASTER_KEY_INFO
from gateway.keys.store import KeyInfo

WORKSPACE_PERMISSIONS: Final = frozenset(
    {
        "read",
        "keys.write",
        "settings.write",
        "audit.read",
        "users.read",
        "users.write",
        "dashboards.write",
        "alerts.write",
        "reports.write",
        "evaluations.write",
    }
)
GLOBAL_PERMISSIONS: Final = frozenset(
    {
        "rules.read",
        "rules.write",
        "simulate",
        "workspaces.create",
        "users.operator",
        "keys.operator",
    }
)
_VIEWER: Final = frozenset({"read"})
_ADMIN: Final = _VIEWER | {
    "keys.write",
    "settings.write",
    "audit.read",
    "users.read",
    "dashboards.write",
    "alerts.write",
    "reports.write",
    "evaluations.write",
}
GRANTS: Final[Mapping[str, frozenset[str]]] = {
    "viewer": _VIEWER,
    "admin": _ADMIN,
    "owner": _ADMIN | {"users.write"},
    "key": _VIEWER
    | {
        "keys.write",
        "audit.read",
        "dashboards.write",
        "alerts.write",
        "reports.write",
        "evaluations.write",
    },
}
"""What each role grants in its workspace ("key": an admin key of one workspace)."""

STATE_KEY: Final = "steerway_principal"


@dataclass(frozen=True, slots=True)
class Principal:
    kind: str
    """`user` (signed in to the console) or `key` (a bearer admin key)."""
    name: str
    """How changes are signed: a user's email, a key's name, or "master"."""
    display_name: str
    is_operator: bool
    roles: Mapping[str, str]
    """Workspace id to role (`owner`, `admin`, `viewer`; `key` for a workspace admin key)."""
    workspace_scope: str | None
    """None: every workspace. Otherwise the one workspace this request shows: the user's only
    one, or the one named by the request's `workspace` query parameter (id or slug) among the
    user's, else the first of them by slug."""
    csrf_token: str | None = None
    """The session's CSRF token (None for keys, which need none)."""
    user_id: str | None = None
    key_id: str | None = None
    address: str | None = None
    memberships: tuple[Membership, ...] = field(default=())

    @property
    def workspace_ids(self) -> frozenset[str] | None:
        """Every workspace this principal may read; None: all of them."""
        return None if self.is_operator else frozenset(self.roles)

    def can(self, permission: str, workspace_id: str | None = None) -> bool:
        """Whether this principal may `permission` in `workspace_id` (None: in every workspace,
        or a gateway-wide permission)."""
        if permission not in WORKSPACE_PERMISSIONS and permission not in GLOBAL_PERMISSIONS:
            raise ValueError(f"unknown permission {permission!r}")
        if self.is_operator:
            return True
        if permission in GLOBAL_PERMISSIONS or workspace_id is None:
            return False
        role = self.roles.get(workspace_id)
        return role is not None and permission in GRANTS.get(role, frozenset())

    def sees(self, workspace_id: str | None) -> bool:
        return workspace_id is not None and self.can("read", workspace_id)

    @property
    def actor(self) -> Actor:
        return Actor(self.name, self.kind)


def key_principal(key: KeyInfo, *, operator: bool, address: str | None = None) -> Principal:
    is_master = key.key_id == MASTER_KEY_INFO.key_id
    return Principal(
        kind="key",
        name="master" if is_master else key.name,
        display_name=key.name,
        is_operator=operator,
        roles={} if operator else {key.workspace_id: "key"},
        workspace_scope=None if operator else key.workspace_id,
        key_id=key.key_id,
        address=address,
    )


def user_principal(
    user: User, *, csrf_token: str, chosen: str | None = None, address: str | None = None
) -> Principal:
    """The principal of a signed-in user; `chosen`: the workspace (id or slug) the request
    asks to see."""
    scope: str | None = None
    if not user.is_operator and user.memberships:
        scope = user.memberships[0].workspace_id
        for membership in user.memberships:
            if chosen in (membership.workspace_id, membership.slug):
                scope = membership.workspace_id
    return Principal(
        kind="user",
        name=user.email,
        display_name=user.display_name,
        is_operator=user.is_operator,
        roles=user.roles,
        workspace_scope=scope,
        csrf_token=csrf_token,
        user_id=user.user_id,
        address=address,
        memberships=user.memberships,
    )


def principal(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The principal a guard (`require_console_user` or `require_admin`) accepted."""
    found: Principal = connection.state[STATE_KEY]
    return found

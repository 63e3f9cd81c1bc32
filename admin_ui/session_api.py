"""`GET /admin/api/session`: who the request acts as, what it may do, and (for a console
session) the CSRF token its changes must carry."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get

from admin_ui.openapi import described
from admin_ui.principals import GRANTS, principal


class SessionController(Controller):
    path = "/session"

    @get("/", operation_class=described())
    async def session(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        who = principal(request)
        return {
            "object": "session",
            "kind": who.kind,
            "name": who.name,
            "display_name": who.display_name,
            "operator": who.is_operator,
            "workspace_scope": who.workspace_scope,
            "workspaces": [
                {
                    "workspace_id": workspace_id,
                    "role": role,
                    "permissions": sorted(GRANTS.get(role, frozenset())),
                }
                for workspace_id, role in sorted(who.roles.items())
            ],
            "csrf_token": who.csrf_token,
        }

"""`/admin/api/workspaces`: list, read, create, update (name and settings: the limits and the
guardrails, `settings.guardrails`, run on every request of the workspace's keys).

An admin key of one workspace sees only that workspace (any other is a 404, as if it did not
exist); creating workspaces and changing their limits is the operator's (the master key, or an
admin key of the default workspace), since a workspace's limits bound what its own admins do.
The work itself is in `admin_ui.workspace_operations`, shared with the console's pages.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, patch, post

from admin_ui import workspace_operations as operations
from admin_ui.auth import require_global_admin
from admin_ui.openapi import described, nullable, object_schema, strings, text
from admin_ui.rules import json_object
from admin_ui.serialise import iso_time
from gateway.keys import Workspace

AnyRequest = Request[Any, Any, Any]

SETTINGS_SCHEMA = nullable(object_schema({"guardrails": strings()}))


def workspace_item(workspace: Workspace) -> dict[str, Any]:
    return {
        "object": "workspace",
        "id": workspace.workspace_id,
        "slug": workspace.slug,
        "name": workspace.name,
        "settings": workspace.settings,
        "created_at": iso_time(workspace.created_at) if workspace.created_at else None,
    }


class WorkspaceController(Controller):
    path = "/workspaces"

    @get("/", operation_class=described())
    async def list_workspaces(self, request: AnyRequest) -> dict[str, Any]:
        data = [workspace_item(w) for w in await operations.visible_workspaces(request)]
        return {"object": "list", "data": data}

    @get("/{workspace:str}", operation_class=described())
    async def get_workspace(self, request: AnyRequest, workspace: str) -> dict[str, Any]:
        return workspace_item(await operations.visible_workspace(request, workspace))

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
        return workspace_item(
            await operations.create_workspace(request, await json_object(request))
        )

    @patch(
        "/{workspace:str}",
        guards=[require_global_admin],
        operation_class=described(
            body=object_schema(
                {"slug": text(), "name": nullable(text()), "settings": SETTINGS_SCHEMA},
                closed=True,
            )
        ),
    )
    async def update_workspace(self, request: AnyRequest, workspace: str) -> dict[str, Any]:
        return workspace_item(
            await operations.update_workspace(request, workspace, await json_object(request))
        )

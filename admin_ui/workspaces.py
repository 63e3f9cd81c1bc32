"""`/admin/api/workspaces`: list, read, create, update (name and settings: the limits and the
guardrails, `settings.guardrails`, run on every request of the workspace's keys).

An admin key of one workspace sees only that workspace (any other is a 404, as if it did not
exist). Creating workspaces is the operator's (an operator user, the master key, an admin key of
the default workspace); changing a workspace's name and limits too, and its own owners' and
admins' signed in to the console, never its admin key's, since its limits bound what its keys
do.
The work itself is in `admin_ui.workspace_operations`, shared with the console's pages.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, patch, post

from admin_ui import workspace_operations as operations
from admin_ui.auth import require_global_admin
from admin_ui.openapi import described, nullable, object_schema, strings, text
from admin_ui.rules import json_object
from admin_ui.workspace_operations import workspace_item

AnyRequest = Request[Any, Any, Any]

SETTINGS_SCHEMA = nullable(object_schema({"guardrails": strings()}))


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

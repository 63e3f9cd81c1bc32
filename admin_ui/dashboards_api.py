"""`/admin/api/dashboards`: saved dashboards, listed, read, created (or copied), replaced and
deleted; `/admin/api/dashboards/builtin` lists the built-in ones a copy can start from.

The work is in `admin_ui.dashboard_operations`, shared with the console's pages: who sees and
changes what, how a body is read and checked, the audit entries.
"""

from __future__ import annotations

from typing import Any, Final, get_args

from litestar import Controller, Request, Response, delete, get, post, put

from admin_ui import dashboard_operations as operations
from admin_ui.console_auth import principal
from admin_ui.dashboard_catalog import builtin_dashboards
from admin_ui.dashboard_model import ChartKind, PanelKind, Width
from admin_ui.dashboards_store import panels_json
from admin_ui.openapi import Query, described, nullable, object_schema, strings, text
from admin_ui.rules import json_object

AnyRequest = Request[Any, Any, Any]

_FILTERS: Final = object_schema()
_FILTERS["additionalProperties"] = strings()
PANEL_SCHEMA: Final = object_schema(
    {
        "title": text(200),
        "kind": {"enum": list(get_args(PanelKind))},
        "metric": nullable(text()),
        "chart": {"enum": list(get_args(ChartKind))},
        "group_by": {**strings(), "maxItems": 2},
        "filters": _FILTERS,
        "top": nullable({"type": "integer", "minimum": 1, "maximum": operations.MAX_TOP}),
        "width": {"enum": list(get_args(Width))},
    },
    required=("title",),
    closed=True,
)
DASHBOARD_PROPERTIES: Final = {
    "name": text(200),
    "description": text(operations.MAX_DESCRIPTION),
    "panels": {"type": "array", "items": PANEL_SCHEMA, "maxItems": 40},
    "shared": {"type": "boolean"},
}
CREATE_SCHEMA: Final = object_schema(
    {
        **DASHBOARD_PROPERTIES,
        "workspace": text(),
        "copy_of": text(),
    }
)
UPDATE_SCHEMA: Final = object_schema(
    {**DASHBOARD_PROPERTIES, "version": {"type": "integer", "minimum": 1}},
    required=("name", "version"),
)


def builtin_item(key: str) -> dict[str, Any]:
    dashboard = builtin_dashboards()[key]
    return {
        "object": "dashboard",
        "id": key,
        "builtin": True,
        "name": dashboard.name,
        "description": dashboard.description,
        "panels": panels_json(dashboard),
    }


class DashboardController(Controller):
    path = "/dashboards"

    @get(
        "/",
        operation_class=described(
            query=(Query("workspace", "Only this workspace's dashboards (id or slug).", text()),)
        ),
    )
    async def list_dashboards(self, request: AnyRequest) -> dict[str, Any]:
        """The caller's own dashboards and those shared in its workspaces (an operator: all)."""
        listed = await operations.visible_dashboards(request, request.query_params.get("workspace"))
        who = principal(request)
        return {"object": "list", "data": [operations.dashboard_item(d, who) for d in listed]}

    @get("/builtin", operation_class=described())
    async def list_builtin(self) -> dict[str, Any]:
        """The built-in dashboards; `copy_of` takes their `id`."""
        return {"object": "list", "data": [builtin_item(key) for key in builtin_dashboards()]}

    @get("/{dashboard_id:str}", operation_class=described())
    async def get_dashboard(self, request: AnyRequest, dashboard_id: str) -> dict[str, Any]:
        found = await operations.visible_dashboard(request, dashboard_id)
        return operations.dashboard_item(found, principal(request))

    @post("/", status_code=201, operation_class=described(body=CREATE_SCHEMA))
    async def create_dashboard(self, request: AnyRequest) -> dict[str, Any]:
        """A new dashboard: its `name`, `description`, `panels` and `shared`, in `workspace`
        (the caller's own when left out); or `copy_of` a built-in or another dashboard."""
        created = await operations.create_dashboard(
            request, await json_object(request), builtin_dashboards()
        )
        return operations.dashboard_item(created, principal(request))

    @put("/{dashboard_id:str}", operation_class=described(body=UPDATE_SCHEMA, conflict=True))
    async def replace_dashboard(self, request: AnyRequest, dashboard_id: str) -> dict[str, Any]:
        """Replace the dashboard; `version` (or `If-Match`) is the version the change was made
        from: 409 when it has changed since."""
        body = await json_object(request)
        version = operations.required_version(request, body)
        updated = await operations.update_dashboard(request, dashboard_id, body, version)
        return operations.dashboard_item(updated, principal(request))

    @delete(
        "/{dashboard_id:str}",
        status_code=204,
        operation_class=described(
            query=(Query("version", "Delete only at this version (409 otherwise).", text()),),
            conflict=True,
        ),
    )
    async def delete_dashboard(self, request: AnyRequest, dashboard_id: str) -> Response[None]:
        version = operations.optional_version(request)
        await operations.delete_dashboard(request, dashboard_id, version)
        return Response(None, status_code=204)

"""The console's saved dashboards under `/admin/dashboards`: the list (with the built-in
dashboards to copy), a dashboard drawn over the page's time range, the panel editor for a new or
an existing one, copying and deleting.

Every page reads and changes dashboards through `admin_ui.dashboard_operations`, the functions
behind `/admin/api/dashboards`, so the two never disagree on what is visible, allowed or valid.
The editor is one server-rendered form: its buttons add, remove and move panels (the form comes
back with the change and the focus where it was), preview the dashboard under the form, or
save it; a refusal comes back with what was typed and each problem next to its field.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect
from markupsafe import Markup

from admin_ui import dashboard_operations as operations
from admin_ui.analytics_pages import PAGES, analytics_page
from admin_ui.analytics_range import PageRange, default_range
from admin_ui.console_auth import principal
from admin_ui.dashboard_catalog import builtin_dashboards
from admin_ui.dashboard_forms import (
    CHART_LABELS,
    DIMENSIONS,
    KIND_LABELS,
    PANEL_FIELDS,
    WIDTH_LABELS,
    Editor,
    apply_action,
    dashboard_body,
    editor_of,
    field_of_path,
    metric_choices,
    new_editor,
    panel_field,
    place_problems,
    preview_of,
    read_editor,
)
from admin_ui.dashboard_model import Problem
from admin_ui.dashboard_render import render_dashboard
from admin_ui.dashboards_store import StoredDashboard
from admin_ui.page_views import time_view, workspace_choices
from admin_ui.pages import ADMIN_PATH, page
from admin_ui.principals import Principal
from admin_ui.state import gateway_of
from gateway.errors import GatewayError
from gateway.keys.store import KeyStore, Workspace
from telemetry.schema import DEFAULT_WORKSPACE_ID

AnyRequest = Request[Any, Any, Any]
BASE: Final = f"{ADMIN_PATH}/dashboards"
NAV: Final = "dashboards"
Save = Callable[[dict[str, Any]], Awaitable[StoredDashboard]]


async def _workspaces(request: AnyRequest) -> list[Workspace]:
    who = principal(request)
    found = await KeyStore(gateway_of(request).engine).list_workspaces()
    return [workspace for workspace in found if who.sees(workspace.workspace_id)]


def _row(stored: StoredDashboard, who: Principal, names: dict[str, str]) -> dict[str, Any]:
    return {
        "id": stored.dashboard_id,
        "name": stored.dashboard.name,
        "description": stored.dashboard.description,
        "workspace": names.get(stored.workspace_id, stored.workspace_id),
        "shared": stored.shared,
        "mine": operations.owns(who, stored),
        "panels": len(stored.dashboard.panels),
        "updated": time_view(stored.updated_at),
        "editable": operations.may_change(who, stored),
    }


def _builtins() -> list[dict[str, Any]]:
    paths = {name: path for name, _, path in PAGES}
    return [
        {
            "key": key,
            "name": dashboard.name,
            "description": dashboard.description,
            "path": paths.get(key),
        }
        for key, dashboard in builtin_dashboards().items()
    ]


def _problems_of(error: GatewayError) -> list[Problem]:
    if isinstance(error, operations.InvalidDashboard):
        return error.problems
    return [Problem(error.param or "", error.message)]


class DashboardPages(Controller):
    path = "/dashboards"
    include_in_schema = False

    @get("/")
    async def list_dashboards(self, request: AnyRequest) -> Response[Any]:
        who = principal(request)
        chosen = request.query_params.get("workspace") or None
        workspaces = await _workspaces(request)
        listed = await operations.visible_dashboards(request, chosen)
        names = {w.workspace_id: w.name or w.slug for w in workspaces}
        query = request.query_params
        return await page(
            request,
            "dashboards/list.html",
            nav_active=NAV,
            rows=[_row(stored, who, names) for stored in listed],
            builtins=_builtins(),
            several_workspaces=len(workspaces) > 1,
            deleted=query.get("deleted"),
            base=BASE,
        )

    @get("/new")
    async def new_dashboard(self, request: AnyRequest) -> Response[Any]:
        who = principal(request)
        home = who.workspace_scope or DEFAULT_WORKSPACE_ID
        slugs = {w.workspace_id: w.slug for w in await _workspaces(request)}
        return await self._editor(
            request, new_editor(_chosen_workspace(request) or slugs.get(home, ""))
        )

    @post("/new")
    async def create_dashboard(self, request: AnyRequest) -> Response[Any]:
        builtins = builtin_dashboards()
        return await self._submit(
            request,
            None,
            lambda body: operations.create_dashboard(request, body, builtins),
        )

    @post("/copy")
    async def copy_dashboard(self, request: AnyRequest) -> Response[Any]:
        form = await request.form()
        body: dict[str, Any] = {"copy_of": str(form.get("copy_of") or "")}
        workspace = str(form.get("workspace") or "") or _chosen_workspace(request)
        if workspace:
            body["workspace"] = workspace
        copied = await operations.create_dashboard(request, body, builtin_dashboards())
        return Redirect(f"{BASE}/{copied.dashboard_id}/edit?copied=1", status_code=303)

    @get("/{dashboard_id:str}")
    async def view_dashboard(self, request: AnyRequest, dashboard_id: str) -> Response[Any]:
        """The dashboard drawn over the range in the top bar, for its own workspace unless the
        top bar names another (within what the viewer may see)."""
        stored = await operations.visible_dashboard(request, dashboard_id)
        if "workspace" not in request.query_params:
            found = await KeyStore(gateway_of(request).engine).get_workspace(stored.workspace_id)
            if found is not None:
                kept = [(n, v) for n, v in request.query_params.multi_items()]
                query = urlencode([("workspace", found.slug), *kept])
                return Redirect(f"{BASE}/{dashboard_id}?{query}", status_code=302)
        dashboard = stored.dashboard

        async def body(page_range: PageRange) -> Markup:
            return await render_dashboard(request, dashboard, page_range)

        shown = await analytics_page(
            request,
            nav_active=NAV,
            title=dashboard.name,
            description=dashboard.description,
            body=body,
        )
        shown.template_name = "dashboards/view.html"
        shown.context.update(
            dashboard=_row(stored, principal(request), {}),
            saved=request.query_params.get("saved"),
            base=BASE,
        )
        return shown

    @get("/{dashboard_id:str}/edit")
    async def edit_dashboard(self, request: AnyRequest, dashboard_id: str) -> Response[Any]:
        stored = await self._editable(request, dashboard_id)
        editor = editor_of(stored.dashboard, shared=stored.shared, version=stored.version)
        return await self._editor(
            request, editor, stored=stored, copied=bool(request.query_params.get("copied"))
        )

    @post("/{dashboard_id:str}/edit")
    async def save_dashboard(self, request: AnyRequest, dashboard_id: str) -> Response[Any]:
        stored = await self._editable(request, dashboard_id)

        async def save(body: dict[str, Any]) -> StoredDashboard:
            version = operations.required_version(request, body)
            return await operations.update_dashboard(request, dashboard_id, body, version)

        return await self._submit(request, stored, save)

    @get("/{dashboard_id:str}/delete")
    async def confirm_delete(self, request: AnyRequest, dashboard_id: str) -> Response[Any]:
        stored = await self._editable(request, dashboard_id)
        return await page(
            request,
            "dashboards/delete.html",
            nav_active=NAV,
            dashboard=_row(stored, principal(request), {}),
            version=stored.version,
            base=BASE,
        )

    @post("/{dashboard_id:str}/delete")
    async def delete_dashboard(self, request: AnyRequest, dashboard_id: str) -> Response[Any]:
        form = await request.form()
        version = str(form.get("version") or "")
        deleted = await operations.delete_dashboard(
            request, dashboard_id, int(version) if version.isdigit() else None
        )
        return Redirect(
            f"{BASE}?{urlencode({'deleted': deleted.dashboard.name[:100]})}", status_code=303
        )

    # --- shared by the handlers ---------------------------------------------------------------

    async def _editable(self, request: AnyRequest, dashboard_id: str) -> StoredDashboard:
        """The dashboard, when the caller may change it: 404 when it cannot be seen, 403 when it
        can be seen only."""
        stored = await operations.visible_dashboard(request, dashboard_id)
        if not operations.may_change(principal(request), stored):
            raise GatewayError(
                403,
                "Only the dashboard's owner, or an admin or owner of its workspace, can change "
                "it; copy it to keep a version of your own.",
                type="permission_error",
                code="permission_denied",
            )
        return stored

    async def _submit(
        self, request: AnyRequest, stored: StoredDashboard | None, save: Save
    ) -> Response[Any]:
        form = await request.form()
        editor = read_editor(form)
        action = str(form.get("action") or "save")
        if apply_action(editor, action):
            return await self._editor(request, editor, stored=stored)
        body = dashboard_body(editor)
        if stored is not None:
            body["version"] = editor.values.get("version") or None
        if action == "preview" or editor.errors:
            problems = _checked(body)
            place_problems(editor, problems)
            status = 400 if editor.errors else 200
            preview = preview_of(body) if status == 200 else None
            drawn = await render_dashboard(request, preview, default_range()) if preview else None
            return await self._editor(
                request, editor, stored=stored, preview=drawn, status_code=status
            )
        try:
            saved = await save(body)
        except GatewayError as error:
            if error.status in (403, 404) and error.param not in ("shared", "workspace"):
                raise
            if error.status == 409 or not field_of_path(error.param, len(editor.panels)):
                editor.errors[""] = error.message
            else:
                place_problems(editor, _problems_of(error))
            return await self._editor(request, editor, stored=stored, status_code=error.status)
        return Redirect(f"{BASE}/{saved.dashboard_id}?saved={saved.version}", status_code=303)

    async def _editor(
        self,
        request: AnyRequest,
        editor: Editor,
        *,
        stored: StoredDashboard | None = None,
        preview: Markup | None = None,
        copied: bool = False,
        status_code: int = 200,
    ) -> Response[Any]:
        who = principal(request)
        workspaces = await _workspaces(request)
        workspace_id = stored.workspace_id if stored else _workspace_id(editor, who, workspaces)
        return await page(
            request,
            "dashboards/edit.html",
            nav_active=NAV,
            status_code=status_code,
            editor=editor,
            stored=stored,
            action=f"{BASE}/{stored.dashboard_id}/edit" if stored else f"{BASE}/new",
            can_share=who.can("dashboards.write", workspace_id) or editor.shared,
            workspace_options=workspace_choices(workspaces)
            if stored is None and len(workspaces) > 1
            else [],
            metrics=metric_choices(),
            kinds=list(KIND_LABELS.items()),
            charts=list(CHART_LABELS.items()),
            widths=list(WIDTH_LABELS.items()),
            dimensions=DIMENSIONS,
            panel_field=panel_field,
            panel_fields=PANEL_FIELDS,
            preview=preview,
            copied=copied,
            base=BASE,
            workspace_rows=workspaces,
        )


def _checked(body: dict[str, Any]) -> list[Problem]:
    """The problems saving `body` would meet, without saving it."""
    try:
        operations.dashboard_of(body)
    except GatewayError as error:
        return _problems_of(error)
    return []


def _chosen_workspace(request: AnyRequest) -> str:
    """The top bar's workspace, which a new dashboard goes to unless the form says otherwise."""
    return request.query_params.get("workspace") or ""


def _workspace_id(editor: Editor, who: Principal, workspaces: list[Workspace]) -> str | None:
    chosen = editor.values.get("workspace")
    for workspace in workspaces:
        if chosen in (workspace.slug, workspace.workspace_id):
            return workspace.workspace_id
    return who.workspace_scope or DEFAULT_WORKSPACE_ID

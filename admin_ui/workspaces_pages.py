"""The console's workspace pages under `/admin/workspaces`: the list with each workspace's keys
counted, create, and a workspace's page with its name and limits.

They read and write through `admin_ui.workspace_operations`, the functions behind
`/admin/api/workspaces`. An operator creates workspaces and sets their name and limits; a
workspace's own admin sees its workspace only, and its settings read-only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect

from admin_ui import workspace_operations as operations
from admin_ui.form_fields import (
    LIMIT_TEXT_FIELDS,
    FormState,
    FormValues,
    budgets_from,
    changed,
    limit_values,
    limits_from,
    place_error,
    read_form,
)
from admin_ui.page_access import can, ensure_can
from admin_ui.page_views import budget_timezone, guardrail_choices, workspace_row
from admin_ui.pages import page
from gateway.errors import GatewayError
from gateway.keys.limits import WINDOWS
from gateway.keys.store import Workspace

AnyRequest = Request[Any, Any, Any]

NAV = "workspaces"
CREATE_TEXT_FIELDS = ("slug", "name", *LIMIT_TEXT_FIELDS)
EDIT_TEXT_FIELDS = ("name", *LIMIT_TEXT_FIELDS)
LIST_FIELDS = ("guardrails",)
ERROR_FIELDS = (
    "slug",
    "name",
    "rpm_limit",
    "tpm_limit",
    "max_parallel",
    "budgets",
    *(f"budget_{window}" for window in WINDOWS),
    "guardrails",
)


def workspace_values(workspace: Workspace) -> FormValues:
    limits = workspace.limits
    return {
        "slug": workspace.slug,
        "name": workspace.name,
        **limit_values(limits.rpm_limit, limits.tpm_limit, limits.max_parallel, limits.budgets),
        "guardrails": list(limits.guardrails),
    }


def settings_body(values: FormValues) -> tuple[dict[str, Any], list[str]]:
    """The `settings` the form's values set (every limit; None where there is none) and the
    window of each budget in it."""
    settings = {**limits_from(values), "guardrails": list(values.get("guardrails", []))}
    return settings, budgets_from(values)[1]


async def _counts(request: AnyRequest) -> dict[str, Any]:
    return await operations.key_store_of(request).count_by_workspace(datetime.now(UTC))


async def _form_page(
    request: AnyRequest,
    template: str,
    form: FormState,
    *,
    status_code: int = 200,
    **context: Any,
) -> Response[Any]:
    return await page(
        request,
        template,
        nav_active=NAV,
        status_code=status_code,
        form=form,
        windows=WINDOWS,
        guardrail_choices=guardrail_choices(request),
        budget_timezone=budget_timezone(request),
        **context,
    )


async def _detail_page(
    request: AnyRequest, workspace: Workspace, form: FormState, *, status_code: int = 200
) -> Response[Any]:
    counts = (await _counts(request)).get(workspace.workspace_id)
    saved = request.query_params.get("saved")
    notice = {"1": "saved", "0": "unchanged"}.get(saved or "", "")
    if request.query_params.get("created"):
        notice = "created"
    return await _form_page(
        request,
        "workspaces/detail.html",
        form,
        status_code=status_code,
        workspace=workspace_row(workspace, counts),
        can_edit=can(request, "workspaces.write", workspace.workspace_id),
        can_create_key=can(request, "keys.write", workspace.workspace_id),
        notice=notice,
        creating=False,
    )


class WorkspacePages(Controller):
    path = "/workspaces"
    include_in_schema = False

    @get("/")
    async def list_workspaces(self, request: AnyRequest) -> Response[Any]:
        ensure_can(request, "workspaces.read", None)
        counts = await _counts(request)
        workspaces = await operations.visible_workspaces(request)
        return await page(
            request,
            "workspaces/list.html",
            nav_active=NAV,
            rows=[workspace_row(w, counts.get(w.workspace_id)) for w in workspaces],
            can_create=can(request, "workspaces.write", None),
        )

    @get("/new")
    async def new_workspace(self, request: AnyRequest) -> Response[Any]:
        ensure_can(request, "workspaces.write", None)
        values: FormValues = {name: "" for name in CREATE_TEXT_FIELDS}
        values["guardrails"] = []
        return await _form_page(request, "workspaces/new.html", FormState(values), creating=True)

    @post("/new", status_code=303)
    async def create_workspace(self, request: AnyRequest) -> Response[Any]:
        ensure_can(request, "workspaces.write", None)
        values = read_form(await request.form(), CREATE_TEXT_FIELDS, LIST_FIELDS)
        form = FormState(values)
        settings, windows = settings_body(values)
        body = {
            "slug": values["slug"].strip(),
            "name": values["name"].strip() or None,
            "settings": settings,
        }
        try:
            created = await operations.create_workspace(request, body)
        except GatewayError as error:
            if error.status == 403:
                raise
            place_error(form, error, ERROR_FIELDS, windows)
            return await _form_page(
                request, "workspaces/new.html", form, status_code=400, creating=True
            )
        return Redirect(f"/admin/workspaces/{created.workspace_id}?created=1", status_code=303)

    @get("/{workspace:str}")
    async def workspace_detail(self, request: AnyRequest, workspace: str) -> Response[Any]:
        found = await operations.visible_workspace(request, workspace)
        ensure_can(request, "workspaces.read", found.workspace_id)
        return await _detail_page(request, found, FormState(workspace_values(found)))

    @post("/{workspace:str}", status_code=303)
    async def update_workspace(self, request: AnyRequest, workspace: str) -> Response[Any]:
        current = await operations.visible_workspace(request, workspace)
        ensure_can(request, "workspaces.write", current.workspace_id)
        values = read_form(await request.form(), EDIT_TEXT_FIELDS, LIST_FIELDS)
        form = FormState(values)
        settings, windows = settings_body(values)
        stored_settings, _ = settings_body(workspace_values(current))
        body: dict[str, Any] = changed({"name": values["name"]}, {"name": current.name})
        settings_changes = changed(settings, stored_settings)
        if settings_changes:
            body["settings"] = settings_changes
        try:
            if body:
                await operations.update_workspace(request, current.workspace_id, body)
        except GatewayError as error:
            if error.status in (403, 404):
                raise
            place_error(form, error, ERROR_FIELDS, windows)
            return await _detail_page(request, current, form, status_code=400)
        saved = 1 if body else 0
        return Redirect(f"/admin/workspaces/{current.workspace_id}?saved={saved}", status_code=303)

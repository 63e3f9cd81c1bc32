"""The console's evaluator pages under `/admin/quality/evaluators`: the list with each
evaluator's queue and spend today, and the editor for a new evaluator and an existing one.

They go through what `/admin/api/evaluators` goes through: `parse_definition` checks what was
typed (the problem is shown beside its field), the store saves it, changes need the
`settings.write` permission of the evaluator's workspace, and each change writes the audit
entry the API writes. Evaluators of the config file are shown read-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect

from admin_ui import alerts_access as access
from admin_ui import evaluator_changes as changes
from admin_ui.auth import workspace_scope
from admin_ui.console_auth import require_permission
from admin_ui.evaluator_form import (
    LIST_FIELDS,
    TEXT_FIELDS,
    condition_text,
    empty_values,
    evaluator_body,
    evaluator_values,
    field_of,
    money,
    problem_text,
)
from admin_ui.evaluators_api import PERMISSION, visible_evaluator
from admin_ui.form_fields import FormState, read_form
from admin_ui.page_views import workspace_choices, workspace_labels
from admin_ui.pages import page
from admin_ui.principals import principal
from admin_ui.state import gateway_of
from admin_ui.workspace_operations import visible_workspace, visible_workspaces
from telemetry.evaluation.criteria import BUILT_IN
from telemetry.evaluation.definition import (
    DefinitionError,
    EvaluatorDefinition,
    check_name,
)
from telemetry.evaluation.state import EvaluatorState
from telemetry.evaluation.store import (
    ORIGIN_CONFIG,
    Evaluator,
)
from telemetry.schema import DEFAULT_WORKSPACE_ID

AnyRequest = Request[Any, Any, Any]

NAV: Final = "quality-evaluators"
BASE: Final = "/admin/quality/evaluators"


@dataclass(frozen=True, slots=True)
class EvaluatorRow:
    id: str
    name: str
    workspace: str
    origin: str
    enabled: bool
    judge: str
    criteria: list[str]
    sampling_percent: str
    condition: str
    pending: int
    running: int
    failed: int
    today: dict[str, int]
    spent: str
    cap: str
    cap_reached: bool
    can_write: bool


def _writable(request: AnyRequest, workspace_id: str) -> bool:
    return principal(request).can(PERMISSION, workspace_id)


def _row(
    request: AnyRequest, evaluator: Evaluator, state: EvaluatorState, workspace: str
) -> EvaluatorRow:
    definition = evaluator.definition
    cap = definition.daily_cap_usd
    return EvaluatorRow(
        id=evaluator.id,
        name=evaluator.name,
        workspace=workspace,
        origin=evaluator.origin,
        enabled=evaluator.enabled,
        judge=definition.judge.model,
        criteria=[c.name for c in definition.criteria],
        sampling_percent=f"{definition.sampling_rate * 100:.4g} %",
        condition=condition_text(definition.condition),
        pending=state.queue.get("pending", 0),
        running=state.queue.get("running", 0),
        failed=state.queue.get("failed", 0),
        today={s: state.today.get(s, 0) for s in ("ok", "failed", "no_content", "over_cap")},
        spent=money(state.spent_today_usd),
        cap=money(cap),
        cap_reached=cap is not None and state.spent_today_usd >= cap,
        can_write=evaluator.origin != ORIGIN_CONFIG and _writable(request, evaluator.workspace_id),
    )


async def _editor(
    request: AnyRequest,
    form: FormState,
    workspace_id: str,
    *,
    evaluator: Evaluator | None = None,
    status_code: int = 200,
) -> Response[Any]:
    config = gateway_of(request).config
    models = config.model_names() if config is not None else []
    workspaces = await visible_workspaces(request)
    labels = workspace_labels(workspaces)
    choose_workspace = evaluator is None and workspace_scope(request) is None
    read_only = evaluator is not None and evaluator.origin == ORIGIN_CONFIG
    return await page(
        request,
        "quality/evaluator_edit.html",
        nav_active=NAV,
        status_code=status_code,
        form=form,
        evaluator=evaluator,
        action=f"{BASE}/{evaluator.id}" if evaluator else f"{BASE}/new",
        workspace=labels.get(workspace_id),
        workspace_choices=workspace_choices(workspaces) if choose_workspace else [],
        model_choices=[(name, name) for name in models],
        criteria_choices=[
            (name, name, rubric.split("?", 1)[0] + "?") for name, rubric in BUILT_IN.items()
        ],
        can_write=not read_only and _writable(request, workspace_id),
        read_only=read_only,
        workspace_rows=workspaces,
    )


def _parse(request: AnyRequest, form: FormState) -> tuple[str, bool, EvaluatorDefinition] | None:
    try:
        body = evaluator_body(form.values)
        name = check_name(body["name"])
        definition = changes.definition_of(request, body)
    except DefinitionError as error:
        form.errors[field_of(error)] = problem_text(error)
        return None
    return name, bool(body["enabled"]), definition


async def _posted(request: AnyRequest) -> FormState:
    return FormState(read_form(await request.form(), TEXT_FIELDS, LIST_FIELDS))


class EvaluatorPages(Controller):
    path = "/quality/evaluators"
    include_in_schema = False

    @get("/")
    async def list_evaluators_page(self, request: AnyRequest) -> Response[Any]:
        found, states = await changes.visible_evaluators(request)
        workspaces = await visible_workspaces(request)
        labels = workspace_labels(workspaces)
        rows = [
            _row(
                request,
                e,
                states[e.id],
                labels[e.workspace_id].name if e.workspace_id in labels else e.workspace_id,
            )
            for e in found
        ]
        spent = sum((states[e.id].spent_today_usd for e in found), Decimal(0))
        return await page(
            request,
            "quality/evaluators.html",
            nav_active=NAV,
            rows=rows,
            spent_today=money(spent),
            can_create=_writable(request, workspace_scope(request) or DEFAULT_WORKSPACE_ID),
            base_url=str(request.base_url).rstrip("/"),
            notice=request.query_params.get("done", ""),
            notice_name=request.query_params.get("name", ""),
            auto_refresh=True,
            workspace_rows=workspaces,
        )

    @get("/new")
    async def new_evaluator_page(self, request: AnyRequest) -> Response[Any]:
        config = gateway_of(request).config
        models = config.model_names() if config is not None else []
        values = empty_values("judge" if "judge" in models else (models[0] if models else ""))
        values["workspace"] = request.query_params.get("workspace", "").strip()
        workspace_id = workspace_scope(request) or DEFAULT_WORKSPACE_ID
        if values["workspace"]:
            workspace_id = (await visible_workspace(request, values["workspace"])).workspace_id
        require_permission(request, PERMISSION, workspace_id)
        return await _editor(request, FormState(values), workspace_id)

    @post("/new", status_code=200)
    async def create_evaluator_page(self, request: AnyRequest) -> Response[Any]:
        form = await _posted(request)
        workspace_id = await access.target_workspace(
            request, str(form.values.get("workspace", "")).strip() or None, PERMISSION
        )
        parsed = _parse(request, form)
        if parsed is None:
            return await _editor(request, form, workspace_id, status_code=400)
        name, enabled, definition = parsed
        try:
            made = await changes.create(request, workspace_id, name, definition, enabled=enabled)
        except DefinitionError as error:
            form.errors[field_of(error)] = problem_text(error)
            return await _editor(request, form, workspace_id, status_code=400)
        return _back("created", made.name)

    @get("/{evaluator_id:str}")
    async def edit_evaluator_page(self, request: AnyRequest, evaluator_id: str) -> Response[Any]:
        found = await visible_evaluator(request, evaluator_id)
        return await _editor(
            request, FormState(evaluator_values(found)), found.workspace_id, evaluator=found
        )

    @post("/{evaluator_id:str}", status_code=200)
    async def update_evaluator_page(self, request: AnyRequest, evaluator_id: str) -> Response[Any]:
        current = await visible_evaluator(request, evaluator_id)
        require_permission(request, PERMISSION, current.workspace_id)
        form = await _posted(request)
        if current.origin == ORIGIN_CONFIG:
            form.errors[""] = "This evaluator comes from the config file: change it there."
            return await _editor(
                request, form, current.workspace_id, evaluator=current, status_code=409
            )
        parsed = _parse(request, form)
        if parsed is None:
            return await _editor(
                request, form, current.workspace_id, evaluator=current, status_code=400
            )
        name, enabled, definition = parsed
        try:
            stored = await changes.replace(request, current, name, definition, enabled=enabled)
        except DefinitionError as error:
            form.errors[field_of(error)] = problem_text(error)
            return await _editor(
                request, form, current.workspace_id, evaluator=current, status_code=400
            )
        return _back("saved", stored.name)

    @get("/{evaluator_id:str}/delete")
    async def confirm_delete_evaluator_page(
        self, request: AnyRequest, evaluator_id: str
    ) -> Response[Any]:
        found = await visible_evaluator(request, evaluator_id)
        require_permission(request, PERMISSION, found.workspace_id)
        if found.origin == ORIGIN_CONFIG:
            return _back("from_config", found.name)
        return await page(request, "quality/evaluator_delete.html", nav_active=NAV, evaluator=found)

    @post("/{evaluator_id:str}/delete", status_code=303)
    async def delete_evaluator_page(self, request: AnyRequest, evaluator_id: str) -> Response[Any]:
        current = await visible_evaluator(request, evaluator_id)
        require_permission(request, PERMISSION, current.workspace_id)
        if current.origin == ORIGIN_CONFIG:
            return _back("from_config", current.name)
        await changes.remove(request, current)
        return _back("deleted", current.name)


def _back(done: str, name: str) -> Response[Any]:
    return Redirect(f"{BASE}?{urlencode({'done': done, 'name': name})}", status_code=303)

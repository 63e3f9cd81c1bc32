"""The console's alert rule pages under `/admin/alerts/rules`: the list (with mute, unmute and
delete), and the rule editor for a new rule and an existing one, with the rule's 7-day preview.

The pages go through what `/admin/api/alerts/rules` goes through: `parse_rule` checks what was
typed (its `RuleError.field` puts the message beside the field), `rule_store` saves it, the
access checks are `admin_ui.alerts_access`'s (`alerts.write` to change a rule, which viewers
lack), and every change writes the audit entry the API writes. The preview is
`telemetry.alerts.preview`, as `POST /admin/api/alerts/rules/preview` answers it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlencode

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect

from admin_ui import alert_rule_operations as operations
from admin_ui import alerts_access as access
from admin_ui.alert_rule_form import (
    LIST_FIELDS,
    TEXT_FIELDS,
    empty_values,
    field_of,
    rule_body,
    rule_values,
)
from admin_ui.alert_rule_list import list_rows, open_counts
from admin_ui.alert_rule_preview_view import PreviewView, preview_view
from admin_ui.alert_rules_api import visible_rule
from admin_ui.analytics_filters import FILTER_DIMENSIONS
from admin_ui.auth import workspace_scope
from admin_ui.form_fields import FormState, FormValues, read_form
from admin_ui.page_views import workspace_choices, workspace_labels
from admin_ui.pages import page
from admin_ui.principals import principal
from admin_ui.state import gateway_of
from admin_ui.workspace_operations import visible_workspace, visible_workspaces
from telemetry.alerts import AlertRule, RuleError, parse_rule
from telemetry.alerts.channel_store import list_channels
from telemetry.alerts.preview import preview_rule
from telemetry.alerts.rule import ANOMALY_SCORE
from telemetry.alerts.rule_store import load_rules
from telemetry.analytics_anomalies import KIND_METRICS, KIND_TITLES
from telemetry.analytics_metrics import METRICS
from telemetry.ids import uuid7_hex
from telemetry.schema import DEFAULT_WORKSPACE_ID

AnyRequest = Request[Any, Any, Any]

NAV: Final = "alert-rules"
BASE: Final = "/admin/alerts/rules"
UNIT_NAMES: Final = {
    "percent": "%",
    "usd": "USD",
    "ms": "ms",
    "tokens": "tokens",
    "count": "count",
    "events": "count",
}
GROUP_DIMENSIONS: Final = ("workspace", *FILTER_DIMENSIONS)
CONDITION_CHOICES: Final = [
    ("above", "above a threshold"),
    ("below", "below a threshold"),
    ("change_pct", "change in percent against the window before"),
]
NO_DATA_CHOICES: Final = [
    ("ok", "ok — no requests is fine"),
    ("alerting", "alerting — no requests breaches (at the most severe threshold)"),
    ("keep", "keep — the state stays as it is"),
]


def metric_choices() -> list[tuple[str, str]]:
    choices = [
        (name, f"{metric.title} ({UNIT_NAMES.get(metric.unit, metric.unit)})")
        for name, metric in METRICS.items()
    ]
    return [*choices, (ANOMALY_SCORE, "Anomaly score (how unusual the hour is)")]


def _writable(request: AnyRequest, workspace_id: str) -> bool:
    return principal(request).can("alerts.write", workspace_id)


async def _form_workspace(request: AnyRequest, given: str) -> str:
    """The workspace a new rule's form is for: the one chosen, else the request's own."""
    if given.strip():
        return (await visible_workspace(request, given.strip())).workspace_id
    return workspace_scope(request) or DEFAULT_WORKSPACE_ID


async def _editor(
    request: AnyRequest,
    form: FormState,
    workspace_id: str,
    *,
    rule: AlertRule | None = None,
    preview: PreviewView | None = None,
    status_code: int = 200,
) -> Response[Any]:
    engine = gateway_of(request).engine
    channels = await list_channels(engine, [workspace_id])
    choose_workspace = rule is None and workspace_scope(request) is None
    workspaces = await visible_workspaces(request)
    labels = workspace_labels(workspaces)
    return await page(
        request,
        "alerts/rules_edit.html",
        nav_active=NAV,
        status_code=status_code,
        form=form,
        rule=rule,
        action=f"{BASE}/{rule.id}" if rule else f"{BASE}/new",
        workspace=labels.get(workspace_id),
        workspace_choices=workspace_choices(workspaces) if choose_workspace else [],
        metric_choices=metric_choices(),
        kind_choices=[("", "— (only for an anomaly score)")]
        + [(kind, KIND_TITLES.get(kind, kind)) for kind in KIND_METRICS],
        condition_choices=CONDITION_CHOICES,
        no_data_choices=NO_DATA_CHOICES,
        group_choices=[(name, name, "") for name in GROUP_DIMENSIONS],
        channel_choices=[
            (stored.channel.id, stored.channel.name, stored.channel.kind) for stored in channels
        ],
        units={name: metric.unit for name, metric in METRICS.items()},
        preview=preview,
        can_write=_writable(request, workspace_id),
        workspace_rows=workspaces,
    )


async def _submitted(
    request: AnyRequest, workspace_id: str, rule_id: str, current: AlertRule | None
) -> tuple[FormState, str, AlertRule | None]:
    """The form posted, its button (`preview` or `save`), and the rule it makes (None, with
    the problem placed in the form, when it makes none)."""
    posted = await request.form()
    values: FormValues = read_form(posted, TEXT_FIELDS, LIST_FIELDS)
    form = FormState(values)
    button = "preview" if posted.get("preview") is not None else "save"
    try:
        rule = parse_rule(rule_body(values), workspace_id=workspace_id, rule_id=rule_id)
    except RuleError as error:
        form.errors[field_of(error)] = _sentence(error.reason)
        return form, button, None
    if current is not None:
        rule = msgspec.structs.replace(rule, muted=current.muted, built_in=current.built_in)
    return form, button, rule


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


async def _previewed(request: AnyRequest, rule: AlertRule, form: FormState) -> PreviewView | None:
    try:
        found = await preview_rule(gateway_of(request).engine, rule, datetime.now(UTC))
    except RuleError as error:
        form.errors[field_of(error)] = _sentence(error.reason)
        return None
    return preview_view(found)


class AlertRulePages(Controller):
    path = "/alerts/rules"
    include_in_schema = False

    @get("/")
    async def list_alert_rules(self, request: AnyRequest) -> Response[Any]:
        engine = gateway_of(request).engine
        readable = await access.readable_workspaces(request)
        rules = await load_rules(engine, workspace_ids=readable)
        channels = await list_channels(engine, readable)
        workspaces = await visible_workspaces(request)
        rows = list_rows(
            rules,
            await open_counts(engine, [rule.id for rule in rules]),
            {stored.channel.id: stored.channel.name for stored in channels},
            workspace_labels(workspaces),
            lambda workspace_id: _writable(request, workspace_id),
        )
        return await page(
            request,
            "alerts/rules_list.html",
            nav_active=NAV,
            rows=rows,
            can_create=_writable(request, workspace_scope(request) or DEFAULT_WORKSPACE_ID),
            base_url=str(request.base_url).rstrip("/"),
            notice=request.query_params.get("done", ""),
            notice_name=request.query_params.get("name", ""),
            workspace_rows=workspaces,
        )

    @get("/new")
    async def new_alert_rule(self, request: AnyRequest) -> Response[Any]:
        values = empty_values()
        values["workspace"] = request.query_params.get("workspace", "").strip()
        workspace_id = await _form_workspace(request, values["workspace"])
        access.require_write(request, workspace_id)
        return await _editor(request, FormState(values), workspace_id)

    @post("/new", status_code=200)
    async def create_alert_rule(self, request: AnyRequest) -> Response[Any]:
        posted = await request.form()
        workspace_id = await access.target_workspace(
            request, str(posted.get("workspace", "")).strip() or None
        )
        form, button, rule = await _submitted(request, workspace_id, uuid7_hex(), None)
        if rule is None:
            return await _editor(request, form, workspace_id, status_code=400)
        if button == "preview":
            preview = await _previewed(request, rule, form)
            return await _editor(request, form, workspace_id, preview=preview)
        try:
            stored = await operations.create(request, rule)
        except RuleError as error:
            form.errors[field_of(error)] = _sentence(error.reason)
            return await _editor(request, form, workspace_id, status_code=400)
        return _back("created", stored.name)

    @get("/{rule_id:str}")
    async def edit_alert_rule(self, request: AnyRequest, rule_id: str) -> Response[Any]:
        rule = await visible_rule(request, rule_id)
        form = FormState(rule_values(rule))
        preview = await _previewed(request, rule, form)
        return await _editor(request, form, rule.workspace_id, rule=rule, preview=preview)

    @post("/{rule_id:str}", status_code=200)
    async def update_alert_rule(self, request: AnyRequest, rule_id: str) -> Response[Any]:
        current = await visible_rule(request, rule_id)
        access.require_write(request, current.workspace_id)
        form, button, rule = await _submitted(request, current.workspace_id, current.id, current)
        if rule is None:
            return await _editor(request, form, current.workspace_id, rule=current, status_code=400)
        if button == "preview":
            preview = await _previewed(request, rule, form)
            return await _editor(request, form, current.workspace_id, rule=current, preview=preview)
        try:
            stored = await operations.replace(request, current, rule)
        except RuleError as error:
            form.errors[field_of(error)] = _sentence(error.reason)
            return await _editor(request, form, current.workspace_id, rule=current, status_code=400)
        return _back("saved", stored.name)

    @get("/{rule_id:str}/delete")
    async def confirm_delete_alert_rule(self, request: AnyRequest, rule_id: str) -> Response[Any]:
        rule = await visible_rule(request, rule_id)
        access.require_write(request, rule.workspace_id)
        counts = await open_counts(gateway_of(request).engine, [rule.id])
        return await page(
            request,
            "alerts/rules_delete.html",
            nav_active=NAV,
            rule=rule,
            open=counts.get(rule.id, {}),
        )

    @post("/{rule_id:str}/delete", status_code=303)
    async def delete_alert_rule(self, request: AnyRequest, rule_id: str) -> Response[Any]:
        current = await visible_rule(request, rule_id)
        access.require_write(request, current.workspace_id)
        await operations.delete(request, current)
        return _back("deleted", current.name)

    @post("/{rule_id:str}/mute", status_code=303)
    async def mute_alert_rule(self, request: AnyRequest, rule_id: str) -> Response[Any]:
        return await _set_muted(request, rule_id, True)

    @post("/{rule_id:str}/unmute", status_code=303)
    async def unmute_alert_rule(self, request: AnyRequest, rule_id: str) -> Response[Any]:
        return await _set_muted(request, rule_id, False)


async def _set_muted(request: AnyRequest, rule_id: str, muted: bool) -> Response[Any]:
    current = await visible_rule(request, rule_id)
    access.require_write(request, current.workspace_id)
    await operations.mute(request, current, muted)
    return _back("muted" if muted else "unmuted", current.name)


def _back(done: str, name: str) -> Response[Any]:
    return Redirect(f"{BASE}?{urlencode({'done': done, 'name': name})}", status_code=303)

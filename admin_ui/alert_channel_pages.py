"""The console's channel pages under `/admin/alerts/channels`: the list (with each channel's
last delivery), a form per kind to create one, a channel's page (its settings and which secrets
are set, the edit form, a Test button whose result shows on the page, and its delivery log a
page at a time), and delete behind a confirmation.

Every change goes through the operations behind `/admin/api/alerts/channels`
(`admin_ui.alert_channels_api`): the same checks, messages (shown next to the field they
concern), 409 while a rule still notifies a channel, and audit entries. A secret typed in is
sealed before it is stored and never shown again, not even in the form that was refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect

from admin_ui import alerts_access as access
from admin_ui.alert_channel_forms import (
    KIND_FORMS,
    KindForm,
    channel_body,
    empty_values,
    field_of,
    removals,
    stored_values,
    text_fields,
)
from admin_ui.alert_channels_api import (
    channel_item,
    create_channel,
    remove_channel,
    send_test,
    update_channel,
    visible_channel,
)
from admin_ui.auth import workspace_scope
from admin_ui.console_auth import permission_denied, principal
from admin_ui.form_fields import FormState, problem_of, read_form
from admin_ui.page_params import DEFAULT_PAGE
from admin_ui.page_views import TimeView, time_view, workspace_choices, workspace_labels
from admin_ui.pages import ADMIN_PATH, page
from admin_ui.state import gateway_of
from admin_ui.workspace_operations import visible_workspace, visible_workspaces
from gateway.errors import GatewayError
from telemetry.alerts.channel_store import StoredChannel, list_channels
from telemetry.alerts.delivery_log import channel_deliveries, last_deliveries

AnyRequest = Request[Any, Any, Any]

NAV: Final = "alert-channels"
CHANNELS_PATH: Final = f"{ADMIN_PATH}/alerts/channels"


@dataclass(frozen=True, slots=True)
class SecretState:
    name: str
    label: str
    shown: str | None
    """A reference as written, `(sealed)`, or None when not set."""


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    id: str
    at: TimeView | None
    event: str
    alert_id: str
    status: str
    attempts: int
    reply: str
    error: str | None
    duration_ms: float


def _delivery_row(row: dict[str, Any]) -> DeliveryRow:
    reply = row["smtp_reply"] or ""
    if row["http_status"] is not None:
        reply = f"HTTP {row['http_status']}"
    return DeliveryRow(
        id=row["delivery_id"],
        at=time_view(row["at"]),
        event=row["event"],
        alert_id=row["instance_id"],
        status=row["status"],
        attempts=row["attempts"],
        reply=reply,
        error=row["error"],
        duration_ms=row["duration_ms"],
    )


def _secret_states(form: KindForm, item: dict[str, Any]) -> list[SecretState]:
    return [SecretState(f.name, f.label, item["secrets"].get(f.name)) for f in form.secrets]


def _kind_form(kind: str) -> KindForm:
    found = KIND_FORMS.get(kind)
    if found is None:
        raise access.bad("kind", f"must be one of {', '.join(KIND_FORMS)}")
    return found


def _place(form: FormState, error: GatewayError, kind_form: KindForm) -> None:
    where = field_of(error.param, kind_form)
    if error.param == "workspace":
        where = "workspace"
    form.errors[where] = problem_of(error) if where else error.message


class AlertChannelPages(Controller):
    path = "/alerts/channels"
    include_in_schema = False

    @get("/")
    async def list_channels_page(self, request: AnyRequest) -> Response[Any]:
        engine = gateway_of(request).engine
        workspace_ids = await access.readable_workspaces(request)
        stored = await list_channels(engine, workspace_ids)
        last = await last_deliveries(engine, [s.channel.id for s in stored])
        workspaces = await visible_workspaces(request)
        labels = workspace_labels(workspaces)
        rows = []
        for one in stored:
            item = channel_item(one)
            delivery = last.get(one.channel.id)
            label = labels.get(one.workspace_id)
            rows.append(
                {
                    "id": one.channel.id,
                    "name": one.channel.name,
                    "kind": one.channel.kind,
                    "kind_title": KIND_FORMS[one.channel.kind].title,
                    "workspace": label.slug if label else one.workspace_id,
                    "secrets": _secret_states(KIND_FORMS[one.channel.kind], item),
                    "last": None if delivery is None else _delivery_row(delivery),
                }
            )
        workspace = request.query_params.get("workspace", "")
        chosen = next(iter(workspace_ids)) if workspace_ids and len(workspace_ids) == 1 else None
        return await page(
            request,
            "alerts/channels.html",
            nav_active=NAV,
            workspace_rows=workspaces,
            rows=rows,
            kinds=list(KIND_FORMS.values()),
            workspace=workspace,
            can_create=access.can_write(request, chosen),
            show_workspace=len(labels) > 1 and not workspace,
            deleted=request.query_params.get("deleted", ""),
        )

    @get("/new")
    async def new_channel(self, request: AnyRequest) -> Response[Any]:
        kind = request.query_params.get("kind", "")
        workspace = request.query_params.get("workspace", "").strip()
        workspace_id = (
            (await visible_workspace(request, workspace)).workspace_id if workspace else None
        )
        if not access.can_write(request, workspace_id):
            raise permission_denied(principal(request), "alerts.write")
        if not kind:
            return await page(
                request,
                "alerts/channel_kind.html",
                nav_active=NAV,
                kinds=list(KIND_FORMS.values()),
                workspace=workspace,
            )
        kind_form = _kind_form(kind)
        values = empty_values(kind_form)
        values["workspace"] = workspace
        return await _new_page(request, kind_form, FormState(values))

    @post("/new", status_code=200)
    async def create_channel_page(self, request: AnyRequest) -> Response[Any]:
        submitted = await request.form()
        kind_form = _kind_form(str(submitted.get("kind", "")))
        values = read_form(submitted, (*text_fields(kind_form), "workspace"))
        form = FormState(values)
        try:
            body = channel_body(kind_form, values)
            workspace = values["workspace"].strip()
            if workspace:
                body["workspace"] = workspace
            item = await create_channel(request, body)
        except GatewayError as error:
            if error.status in (403, 404):
                raise
            _place(form, error, kind_form)
            _forget_secrets(form, kind_form)
            return await _new_page(request, kind_form, form, status_code=error.status)
        return Redirect(f"{CHANNELS_PATH}/{item['id']}?saved=created", status_code=303)

    @get("/{channel_id:str}")
    async def channel_detail(self, request: AnyRequest, channel_id: str) -> Response[Any]:
        current = await visible_channel(request, channel_id)
        kind_form = KIND_FORMS[current.channel.kind]
        values = stored_values(kind_form, current.channel.name, current.channel.settings)
        return await _detail_page(request, current, FormState(values))

    @post("/{channel_id:str}", status_code=303)
    async def update_channel_page(self, request: AnyRequest, channel_id: str) -> Response[Any]:
        current = await visible_channel(request, channel_id)
        access.require_write(request, current.workspace_id)
        kind_form = KIND_FORMS[current.channel.kind]
        submitted = await request.form()
        values = read_form(submitted, text_fields(kind_form))
        removed = frozenset(
            name.removeprefix("remove_") for name in removals(kind_form) if submitted.get(name)
        )
        form = FormState(values)
        try:
            body = channel_body(kind_form, values, removed, current.channel.settings)
            await update_channel(request, current, body)
        except GatewayError as error:
            if error.status in (403, 404):
                raise
            _place(form, error, kind_form)
            _forget_secrets(form, kind_form)
            return await _detail_page(request, current, form, status_code=error.status)
        return Redirect(f"{CHANNELS_PATH}/{channel_id}?saved=updated", status_code=303)

    @post("/{channel_id:str}/test", status_code=200)
    async def test_channel(self, request: AnyRequest, channel_id: str) -> Response[Any]:
        current = await visible_channel(request, channel_id)
        result = await send_test(request, current)
        kind_form = KIND_FORMS[current.channel.kind]
        values = stored_values(kind_form, current.channel.name, current.channel.settings)
        return await _detail_page(request, current, FormState(values), test_result=result)

    @get("/{channel_id:str}/delete")
    async def confirm_delete(self, request: AnyRequest, channel_id: str) -> Response[Any]:
        current = await visible_channel(request, channel_id)
        access.require_write(request, current.workspace_id)
        return await _delete_page(request, current)

    @post("/{channel_id:str}/delete", status_code=303)
    async def delete_channel_page(self, request: AnyRequest, channel_id: str) -> Response[Any]:
        current = await visible_channel(request, channel_id)
        try:
            await remove_channel(request, current)
        except GatewayError as error:
            if error.status != 409:
                raise
            return await _delete_page(request, current, problem=error.message, status_code=409)
        return Redirect(f"{CHANNELS_PATH}?deleted={current.channel.name[:80]}", status_code=303)


def _forget_secrets(form: FormState, kind_form: KindForm) -> None:
    """A refused form is shown again without the secrets typed into it."""
    for field in kind_form.secrets:
        form.values[f"secret_{field.name}"] = ""


async def _new_page(
    request: AnyRequest, kind_form: KindForm, form: FormState, *, status_code: int = 200
) -> Response[Any]:
    choices: list[tuple[str, str]] = []
    if workspace_scope(request) is None or len(principal(request).roles) > 1:
        choices = workspace_choices(
            [
                w
                for w in await visible_workspaces(request)
                if access.can_write(request, w.workspace_id)
            ]
        )
    return await page(
        request,
        "alerts/channel_new.html",
        nav_active=NAV,
        status_code=status_code,
        kind_form=kind_form,
        form=form,
        workspace_choices=choices,
    )


async def _detail_page(
    request: AnyRequest,
    current: StoredChannel,
    form: FormState,
    *,
    status_code: int = 200,
    test_result: dict[str, Any] | None = None,
) -> Response[Any]:
    engine = gateway_of(request).engine
    cursor = access.query_id(request, "cursor")
    log = await channel_deliveries(
        engine, current.channel.id, current.workspace_id, cursor=cursor, limit=DEFAULT_PAGE
    )
    deliveries = [_delivery_row(row) for row in log.rows]
    kind_form = KIND_FORMS[current.channel.kind]
    item = channel_item(current)
    labels = workspace_labels(await visible_workspaces(request))
    label = labels.get(current.workspace_id)
    base = f"{CHANNELS_PATH}/{current.channel.id}"
    return await page(
        request,
        "alerts/channel_detail.html",
        nav_active=NAV,
        status_code=status_code,
        channel=item,
        kind_form=kind_form,
        workspace=label.slug if label else current.workspace_id,
        created=time_view(current.created_at),
        updated=time_view(current.updated_at),
        secrets=_secret_states(kind_form, item),
        other_settings=sorted(
            (name, value)
            for name, value in current.channel.settings.items()
            if name not in {field.name for field in kind_form.settings}
        ),
        form=form,
        can_write=access.can_write(request, current.workspace_id),
        saved=request.query_params.get("saved", ""),
        test_result=test_result,
        test_started=_started(test_result),
        deliveries=deliveries,
        older_url=f"{base}?cursor={deliveries[-1].id}" if log.has_more and deliveries else None,
        newest_url=base if cursor else None,
    )


def _started(result: dict[str, Any] | None) -> TimeView | None:
    if result is None or not result.get("started_at"):
        return None
    return time_view(datetime.fromisoformat(str(result["started_at"]).replace("Z", "+00:00")))


async def _delete_page(
    request: AnyRequest, current: StoredChannel, *, problem: str = "", status_code: int = 200
) -> Response[Any]:
    return await page(
        request,
        "alerts/channel_delete.html",
        nav_active=NAV,
        status_code=status_code,
        channel=channel_item(current),
        problem=problem,
    )

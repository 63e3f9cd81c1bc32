"""The console's silences pages under `/admin/alerts/silences`: the active, pending and expired
silences with their matchers, times, creator and comment; a form to make one; an Expire button.

The form can be filled from the URL, so another page links straight to a silence of what it
shows: `/admin/alerts/silences/new?matcher=model%3Dgpt-4o&matcher=alertname%3DError%20rate`
(one `matcher` per line; also `duration`, `ends_at`, `comment`, `workspace`). Pages read and
write through the functions behind `/admin/api/alerts/silences`, so they refuse what the API
refuses, with its message next to the field."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import quote

from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect

from admin_ui.alert_silences_api import end_silence, make_silence, silence_filter
from admin_ui.auth import workspace_scope
from admin_ui.console_auth import principal
from admin_ui.form_fields import FormState, FormValues, read_form
from admin_ui.page_views import workspace_choices, workspace_labels
from admin_ui.pages import page
from admin_ui.state import gateway_of
from admin_ui.workspace_operations import visible_workspaces
from gateway.errors import GatewayError
from telemetry.alerts.silence import Silence
from telemetry.alerts.silence_store import SilenceFilter, list_silences

AnyRequest = Request[Any, Any, Any]

NAV: Final = "alert-silences"
PATH: Final = "/admin/alerts/silences"
TEXT_FIELDS: Final = ("matchers", "duration", "starts_at", "ends_at", "comment", "workspace")
DEFAULT_DURATION: Final = "2h"
EXPIRED_PAGE: Final = 20
OPEN_PAGE: Final = 200


@dataclass(frozen=True, slots=True)
class SilenceRow:
    id: str
    workspace: str
    matchers: list[str]
    starts_at: datetime
    ends_at: datetime
    time_left: str
    created_by: str
    created_at: datetime
    comment: str
    can_expire: bool


def span_text(delta: timedelta) -> str:
    """A time left as people read it: `45 s`, `12 min`, `1 h 30 min`, `3 d 4 h`."""
    seconds = max(int(delta.total_seconds()), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min" if minutes else f"{seconds} s"


def _row(
    request: AnyRequest, silence: Silence, labels: dict[str, str], now: datetime
) -> SilenceRow:
    state = silence.state_at(now)
    if state == "active":
        left = span_text(silence.ends_at - now)
    elif state == "pending":
        left = f"starts in {span_text(silence.starts_at - now)}"
    else:
        left = "ended"
    return SilenceRow(
        id=silence.silence_id,
        workspace=labels.get(silence.workspace_id, silence.workspace_id),
        matchers=[matcher.text() for matcher in silence.matchers],
        starts_at=silence.starts_at,
        ends_at=silence.ends_at,
        time_left=left,
        created_by=silence.created_by,
        created_at=silence.created_at,
        comment=silence.comment,
        can_expire=state != "expired"
        and principal(request).can("alerts.write", silence.workspace_id),
    )


def _new_values(request: AnyRequest) -> FormValues:
    params = request.query_params
    return {
        "matchers": "\n".join(params.getall("matcher", [])),
        "duration": params.get("duration", DEFAULT_DURATION) if not params.get("ends_at") else "",
        "starts_at": "",
        "ends_at": params.get("ends_at", ""),
        "comment": params.get("comment", ""),
        "workspace": params.get("workspace", ""),
    }


def silence_body(values: FormValues) -> tuple[dict[str, Any], list[int]]:
    """The API body of the form's values, and the line number of each matcher (blank lines are
    skipped). An end time wins over the duration the form starts with."""
    lines = [
        (number, line.strip())
        for number, line in enumerate(str(values["matchers"]).splitlines(), 1)
        if line.strip()
    ]
    ends_at = str(values["ends_at"]).strip()
    body: dict[str, Any] = {
        "matchers": [line for _, line in lines],
        "comment": values["comment"],
        "starts_at": str(values["starts_at"]).strip() or None,
        "ends_at": ends_at or None,
        "duration": None if ends_at else (str(values["duration"]).strip() or None),
    }
    workspace = str(values["workspace"]).strip()
    if workspace:
        body["workspace"] = workspace
    return body, [number for number, _ in lines]


def form_error(error: GatewayError, lines: list[int]) -> tuple[str, str]:
    """(field, message) of the API's refusal on the form: `matchers[2]` is the matchers box,
    told as the line it was typed on."""
    param = error.param or ""
    message = error.message.removeprefix("The silence is not valid: ")
    message = message.removeprefix(f"{param}: ") if param else message
    field = param.split("[")[0].split(".")[0]
    if field == "matchers" and "[" in param:
        index = int(param.split("[")[1].split("]")[0])
        if index < len(lines):
            message = f"Line {lines[index]}: {message}"
    if field not in TEXT_FIELDS:
        field = ""
    return field, message[:1].upper() + message[1:]


async def _form_page(request: AnyRequest, form: FormState, status_code: int = 200) -> Response[Any]:
    choices: list[tuple[str, str]] = []
    if workspace_scope(request) is None:
        choices = workspace_choices(await visible_workspaces(request))
    return await page(
        request,
        "alerts/silences_new.html",
        nav_active=NAV,
        status_code=status_code,
        form=form,
        workspace_choices=choices,
    )


class AlertSilencePages(Controller):
    path = "/alerts/silences"
    include_in_schema = False

    @get("/")
    async def list_silences_page(self, request: AnyRequest) -> Response[Any]:
        engine = gateway_of(request).engine
        base = await silence_filter(request)
        now = datetime.now(UTC)
        labels = {
            key: label.name
            for key, label in workspace_labels(await visible_workspaces(request)).items()
        }
        sections = {}
        more_expired = False
        for state in ("active", "pending", "expired"):
            limit = EXPIRED_PAGE if state == "expired" else OPEN_PAGE
            query = SilenceFilter(
                base.workspace_ids,
                state,
                base.cursor if state == "expired" else None,
                limit,
            )
            found, more = await list_silences(engine, query, now)
            sections[state] = [_row(request, silence, labels, now) for silence in found]
            if state == "expired":
                more_expired = more
        expired = sections["expired"]
        workspace = request.query_params.get("workspace", "")
        older = f"{PATH}?cursor={expired[-1].id}" if more_expired and expired else ""
        if older and workspace:
            older += f"&workspace={quote(workspace)}"
        return await page(
            request,
            "alerts/silences.html",
            nav_active=NAV,
            sections=sections,
            older_url=older,
            paged=base.cursor is not None,
            can_create=any(
                principal(request).can("alerts.write", ws) for ws in principal(request).roles
            )
            or principal(request).is_operator,
            notice=request.query_params.get("done", ""),
        )

    @get("/new")
    async def new_silence_page(self, request: AnyRequest) -> Response[Any]:
        return await _form_page(request, FormState(_new_values(request)))

    @post("/new", status_code=303)
    async def create_silence_page(self, request: AnyRequest) -> Response[Any]:
        values = read_form(await request.form(), TEXT_FIELDS)
        body, lines = silence_body(values)
        try:
            await make_silence(request, body)
        except GatewayError as error:
            if error.status not in (400, 404):
                raise
            field, message = form_error(error, lines)
            return await _form_page(request, FormState(values, {field: message}), status_code=400)
        return Redirect(f"{PATH}?done=created", status_code=303)

    @post("/{silence_id:str}/expire", status_code=303)
    async def expire_silence_page(self, request: AnyRequest, silence_id: str) -> Response[Any]:
        try:
            await end_silence(request, silence_id)
        except GatewayError as error:
            if error.status != 409:
                raise
        return Redirect(f"{PATH}?done=expired", status_code=303)

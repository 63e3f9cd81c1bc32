"""`/admin/api/alerts/silences`: silences (label matchers and a time range over which matching
alerts are not notified), listed by state newest first a page at a time, read, made and expired
early. Each change is written to the audit log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final, cast

from litestar import Controller, Request, get, post

from admin_ui import alerts_access as access
from admin_ui.console_auth import principal
from admin_ui.openapi import Query, described, object_schema, text
from admin_ui.page_params import DEFAULT_PAGE, MAX_PAGE, choice, page_limit
from admin_ui.serialise import iso_time
from admin_ui.state import gateway_of
from gateway.errors import GatewayError, invalid_request
from telemetry.alerts.silence import OPS, Silence, SilenceError
from telemetry.alerts.silence_parsing import FIELDS, parse_silence
from telemetry.alerts.silence_store import (
    STATES,
    AlreadyExpired,
    SilenceFilter,
    State,
    create_silence,
    expire_silence,
    get_silence,
    list_silences,
)

AnyRequest = Request[Any, Any, Any]

READ_ONLY: Final = ("object", "id", "workspace_id", "state", "created_by", "created_at")
_MATCHER: Final = {
    "oneOf": [
        text(description="name=value, name!=value, name=~regex or name!~regex"),
        object_schema(
            {"label": text(100), "op": {"enum": list(OPS)}, "value": text(1000)},
            required=("label", "value"),
            closed=True,
        ),
    ]
}
CREATE_SCHEMA: Final = object_schema(
    {
        "matchers": {"type": "array", "items": _MATCHER, "minItems": 1, "maxItems": 20},
        "starts_at": text(description="ISO 8601; default now"),
        "ends_at": text(description="ISO 8601; or give duration"),
        "duration": {"type": ["integer", "string"], "description": "seconds, or 90m, 2h, 1d"},
        "comment": text(2000),
        "workspace": text(),
    },
    required=("matchers", "comment"),
)
_ID_PATH: Final = (Query("silence_id", "The silence's id.", text(32)),)


def silence_item(silence: Silence, now: datetime | None = None) -> dict[str, Any]:
    return {
        "object": "alert_silence",
        "id": silence.silence_id,
        "workspace_id": silence.workspace_id,
        "state": silence.state_at(now or datetime.now(UTC)),
        "matchers": [matcher.data() for matcher in silence.matchers],
        "starts_at": iso_time(silence.starts_at),
        "ends_at": iso_time(silence.ends_at),
        "comment": silence.comment,
        "created_by": silence.created_by,
        "created_at": iso_time(silence.created_at),
    }


def silence_error(error: SilenceError) -> GatewayError:
    return invalid_request(
        f"The silence is not valid: {error.field}: {error.reason}",
        param=error.field,
        code="invalid_silence",
    )


async def visible_silence(request: AnyRequest, silence_id: str) -> Silence:
    found = None
    if access.is_id(silence_id):
        found = await get_silence(gateway_of(request).engine, silence_id)
    if found is None or not access.visible(request, found.workspace_id):
        raise access.not_found("silence", silence_id, "silence_id")
    return found


async def silence_filter(request: AnyRequest) -> SilenceFilter:
    state = choice("state", request.query_params.get("state"), STATES)
    return SilenceFilter(
        workspace_ids=await access.readable_workspaces(request),
        state=cast(State | None, state),
        cursor=access.query_id(request, "cursor"),
        limit=page_limit(request),
    )


async def make_silence(request: AnyRequest, body: dict[str, Any]) -> Silence:
    """A silence from a body (the API's or the console form's), stored and audited."""
    workspace_id = await access.target_workspace(request, body.pop("workspace", None))
    try:
        silence = parse_silence(
            body,
            workspace_id=workspace_id,
            created_by=principal(request).name,
            now=datetime.now(UTC),
        )
    except SilenceError as error:
        raise silence_error(error) from None
    await create_silence(gateway_of(request).engine, silence)
    await access.audit(
        request,
        "silence.create",
        ("silence", silence.silence_id),
        workspace_id,
        after=silence_item(silence),
    )
    return silence


async def end_silence(request: AnyRequest, silence_id: str) -> Silence:
    """Expire a visible silence now, audited; a 409 when it has already ended."""
    current = await visible_silence(request, silence_id)
    access.require_write(request, current.workspace_id)
    try:
        expired = await expire_silence(
            gateway_of(request).engine, current.silence_id, datetime.now(UTC)
        )
    except AlreadyExpired:
        raise access.conflict("The silence has already expired.") from None
    await access.audit(
        request,
        "silence.expire",
        ("silence", silence_id),
        current.workspace_id,
        before={"ends_at": iso_time(current.ends_at)},
        after={"ends_at": iso_time(expired.ends_at)},
    )
    return expired


class AlertSilenceController(Controller):
    path = "/alerts/silences"

    @get(
        "/",
        operation_class=described(
            query=(
                Query("workspace", "Only this workspace's silences (id or slug).", text()),
                Query("state", "Only silences in this state.", {"enum": list(STATES)}),
                Query("cursor", "The previous page's next_cursor.", text(32)),
                Query(
                    "limit",
                    f"Silences per page, 1 to {MAX_PAGE} (default {DEFAULT_PAGE}).",
                    {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
                ),
            )
        ),
    )
    async def list_alert_silences(self, request: AnyRequest) -> dict[str, Any]:
        """Silences of the caller's workspaces (an operator: all), newest first: `active` (in
        force), `pending` (starting later) or `expired`; pages follow each other by `cursor`."""
        now = datetime.now(UTC)
        found, more = await list_silences(
            gateway_of(request).engine, await silence_filter(request), now
        )
        return {
            "object": "list",
            "data": [silence_item(silence, now) for silence in found],
            "has_more": more,
            "next_cursor": found[-1].silence_id if more and found else None,
        }

    @get("/{silence_id:str}", operation_class=described(path=_ID_PATH))
    async def get_alert_silence(self, request: AnyRequest, silence_id: str) -> dict[str, Any]:
        return silence_item(await visible_silence(request, silence_id))

    @post("/", status_code=201, operation_class=described(body=CREATE_SCHEMA))
    async def create_alert_silence(self, request: AnyRequest) -> dict[str, Any]:
        """A new silence in `workspace` (the caller's own when left out): `matchers`, an end as
        `ends_at` or `duration` (at most 90 days), `starts_at` (default now) and a `comment`."""
        body = await access.body_fields(request, (*FIELDS, "workspace"), READ_ONLY)
        return silence_item(await make_silence(request, body))

    @post(
        "/{silence_id:str}/expire",
        status_code=200,
        operation_class=described(path=_ID_PATH, conflict=True),
    )
    async def expire_alert_silence(self, request: AnyRequest, silence_id: str) -> dict[str, Any]:
        """End the silence now (a pending one never starts). 409 when it has already expired."""
        return silence_item(await end_silence(request, silence_id))

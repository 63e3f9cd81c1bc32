"""`/admin/api/alerts/instances`: alerts (one instance per episode of a rule's group), newest
first a page at a time; one with its timeline of events and its deliveries; acknowledged, or
resolved by hand. Both are written to the instance's events and to the audit log."""

from __future__ import annotations

from typing import Any, Final

from litestar import Controller, Request, get, post

from admin_ui import alerts_access as access
from admin_ui.console_auth import principal
from admin_ui.openapi import Query, described, text
from admin_ui.page_params import DEFAULT_PAGE, MAX_PAGE, choice, page_limit, query_time
from admin_ui.serialise import iso_time
from admin_ui.state import gateway_of
from telemetry.alerts.instance_history import (
    OPEN_STATES,
    STATES,
    InstanceFilter,
    NotOpen,
    acknowledge,
    get_instance,
    history_of,
    list_instances,
    resolve_by_hand,
)

AnyRequest = Request[Any, Any, Any]

SEVERITIES: Final = ("critical", "warning")
_ID_PATH: Final = (Query("instance_id", "The alert instance's id.", text(32)),)
_HIDDEN: Final = frozenset({"instance_id", "event_id", "delivery_id"})


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    return {
        name: iso_time(value) if hasattr(value, "isoformat") else value
        for name, value in row.items()
        if name not in _HIDDEN
    }


def instance_item(row: dict[str, Any]) -> dict[str, Any]:
    return {"object": "alert_instance", "id": row["instance_id"], **_shown(row)}


async def visible_instance(request: AnyRequest, instance_id: str) -> dict[str, Any]:
    found = None
    if access.is_id(instance_id):
        found = await get_instance(gateway_of(request).engine, instance_id)
    if found is None or not access.visible(request, found["workspace_id"]):
        raise access.not_found("instance", instance_id, "instance_id")
    return found


async def _filter(request: AnyRequest) -> InstanceFilter:
    state = choice("state", request.query_params.get("state"), STATES)
    severity = choice("severity", request.query_params.get("severity"), SEVERITIES)
    return InstanceFilter(
        workspace_ids=await access.readable_workspaces(request),
        state=state,
        rule_id=access.query_id(request, "rule"),
        severity=severity,
        since=query_time(request, "since"),
        cursor=access.query_id(request, "cursor"),
        limit=page_limit(request),
    )


async def _detail(request: AnyRequest, row: dict[str, Any]) -> dict[str, Any]:
    events, deliveries = await history_of(gateway_of(request).engine, row["instance_id"])
    return {
        **instance_item(row),
        "events": [{"id": event["event_id"], **_shown(event)} for event in events],
        "deliveries": [{"id": sent["delivery_id"], **_shown(sent)} for sent in deliveries],
    }


async def _open_for_change(request: AnyRequest, instance_id: str) -> dict[str, Any]:
    current = await visible_instance(request, instance_id)
    access.require_write(request, current["workspace_id"])
    if current["state"] not in OPEN_STATES:
        raise access.conflict(f"The alert has already ended ({current['state']}).")
    return current


async def acknowledge_alert(request: AnyRequest, instance_id: str) -> None:
    """Acknowledge an open alert as the request's principal, with its audit entry (the API and
    the console's button alike); 409 when it has ended."""
    current = await _open_for_change(request, instance_id)
    await acknowledge(gateway_of(request).engine, current, principal(request).name)
    await access.audit(
        request, "alert.acknowledge", ("alert_instance", instance_id), current["workspace_id"]
    )


async def resolve_alert(request: AnyRequest, instance_id: str) -> None:
    """Resolve an open alert by hand, with its audit entry; 409 when it has ended."""
    current = await _open_for_change(request, instance_id)
    try:
        await resolve_by_hand(gateway_of(request).engine, current, principal(request).name)
    except NotOpen:
        raise access.conflict("The alert has already ended.") from None
    await access.audit(
        request,
        "alert.resolve",
        ("alert_instance", instance_id),
        current["workspace_id"],
        before={"state": current["state"]},
        after={"state": "resolved"},
    )


class AlertInstanceController(Controller):
    path = "/alerts/instances"

    @get(
        "/",
        operation_class=described(
            query=(
                Query("workspace", "Only this workspace's alerts (id or slug).", text()),
                Query("state", "Only alerts in this state.", {"enum": list(STATES)}),
                Query("rule", "Only this rule's alerts (its id).", text(32)),
                Query("severity", "Only alerts of this severity.", {"enum": list(SEVERITIES)}),
                Query("since", "Alerts started at or after this time (ISO 8601).", text()),
                Query("cursor", "The previous page's next_cursor.", text(32)),
                Query(
                    "limit",
                    f"Alerts per page, 1 to {MAX_PAGE} (default {DEFAULT_PAGE}).",
                    {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
                ),
            )
        ),
    )
    async def list_alert_instances(self, request: AnyRequest) -> dict[str, Any]:
        """Alerts of the caller's workspaces (an operator: all), newest first; pages follow
        each other by `cursor`."""
        rows, more = await list_instances(gateway_of(request).engine, await _filter(request))
        return {
            "object": "list",
            "data": [instance_item(row) for row in rows],
            "has_more": more,
            "next_cursor": rows[-1]["instance_id"] if more and rows else None,
        }

    @get("/{instance_id:str}", operation_class=described(path=_ID_PATH))
    async def get_alert_instance(self, request: AnyRequest, instance_id: str) -> dict[str, Any]:
        """The alert with its `events` (state changes, acknowledgements) and `deliveries`,
        oldest first."""
        return await _detail(request, await visible_instance(request, instance_id))

    @post(
        "/{instance_id:str}/ack",
        status_code=200,
        operation_class=described(path=_ID_PATH, conflict=True),
    )
    async def acknowledge_alert_instance(
        self, request: AnyRequest, instance_id: str
    ) -> dict[str, Any]:
        """Acknowledge an open alert: someone is on it. 409 when it has ended."""
        await acknowledge_alert(request, instance_id)
        return await _detail(request, await visible_instance(request, instance_id))

    @post(
        "/{instance_id:str}/resolve",
        status_code=200,
        operation_class=described(path=_ID_PATH, conflict=True),
    )
    async def resolve_alert_instance(self, request: AnyRequest, instance_id: str) -> dict[str, Any]:
        """End an open alert as resolved by hand (its condition may open a new one at the next
        evaluation). 409 when it has ended."""
        await resolve_alert(request, instance_id)
        return await _detail(request, await visible_instance(request, instance_id))

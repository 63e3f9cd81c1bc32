"""`/admin/api/alerts/rules`: alert rules, listed, read, created, replaced, deleted, muted and
unmuted, and previewed over the last 7 days before they are saved. A body is the rule as the config file writes it (`telemetry.alerts.rule_parsing`):
durations as seconds or `5m`, `channels` as channel ids of the rule's workspace. A rule that
fails its checks is a 400 naming the field; a name already used in the workspace a 409."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

import msgspec
from litestar import Controller, Request, Response, delete, get, post, put

from admin_ui import alert_rule_operations as operations
from admin_ui import alerts_access as access
from admin_ui.alert_rule_operations import rule_item
from admin_ui.openapi import Query, described, nullable, object_schema, strings, text
from admin_ui.state import gateway_of
from gateway.errors import GatewayError, invalid_request
from telemetry.alerts import AlertRule, RuleError, parse_rule
from telemetry.alerts.preview import preview_rule
from telemetry.alerts.preview_answer import preview_item
from telemetry.alerts.rule import COMPARISONS, CONDITIONS, NO_DATA
from telemetry.alerts.rule_parsing import FIELDS
from telemetry.alerts.rule_store import RuleNameTaken, get_rule, load_rules
from telemetry.ids import uuid7_hex

AnyRequest = Request[Any, Any, Any]

RULE_FIELDS: Final = tuple(FIELDS)
READ_ONLY: Final = ("object", "id", "workspace_id", "built_in", "managed_by")
_DURATION: Final = {"type": ["integer", "string"]}
_MAP_OF_STRINGS: Final = object_schema()
_MAP_OF_STRINGS["additionalProperties"] = {"type": "string"}
_FILTERS: Final = object_schema()
_FILTERS["additionalProperties"] = strings()
_NUMBER: Final = nullable({"type": "number"})
_PROPERTIES: Final = {
    "name": text(200),
    "metric": text(64),
    "kind": nullable(text(16)),
    "filters": _FILTERS,
    "group_by": strings(),
    "window": _DURATION,
    "condition": {"enum": list(CONDITIONS)},
    "compare_to": {"enum": list(COMPARISONS)},
    "warning": _NUMBER,
    "critical": _NUMBER,
    "for": _DURATION,
    "min_requests": {"type": "integer", "minimum": 0},
    "no_data": {"enum": list(NO_DATA)},
    "labels": _MAP_OF_STRINGS,
    "message": text(),
    "channels": strings(),
    "renotify": _DURATION,
    "notify_on_resolve": {"type": "boolean"},
    "muted": {"type": "boolean"},
}
CREATE_SCHEMA: Final = object_schema(
    {**_PROPERTIES, "workspace": text()}, required=("name", "metric")
)
UPDATE_SCHEMA: Final = object_schema(_PROPERTIES, required=("name", "metric"))
_ID_PATH: Final = (Query("rule_id", "The alert rule's id.", text(32)),)


async def visible_rule(request: AnyRequest, rule_id: str) -> AlertRule:
    found = None
    if access.is_id(rule_id):
        found = await get_rule(gateway_of(request).engine, rule_id)
    if found is None or not access.visible(request, found.workspace_id):
        raise access.not_found("rule", rule_id, "rule_id")
    return found


def _rule_error(error: RuleError) -> GatewayError:
    if isinstance(error, RuleNameTaken):
        return access.conflict(f"{error.reason[:1].upper()}{error.reason[1:]}.", "name")
    return invalid_request(
        f"The alert rule is not valid: {error.field}: {error.reason}",
        param=error.field,
        code="invalid_alert_rule",
    )


def _parsed(body: dict[str, Any], workspace_id: str, rule_id: str) -> AlertRule:
    try:
        return parse_rule(body, workspace_id=workspace_id, rule_id=rule_id)
    except RuleError as error:
        raise _rule_error(error) from None


class AlertRuleController(Controller):
    path = "/alerts/rules"

    @get(
        "/",
        operation_class=described(
            query=(Query("workspace", "Only this workspace's rules (id or slug).", text()),)
        ),
    )
    async def list_alert_rules(self, request: AnyRequest) -> dict[str, Any]:
        """The rules of the caller's workspaces (an operator: all), oldest first."""
        found = await load_rules(
            gateway_of(request).engine, workspace_ids=await access.readable_workspaces(request)
        )
        return {"object": "list", "data": [rule_item(rule) for rule in found]}

    @get("/{rule_id:str}", operation_class=described(path=_ID_PATH))
    async def get_alert_rule(self, request: AnyRequest, rule_id: str) -> dict[str, Any]:
        return rule_item(await visible_rule(request, rule_id))

    @post("/", status_code=201, operation_class=described(body=CREATE_SCHEMA, conflict=True))
    async def create_alert_rule(self, request: AnyRequest) -> dict[str, Any]:
        """A new rule in `workspace` (the caller's own when left out), in the config file's
        shape."""
        body = await access.body_fields(request, (*RULE_FIELDS, "workspace"), READ_ONLY)
        workspace_id = await access.target_workspace(request, body.pop("workspace", None))
        rule = _parsed(body, workspace_id, uuid7_hex())
        try:
            stored = await operations.create(request, rule)
        except RuleError as error:
            raise _rule_error(error) from None
        return rule_item(stored)

    @post("/preview", status_code=200, operation_class=described(body=CREATE_SCHEMA))
    async def preview_alert_rule(self, request: AnyRequest) -> dict[str, Any]:
        """How the rule in the body (not saved) would have behaved over the last 7 days: its
        metric per group at each evaluation step, the thresholds, the episodes it would have
        produced (replaying the live evaluation) and their totals."""
        body = await access.body_fields(request, (*RULE_FIELDS, "workspace"), READ_ONLY)
        workspace_id = await access.target_workspace(request, body.pop("workspace", None))
        rule = _parsed(body, workspace_id, "")
        try:
            preview = await preview_rule(gateway_of(request).engine, rule, datetime.now(UTC))
        except RuleError as error:
            raise _rule_error(error) from None
        return preview_item(preview)

    @put(
        "/{rule_id:str}",
        operation_class=described(body=UPDATE_SCHEMA, path=_ID_PATH, conflict=True),
    )
    async def replace_alert_rule(self, request: AnyRequest, rule_id: str) -> dict[str, Any]:
        """Replace the rule with the body (`muted` kept when left out)."""
        current = await visible_rule(request, rule_id)
        access.require_write(request, current.workspace_id)
        access.refuse_if_from_config("rule", current.managed_by)
        body = await access.body_fields(request, RULE_FIELDS, READ_ONLY)
        if body.get("muted") is None:
            body["muted"] = current.muted
        rule = msgspec.structs.replace(
            _parsed(body, current.workspace_id, current.id), built_in=current.built_in
        )
        try:
            stored = await operations.replace(request, current, rule)
        except RuleError as error:
            raise _rule_error(error) from None
        return rule_item(stored)

    @delete("/{rule_id:str}", status_code=204, operation_class=described(path=_ID_PATH))
    async def delete_alert_rule(self, request: AnyRequest, rule_id: str) -> Response[None]:
        """Delete the rule and its alerts' history (a built-in rule is not made again)."""
        current = await visible_rule(request, rule_id)
        access.require_write(request, current.workspace_id)
        await operations.delete(request, current)
        return Response(None, status_code=204)

    @post("/{rule_id:str}/mute", status_code=200, operation_class=described(path=_ID_PATH))
    async def mute_alert_rule(self, request: AnyRequest, rule_id: str) -> dict[str, Any]:
        """Mute the rule: still evaluated and recorded, never notified."""
        return await _set_muted(request, rule_id, True)

    @post("/{rule_id:str}/unmute", status_code=200, operation_class=described(path=_ID_PATH))
    async def unmute_alert_rule(self, request: AnyRequest, rule_id: str) -> dict[str, Any]:
        """Notify for the rule again."""
        return await _set_muted(request, rule_id, False)


async def _set_muted(request: AnyRequest, rule_id: str, muted: bool) -> dict[str, Any]:
    current = await visible_rule(request, rule_id)
    access.require_write(request, current.workspace_id)
    return rule_item(await operations.mute(request, current, muted))

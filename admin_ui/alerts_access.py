"""What the alert endpoints share: which workspaces a request reads, where a new rule or
channel goes, who may change one, reading bodies and page parameters, and the audit entry of
each change. Another workspace's rule, channel or alert is a 404, as if it did not exist."""

from __future__ import annotations

import re
from typing import Any, Final

from litestar import Request

from admin_ui.audit import record_change
from admin_ui.auth import workspace_scope
from admin_ui.console_auth import principal, require_permission
from admin_ui.page_params import bad
from admin_ui.rules import json_object
from admin_ui.state import gateway_of
from admin_ui.workspace_operations import fields_of, visible_workspace
from gateway.errors import GatewayError, clipped, invalid_request
from telemetry.alerts.config_items import MANAGED_BY_CONFIG
from telemetry.escaping import UNSTORABLE_PROBLEM, find_unstorable
from telemetry.schema import DEFAULT_WORKSPACE_ID

AnyRequest = Request[Any, Any, Any]

_ID: Final = re.compile(r"^[0-9a-f]{32}$")


def not_found(what: str, given: str, param: str) -> GatewayError:
    return GatewayError(
        404,
        f"No alert {what} with id '{clipped(given, 64)}'.",
        code=f"alert_{what}_not_found",
        param=param,
    )


def conflict(message: str, param: str | None = None) -> GatewayError:
    return GatewayError(409, message, code="alert_conflict", param=param)


def refuse_if_from_config(what: str, managed_by: str | None) -> None:
    """A 409 for a change to a rule or channel that the config file declares: the file is
    its only source, and the next start would undo the change."""
    if managed_by == MANAGED_BY_CONFIG:
        section = "alerts.rules" if what == "rule" else "alerts.channels"
        raise GatewayError(
            409,
            f"This alert {what} comes from the config file ({section}): change it there; "
            "the gateway applies the file when it starts.",
            code="alert_managed_by_config",
        )


def is_id(value: str) -> bool:
    return _ID.match(value) is not None


def visible(request: AnyRequest, workspace_id: str) -> bool:
    return principal(request).sees(workspace_id)


async def readable_workspaces(request: AnyRequest) -> frozenset[str] | None:
    """The workspaces a list reads: the `workspace` query parameter's (id or slug), else every
    one the caller sees (None: all)."""
    workspace = request.query_params.get("workspace")
    if workspace:
        return frozenset({(await visible_workspace(request, workspace)).workspace_id})
    return principal(request).workspace_ids


async def target_workspace(
    request: AnyRequest, given: Any, permission: str = "alerts.write"
) -> str:
    """The workspace a new rule or channel (or, with `reports.write`, report) goes to: the
    body's `workspace` (id or slug), else the request's own."""
    if given is not None and (not isinstance(given, str) or not given.strip()):
        raise bad("workspace", "must be a workspace id or slug")
    if given:
        workspace_id = (await visible_workspace(request, given)).workspace_id
    else:
        workspace_id = workspace_scope(request) or DEFAULT_WORKSPACE_ID
        if not visible(request, workspace_id):
            raise bad("workspace", "is required: name the workspace (id or slug)")
    require_permission(request, permission, workspace_id)
    return workspace_id


def require_write(request: AnyRequest, workspace_id: str) -> None:
    require_permission(request, "alerts.write", workspace_id)


def can_write(request: AnyRequest, workspace_id: str | None) -> bool:
    """Whether the request may change alerts of `workspace_id` (None: of some workspace), for
    a page deciding what to offer; the change itself checks again."""
    who = principal(request)
    if workspace_id is None:
        return who.is_operator or any(who.can("alerts.write", ws) for ws in who.roles)
    return who.can("alerts.write", workspace_id)


async def body_fields(
    request: AnyRequest, allowed: tuple[str, ...], read_only: tuple[str, ...]
) -> dict[str, Any]:
    """The body's fields this call takes; a 400 naming the first unknown or unstorable one."""
    body = fields_of(await json_object(request), allowed, read_only)
    where = find_unstorable(body, "")
    if where is not None:
        where = where or "body"
        raise invalid_request(f"'{where}' {UNSTORABLE_PROBLEM}.", param=where, code="invalid_value")
    return body


def query_id(request: AnyRequest, name: str) -> str | None:
    value = request.query_params.get(name)
    if value is not None and not is_id(value):
        raise bad(name, "must be an id as the API gives it (32 hexadecimal digits)")
    return value


async def audit(
    request: AnyRequest,
    action: str,
    target: tuple[str, str],
    workspace_id: str,
    before: Any = None,
    after: Any = None,
) -> None:
    """One audit row; `before` and `after` as the API shows them, so never with a secret."""
    who = principal(request)
    target_type, target_id = target
    await record_change(
        gateway_of(request).engine,
        actor=who,
        action=action,
        target_type=target_type,
        target_id=target_id,
        workspace_id=workspace_id,
        before=before,
        after=after,
        address=who.address,
    )

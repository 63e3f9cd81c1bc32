"""What can be done to saved dashboards through the admin API and the console: list, read,
create, copy, change, delete. Both call these functions, so the two never disagree on what is
visible, allowed or valid, and both leave the same audit entries.

Who sees what (`admin_ui.dashboards_store.Readers`): a dashboard of a workspace the caller cannot
see is a 404, and so is a private dashboard of someone else; operators see every one. Anyone
who sees a workspace may keep private dashboards in it. Sharing one with the workspace, and
changing or deleting a shared one made by someone else, takes `dashboards.write` there (a
workspace's admins and owners, its admin keys, operators); a dashboard's owner may always change
and delete it.

A body is the dashboard as `admin_ui.dashboard_model.Dashboard` reads it (`name`,
`description`, `panels`) with `shared`; a create may name its `workspace` (id or slug), or copy
a built-in dashboard or another dashboard with `copy_of`. Every problem is a 400 naming its path
(`panels[2].group_by`), and a change to a dashboard names the version it was made from (409 when
that is no longer the stored one).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import msgspec
from litestar import Request

from admin_ui.auth import workspace_scope
from admin_ui.console_auth import principal
from admin_ui.dashboard_model import Dashboard, Problem, problems
from admin_ui.dashboards_store import (
    DashboardConflict,
    DashboardNotFound,
    DashboardStore,
    Readers,
    StoredDashboard,
    panels_json,
)
from admin_ui.principals import Principal
from admin_ui.rules import MAX_VERSION
from admin_ui.serialise import iso_time
from admin_ui.state import gateway_of
from admin_ui.workspace_operations import fields_of, visible_workspace
from gateway.errors import GatewayError, clipped, invalid_request
from telemetry.escaping import UNSTORABLE_PROBLEM, find_unstorable
from telemetry.schema import DEFAULT_WORKSPACE_ID

AnyRequest = Request[Any, Any, Any]

DASHBOARD_FIELDS: Final = ("name", "description", "panels")
CREATE_FIELDS: Final = (*DASHBOARD_FIELDS, "shared", "workspace", "copy_of")
UPDATE_FIELDS: Final = (*DASHBOARD_FIELDS, "shared", "version")
READ_ONLY_FIELDS: Final = (
    "object",
    "id",
    "workspace_id",
    "owner_user_id",
    "created_at",
    "updated_at",
    "editable",
)
MAX_DESCRIPTION: Final = 2000
MAX_FILTER_VALUE: Final = 200
MAX_FILTERS: Final = 10
MAX_TOP: Final = 100
MAX_STORED_BYTES: Final = 128 * 1024
"""The most a dashboard's panels may take once encoded as JSON."""
_DASHBOARD_ID: Final = re.compile(r"^[0-9a-f]{32}$")
_AT: Final = re.compile(r" - at `\$\.?(.*)`$")


# --- errors -------------------------------------------------------------------------------------


def dashboard_not_found(dashboard_id: str, param: str = "dashboard_id") -> GatewayError:
    return GatewayError(
        404,
        f"No dashboard with id '{clipped(dashboard_id, 64)}'.",
        code="dashboard_not_found",
        param=param,
    )


class InvalidDashboard(GatewayError):
    """A 400 `invalid_dashboard` that keeps each problem, for the console to show next to the
    field it is about."""

    def __init__(self, found: list[Problem]) -> None:
        listed = "; ".join(f"{problem.path}: {problem.message}" for problem in found)
        super().__init__(
            400,
            f"The dashboard is not valid: {listed}.",
            param=found[0].path,
            code="invalid_dashboard",
        )
        self.problems = list(found)


def _conflict(error: DashboardConflict) -> GatewayError:
    text = str(error)
    return GatewayError(409, f"{text[:1].upper()}{text[1:]}.", code="dashboard_conflict")


# --- reading bodies -----------------------------------------------------------------------------


def _path_of(error: msgspec.ValidationError) -> tuple[str, str]:
    """msgspec's message as (path, what is wrong): `$.panels[0].filters[...]` is
    `panels[0].filters`; an unknown or missing field's path ends with the field."""
    text = str(error)
    match = _AT.search(text)
    path = match.group(1).replace("[...]", "") if match else ""
    message = text[: match.start()] if match else text
    field = re.match(r"Object (contains unknown|missing required) field `(.{0,100})`", message)
    if field:
        path = f"{path}.{field.group(2)}" if path else field.group(2)
        message = "unknown field" if field.group(1) == "contains unknown" else "is required"
    return path or "body", message[:1].lower() + message[1:]


def storage_problems(dashboard: Dashboard) -> list[Problem]:
    """What `problems` leaves to storage: bounds on the text and sizes kept."""
    found: list[Problem] = []
    if len(dashboard.description) > MAX_DESCRIPTION:
        found.append(Problem("description", f"must be at most {MAX_DESCRIPTION} characters"))
    for n, panel in enumerate(dashboard.panels):
        path = f"panels[{n}]"
        if len(panel.group_by) > 2:
            found.append(Problem(f"{path}.group_by", "takes at most 2 dimensions"))
        if panel.top is not None and not 1 <= panel.top <= MAX_TOP:
            found.append(Problem(f"{path}.top", f"must be from 1 to {MAX_TOP}"))
        if len(panel.filters) > MAX_FILTERS:
            found.append(Problem(f"{path}.filters", f"at most {MAX_FILTERS} dimensions"))
        if any(len(value) > MAX_FILTER_VALUE for v in panel.filters.values() for value in v):
            found.append(
                Problem(f"{path}.filters", f"a value is at most {MAX_FILTER_VALUE} characters")
            )
    if not found and len(msgspec.json.encode(panels_json(dashboard))) > MAX_STORED_BYTES:
        found.append(Problem("panels", f"take more than {MAX_STORED_BYTES // 1024} KiB"))
    return found


def checked_dashboard(dashboard: Dashboard) -> Dashboard:
    """`dashboard` when it can be stored and shown, else `InvalidDashboard`."""
    found = list(dict.fromkeys(storage_problems(dashboard) + problems(dashboard)))
    if found:
        raise InvalidDashboard(sorted(found, key=_position))
    return dashboard


def _position(problem: Problem) -> int:
    """Where a problem is in the dashboard: its own fields first, then panel by panel."""
    panel = re.match(r"panels\[(\d+)\]", problem.path)
    return int(panel.group(1)) if panel else -1


def dashboard_of(body: Mapping[str, Any]) -> Dashboard:
    """The dashboard a body describes, checked."""
    fields = {name: body[name] for name in DASHBOARD_FIELDS if name in body}
    if "name" not in fields:
        raise invalid_request("'name' is required.", param="name", code="invalid_value")
    where = find_unstorable(fields, "")
    if where is not None:
        where = where or "body"
        raise invalid_request(f"'{where}' {UNSTORABLE_PROBLEM}.", param=where, code="invalid_value")
    try:
        dashboard = msgspec.convert(fields, Dashboard)
    except msgspec.ValidationError as error:
        path, message = _path_of(error)
        raise InvalidDashboard([Problem(path, message)]) from None
    return checked_dashboard(dashboard)


def _shared(body: Mapping[str, Any], default: bool) -> bool:
    value = body.get("shared", default)
    if not isinstance(value, bool):
        raise invalid_request(
            "'shared' must be true or false.", param="shared", code="invalid_value"
        )
    return value


def _version(value: Any, param: str) -> int:
    if isinstance(value, str) and value.strip().removeprefix("W/").strip('"').isdigit():
        digits = value.strip().removeprefix("W/").strip('"')
        value = int(digits) if len(digits) <= 10 else value
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_VERSION:
        raise invalid_request(
            f"'{param}' must be the dashboard's version, a positive whole number.",
            param=param,
            code="invalid_value",
        )
    return value


def optional_version(request: AnyRequest, body: Mapping[str, Any] | None = None) -> int | None:
    """The version a change is made from, when named: the body's `version`, the `version`
    query parameter, or an `If-Match` header."""
    if body is not None and body.get("version") is not None:
        return _version(body["version"], "version")
    query = request.query_params.get("version")
    if query is not None:
        return _version(query, "version")
    header = request.headers.get("if-match")
    return None if header is None else _version(header, "If-Match")


def required_version(request: AnyRequest, body: Mapping[str, Any]) -> int:
    """The version a change is made from, which a replacement must name."""
    version = optional_version(request, body)
    if version is None:
        raise invalid_request(
            "Name the version you changed: 'version' in the body (as read) or an If-Match header.",
            param="version",
            code="version_required",
        )
    return version


# --- who may see and change what ----------------------------------------------------------------


def readers_of(who: Principal) -> Readers:
    return Readers(
        every_private=who.is_operator,
        user_id=who.user_id if who.kind == "user" else None,
        keys=who.kind == "key",
    )


def owns(who: Principal, stored: StoredDashboard) -> bool:
    if stored.owner_user_id is None:
        return who.kind == "key" and who.sees(stored.workspace_id)
    return who.kind == "user" and stored.owner_user_id == who.user_id


def may_change(who: Principal, stored: StoredDashboard) -> bool:
    if not who.sees(stored.workspace_id) or not readers_of(who).sees(stored):
        return False
    if owns(who, stored) or who.is_operator:
        return True
    return stored.shared and who.can("dashboards.write", stored.workspace_id)


def _require_change(who: Principal, stored: StoredDashboard) -> None:
    if not may_change(who, stored):
        raise _denied(
            "Only the dashboard's owner, or an admin or owner of its workspace, can change it; "
            "copy it to keep a version of your own."
        )


def _require_sharing(who: Principal, workspace_id: str) -> None:
    if not who.can("dashboards.write", workspace_id):
        raise _denied(
            "Sharing a dashboard with the workspace takes an admin or owner role there; keep it "
            "private instead.",
            param="shared",
        )


def _denied(message: str, param: str | None = None) -> GatewayError:
    return GatewayError(
        403, message, type="permission_error", code="permission_denied", param=param
    )


def dashboard_store_of(request: AnyRequest) -> DashboardStore:
    return DashboardStore(gateway_of(request).engine)


async def visible_dashboard(
    request: AnyRequest, dashboard_id: str, param: str = "dashboard_id"
) -> StoredDashboard:
    """The dashboard if this request's caller may see it, else a 404 (whether it exists or not)."""
    who = principal(request)
    if not _DASHBOARD_ID.match(dashboard_id):
        raise dashboard_not_found(dashboard_id, param)
    found = await dashboard_store_of(request).get(dashboard_id)
    if found is None or not who.sees(found.workspace_id) or not readers_of(who).sees(found):
        raise dashboard_not_found(dashboard_id, param)
    return found


async def visible_dashboards(request: AnyRequest, workspace: str | None) -> list[StoredDashboard]:
    """Every dashboard the caller sees, by name; of `workspace` (id or slug) only, when given."""
    who = principal(request)
    scope = who.workspace_ids
    if workspace:
        scope = frozenset({(await visible_workspace(request, workspace)).workspace_id})
    return await dashboard_store_of(request).list(scope, readers_of(who))


def dashboard_item(stored: StoredDashboard, who: Principal) -> dict[str, Any]:
    return {
        "object": "dashboard",
        "id": stored.dashboard_id,
        "workspace_id": stored.workspace_id,
        "owner_user_id": stored.owner_user_id,
        "name": stored.dashboard.name,
        "description": stored.dashboard.description,
        "panels": panels_json(stored.dashboard),
        "shared": stored.shared,
        "version": stored.version,
        "created_at": iso_time(stored.created_at),
        "updated_at": iso_time(stored.updated_at),
        "editable": may_change(who, stored),
    }


# --- changes ------------------------------------------------------------------------------------


async def _target_workspace(request: AnyRequest, workspace: Any, default: str | None) -> str:
    if workspace is not None and (not isinstance(workspace, str) or not workspace.strip()):
        raise invalid_request(
            "'workspace' must be a workspace id or slug.", param="workspace", code="invalid_value"
        )
    if workspace:
        return (await visible_workspace(request, workspace)).workspace_id
    return default or workspace_scope(request) or DEFAULT_WORKSPACE_ID


async def _copied(
    request: AnyRequest, source: Any, builtins: Mapping[str, Dashboard]
) -> tuple[Dashboard, str | None]:
    """The dashboard `copy_of` names (a built-in's key or name, or a visible dashboard's id)
    and, for a stored one, its workspace."""
    if not isinstance(source, str) or not source.strip():
        raise invalid_request(
            "'copy_of' must name a built-in dashboard or a dashboard's id.",
            param="copy_of",
            code="invalid_value",
        )
    wanted = source.strip().lower()
    for key, builtin in builtins.items():
        if wanted in (key.lower(), builtin.name.lower()):
            return builtin, None
    stored = await visible_dashboard(request, source.strip(), param="copy_of")
    return stored.dashboard, stored.workspace_id


async def create_dashboard(
    request: AnyRequest, raw: Mapping[str, Any], builtins: Mapping[str, Dashboard]
) -> StoredDashboard:
    """A new dashboard from a create body; with `copy_of`, the panels of that dashboard under
    the body's `name` (or "Copy of ...") and `description` (or the copied one's)."""
    who = principal(request)
    body = fields_of(dict(raw), CREATE_FIELDS, (*READ_ONLY_FIELDS, "version"))
    default_workspace: str | None = None
    if "copy_of" in body:
        if "panels" in body:
            raise invalid_request(
                "A copy takes the panels of the dashboard it copies; leave 'panels' out, or "
                "leave 'copy_of' out to give panels of your own.",
                param="panels",
                code="invalid_value",
            )
        source, default_workspace = await _copied(request, body["copy_of"], builtins)
        copied = msgspec.to_builtins(source)
        body = {
            **body,
            "name": body.get("name") or f"Copy of {source.name}"[:200],
            "description": body.get("description", copied.get("description", "")),
            "panels": copied.get("panels", []),
        }
    dashboard = dashboard_of(body)
    shared = _shared(body, False)
    workspace_id = await _target_workspace(request, body.get("workspace"), default_workspace)
    if not who.sees(workspace_id):
        raise invalid_request(
            f"No workspace '{workspace_id}'.", param="workspace", code="workspace_not_found"
        )
    if shared:
        _require_sharing(who, workspace_id)
    return await dashboard_store_of(request).create(
        workspace_id=workspace_id,
        owner_user_id=who.user_id if who.kind == "user" else None,
        dashboard=dashboard,
        shared=shared,
        actor=who.actor,
        address=who.address,
    )


async def update_dashboard(
    request: AnyRequest, dashboard_id: str, raw: Mapping[str, Any], version: int
) -> StoredDashboard:
    """The dashboard replaced by the body's (`shared` kept when the body leaves it out), made
    from `version`."""
    who = principal(request)
    current = await visible_dashboard(request, dashboard_id)
    body = fields_of(dict(raw), UPDATE_FIELDS, READ_ONLY_FIELDS)
    _require_change(who, current)
    dashboard = dashboard_of(body)
    shared = _shared(body, current.shared)
    if shared and not current.shared:
        _require_sharing(who, current.workspace_id)
    try:
        return await dashboard_store_of(request).update(
            current.dashboard_id,
            dashboard=dashboard,
            shared=shared,
            expected_version=version,
            actor=who.actor,
            address=who.address,
        )
    except DashboardNotFound:
        raise dashboard_not_found(dashboard_id) from None
    except DashboardConflict as error:
        raise _conflict(error) from None


async def delete_dashboard(
    request: AnyRequest, dashboard_id: str, version: int | None = None
) -> StoredDashboard:
    who = principal(request)
    current = await visible_dashboard(request, dashboard_id)
    _require_change(who, current)
    try:
        return await dashboard_store_of(request).delete(
            current.dashboard_id, expected_version=version, actor=who.actor, address=who.address
        )
    except DashboardNotFound:
        raise dashboard_not_found(dashboard_id) from None
    except DashboardConflict as error:
        raise _conflict(error) from None

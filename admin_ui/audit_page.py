"""The console's audit log at `/admin/audit`: who changed what, newest first, with what changed.

The rows are those `GET /admin/api/audit` answers for the same parameters (one filter function,
`audit_api.audit_filter`, and one query, `audit.list_changes`), with the time range taken from
the top bar (`last`, or `since` and `until`). Each row shows the changed values only, found by
comparing its before and after as a rule's history does; the log never holds a secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from litestar import Controller, Request, get

from admin_ui.audit import Change, list_changes
from admin_ui.audit_api import audit_filter
from admin_ui.page_views import WorkspaceLabel, time_view, workspace_labels
from admin_ui.pages import DEFAULT_RANGE, page, query_without, url_with
from admin_ui.rule_diff import Change as ValueChange
from admin_ui.rule_diff import rule_changes, shown
from admin_ui.search_params import time_range
from admin_ui.state import gateway_of
from admin_ui.workspace_operations import visible_workspaces

AnyRequest = Request[Any, Any, Any]

NAV: Final = "audit"
TEXT_FILTERS: Final = ("actor", "action", "target_type", "target_id")
TARGET_PAGES: Final = {
    "key": "/admin/keys/",
    "user": "/admin/users/",
    "workspace": "/admin/workspaces/",
}


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: str
    when: Any
    actor: str
    actor_kind: str
    action: str
    target_type: str
    target_id: str
    target_href: str | None
    workspace: str
    address: str | None
    changes: list[ValueChange]
    summary: str
    """For a value that is not an object: what it was and became."""


def _changes(change: Change) -> tuple[list[ValueChange], str]:
    before, after = change.before, change.after
    if (before is None or isinstance(before, dict)) and (after is None or isinstance(after, dict)):
        return rule_changes(before, after), ""
    return [], f"{shown(before)} → {shown(after)}"


def audit_row(change: Change, labels: dict[str, WorkspaceLabel]) -> AuditRow:
    changes, summary = _changes(change)
    workspace = "gateway-wide"
    if change.workspace_id is not None:
        label = labels.get(change.workspace_id)
        workspace = label.slug if label is not None else change.workspace_id
    base = TARGET_PAGES.get(change.target_type)
    removed = change.action.endswith((".delete", ".remove"))
    return AuditRow(
        id=change.audit_id,
        when=time_view(change.created_at),
        actor=change.actor,
        actor_kind=change.actor_kind,
        action=change.action,
        target_type=change.target_type,
        target_id=change.target_id,
        target_href=None if base is None or removed else f"{base}{change.target_id}",
        workspace=workspace,
        address=change.address,
        changes=changes,
        summary=summary,
    )


def _time_bounds(request: AnyRequest) -> tuple[datetime | None, datetime | None]:
    """The top bar's range: `since`/`until`, or `last` (its default when neither is given)."""
    grouped = {
        name: request.query_params.getall(name)
        for name in ("since", "until", "last")
        if request.query_params.get(name)
    }
    if not grouped:
        grouped = {"last": [DEFAULT_RANGE]}
    since, until, _ = time_range(grouped, datetime.now(UTC))
    return since, until


class AuditPage(Controller):
    path = "/audit"
    include_in_schema = False

    @get("/")
    async def audit_log(self, request: AnyRequest) -> Any:
        since, until = _time_bounds(request)
        query = await audit_filter(request, since=since, until=until)
        changes, more = await list_changes(gateway_of(request).engine, query)
        labels = workspace_labels(await visible_workspaces(request))
        rows = [audit_row(change, labels) for change in changes]
        kept = query_without(request, "cursor")
        filters = {name: request.query_params.get(name, "") for name in TEXT_FILTERS}
        return await page(
            request,
            "audit/list.html",
            nav_active=NAV,
            rows=rows,
            filters=filters,
            filtered=any(filters.values()),
            hidden=[(n, v) for n, v in kept if n not in TEXT_FILTERS],
            clear_url=url_with("/admin/audit", [(n, v) for n, v in kept if n not in TEXT_FILTERS]),
            older_url=url_with("/admin/audit", [*kept, ("cursor", changes[-1].audit_id)])
            if more and changes
            else None,
            newest_url=url_with("/admin/audit", kept) if query.cursor else None,
        )

"""`GET /admin/api/audit`: who changed what, newest first, a page at a time.

Owners and admins read their workspaces' changes (and workspace admin keys their own
workspace's); operators read everything, gateway-wide changes (rules, users in no workspace)
included. Pages follow each other by `cursor`: pass the previous answer's `next_cursor`.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Final

from litestar import Controller, Request, get

from admin_ui.audit import AuditFilter, Change, list_changes
from admin_ui.console_auth import permission_denied, principal, require_permission
from admin_ui.openapi import Query, described, text
from admin_ui.page_params import DEFAULT_PAGE, MAX_PAGE, bad, page_limit, query_time
from admin_ui.serialise import iso_time
from admin_ui.state import gateway_of
from admin_ui.workspace_operations import visible_workspace

AnyRequest = Request[Any, Any, Any]

_CURSOR: Final = re.compile(r"^[0-9a-f]{32}$")
_TEXT_FILTERS: Final = (
    ("actor", 'Changes made by this actor: an email, a key\'s name, "master" or "cli".'),
    ("action", "One action (key.create) or every action of a kind (key.)."),
    ("target_type", "key, workspace, rule or user."),
    ("target_id", "Changes to this object (its id)."),
)


def audit_item(change: Change) -> dict[str, Any]:
    return {
        "object": "audit_entry",
        "id": change.audit_id,
        "created_at": iso_time(change.created_at),
        "workspace_id": change.workspace_id,
        "actor": change.actor,
        "actor_kind": change.actor_kind,
        "action": change.action,
        "target_type": change.target_type,
        "target_id": change.target_id,
        "before": change.before,
        "after": change.after,
        "address": change.address,
    }


def _text(request: AnyRequest, name: str) -> str | None:
    value = request.query_params.get(name)
    if value is not None and len(value) > 320:
        raise bad(name, "is longer than 320 characters")
    return value or None


async def audit_filter(
    request: AnyRequest, *, since: datetime | None, until: datetime | None
) -> AuditFilter:
    """The changes the caller may read, narrowed by the request's `workspace`, text filters,
    `cursor` and `limit` (the console's page reads its time range from the top bar instead)."""
    who = principal(request)
    readable = None if who.is_operator else {ws for ws in who.roles if who.can("audit.read", ws)}
    workspace_id = None
    workspace = request.query_params.get("workspace")
    if workspace:
        workspace_id = (await visible_workspace(request, workspace)).workspace_id
        require_permission(request, "audit.read", workspace_id)
    elif readable is not None and not readable:
        raise permission_denied(who, "audit.read")
    cursor = request.query_params.get("cursor")
    if cursor is not None and not _CURSOR.match(cursor):
        raise bad("cursor", "must be a next_cursor from an earlier answer")
    return AuditFilter(
        workspace_ids=readable,
        workspace_id=workspace_id,
        actor=_text(request, "actor"),
        action=_text(request, "action"),
        target_type=_text(request, "target_type"),
        target_id=_text(request, "target_id"),
        since=since,
        until=until,
        cursor=cursor,
        limit=page_limit(request),
    )


class AuditController(Controller):
    path = "/audit"

    @get(
        "/",
        operation_class=described(
            query=(
                Query("workspace", "Only this workspace's changes (id or slug).", text()),
                *(Query(name, description, text(320)) for name, description in _TEXT_FILTERS),
                Query("since", "Changes at or after this time (ISO 8601).", text()),
                Query("until", "Changes before this time (ISO 8601).", text()),
                Query("cursor", "The previous page's next_cursor.", text(32)),
                Query(
                    "limit",
                    f"Entries per page, 1 to {MAX_PAGE} (default {DEFAULT_PAGE}).",
                    {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
                ),
            )
        ),
    )
    async def list_audit(self, request: AnyRequest) -> dict[str, Any]:
        query = await audit_filter(
            request, since=query_time(request, "since"), until=query_time(request, "until")
        )
        changes, more = await list_changes(gateway_of(request).engine, query)
        return {
            "object": "list",
            "data": [audit_item(change) for change in changes],
            "has_more": more,
            "next_cursor": changes[-1].audit_id if more and changes else None,
        }

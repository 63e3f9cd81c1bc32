"""The Overview's firing-alerts box: the alerts firing in the chosen workspace (every one the
viewer sees when none is chosen), critical first and then the longest firing, each linking to
its page; with an empty state that says where alerts come from."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlencode

from jinja2 import Environment
from litestar import Request
from markupsafe import Markup

from admin_ui import alerts_access as access
from admin_ui.alert_views import AlertRow, alert_row
from admin_ui.page_views import workspace_labels
from admin_ui.state import gateway_of
from admin_ui.templating import console_environment
from admin_ui.workspace_operations import visible_workspaces
from telemetry.alerts.instance_history import InstanceFilter, list_instances
from telemetry.alerts.rule_store import load_rules

AnyRequest = Request[Any, Any, Any]

SHOWN: Final = 8


@functools.cache
def _environment() -> Environment:
    return console_environment()


def most_urgent_first(rows: list[AlertRow]) -> list[AlertRow]:
    """Critical before warning, then the longest firing first."""
    return sorted(
        rows, key=lambda row: (row.severity != "critical", row.fired.iso if row.fired else "")
    )


async def firing_box(request: AnyRequest) -> Markup:
    workspace_ids = await access.readable_workspaces(request)
    engine = gateway_of(request).engine
    found, more = await list_instances(
        engine, InstanceFilter(workspace_ids=workspace_ids, state="firing", limit=SHOWN)
    )
    rules = {rule.id: rule for rule in await load_rules(engine, workspace_ids=workspace_ids)}
    labels = workspace_labels(await visible_workspaces(request))
    now = datetime.now(UTC)
    rows = most_urgent_first([alert_row(row, rules, labels, now) for row in found])
    workspace = request.query_params.get("workspace", "")
    query = [("state", "firing")] + ([("workspace", workspace)] if workspace else [])
    return Markup(
        _environment()
        .get_template("analytics/alerts_box.html")
        .render(
            rows=rows,
            more=more,
            all_url=f"/admin/alerts?{urlencode(query)}",
            has_rules=bool(rules),
            show_workspace=not workspace and len(labels) > 1,
        )
    )

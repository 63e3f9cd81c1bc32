"""The console's alert pages: `/admin/alerts` (the alerts, by state, filtered and paged) and
`/admin/alerts/{id}` (one alert: its facts, the rule's metric around it, its timeline of events
and deliveries, links to the traces of its window and to a silence, and Acknowledge and Resolve).

They read through the functions behind `/admin/api/alerts/instances`
(`telemetry.alerts.instance_history`) within the same workspaces, and the buttons call the same
operations as `POST .../ack` and `.../resolve`, audit entry included. Another workspace's alert
is a 404, as in the API.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect

from admin_ui import alerts_access as access
from admin_ui.alert_chart import alert_chart
from admin_ui.alert_instances_api import (
    SEVERITIES,
    acknowledge_alert,
    resolve_alert,
    visible_instance,
)
from admin_ui.alert_links import chart_window, silence_url, trace_filters, traces_url
from admin_ui.alert_views import (
    alert_row,
    delivery_entry,
    event_entry,
    rule_facts,
)
from admin_ui.page_params import choice, page_limit
from admin_ui.page_views import WorkspaceLabel, workspace_labels
from admin_ui.pages import ADMIN_PATH, page, query_without, url_with
from admin_ui.state import gateway_of
from admin_ui.workspace_operations import visible_workspaces
from gateway.errors import GatewayError
from telemetry.alerts.channel_store import list_channels
from telemetry.alerts.instance_history import InstanceFilter, history_of, list_instances
from telemetry.alerts.rule import AlertRule
from telemetry.alerts.rule_store import get_rule, load_rules

AnyRequest = Request[Any, Any, Any]

NAV: Final = "alerts"
ALERTS_PATH: Final = f"{ADMIN_PATH}/alerts"
TABS: Final = (
    ("firing", "Firing"),
    ("pending", "Pending"),
    ("resolved", "Resolved"),
    ("all", "All"),
)
DEFAULT_TAB: Final = "firing"
NOTICES: Final = {
    "acknowledged": "Acknowledged: the alert shows who is on it. It keeps firing until its "
    "condition clears or it is resolved.",
    "resolved": "Resolved by hand. If the condition still holds, the next evaluation opens a "
    "new alert.",
}


def _tab(request: AnyRequest) -> str:
    tab = request.query_params.get("state") or DEFAULT_TAB
    return choice("state", tab, (name for name, _ in TABS)) or DEFAULT_TAB


def _severity(request: AnyRequest) -> str | None:
    return choice("severity", request.query_params.get("severity") or None, SEVERITIES)


async def _rules_of(request: AnyRequest, workspace_ids: frozenset[str] | None) -> list[AlertRule]:
    return await load_rules(gateway_of(request).engine, workspace_ids=workspace_ids)


def _rule_example(base_url: str) -> str:
    return (
        f"curl -X POST {base_url}/admin/api/alerts/rules \\\n"
        '  -H "Authorization: Bearer $STEERWAY_ADMIN_KEY" \\\n'
        '  -H "Content-Type: application/json" \\\n'
        '  -d \'{"name": "Error rate", "metric": "error_rate", "group_by": ["model"],\n'
        '       "window": "5m", "critical": 0.05, "for": "5m", "min_requests": 20}\''
    )


def _rule_label(rule: AlertRule, labels: Mapping[str, WorkspaceLabel], with_workspace: bool) -> str:
    """A rule as the filter offers it; with its workspace when several are listed (two
    workspaces may each have a rule of the same name)."""
    label = labels.get(rule.workspace_id)
    if not with_workspace or label is None:
        return rule.name
    return f"{rule.name} ({label.slug})"


class AlertPages(Controller):
    path = "/alerts"
    include_in_schema = False

    @get("/")
    async def list_alerts(self, request: AnyRequest) -> Response[Any]:
        tab = _tab(request)
        severity = _severity(request)
        workspace_ids = await access.readable_workspaces(request)
        query = InstanceFilter(
            workspace_ids=workspace_ids,
            state=None if tab == "all" else tab,
            rule_id=access.query_id(request, "rule"),
            severity=severity,
            cursor=access.query_id(request, "cursor"),
            limit=page_limit(request),
        )
        engine = gateway_of(request).engine
        found, more = await list_instances(engine, query)
        rules = await _rules_of(request, workspace_ids)
        by_id = {rule.id: rule for rule in rules}
        workspaces = await visible_workspaces(request)
        labels = workspace_labels(workspaces)
        now = datetime.now(UTC)
        rows = [alert_row(row, by_id, labels, now) for row in found]
        kept = query_without(request, "cursor")
        show_workspace = len(labels) > 1 and not request.query_params.get("workspace")
        tab_links = [
            (
                name,
                title,
                url_with(
                    ALERTS_PATH, [*query_without(request, "cursor", "state"), ("state", name)]
                ),
            )
            for name, title in TABS
        ]
        filters = {"rule": query.rule_id or "", "severity": severity or ""}
        writable = access.can_write(
            request,
            next(iter(workspace_ids)) if workspace_ids and len(workspace_ids) == 1 else None,
        )
        return await page(
            request,
            "alerts/list.html",
            nav_active=NAV,
            workspace_rows=workspaces,
            rows=rows,
            tab=tab,
            tabs=tab_links,
            filters=filters,
            filtered=bool(query.rule_id or severity),
            hidden=[(n, v) for n, v in kept if n not in ("rule", "severity")],
            clear_url=url_with(
                ALERTS_PATH, [(n, v) for n, v in kept if n not in ("rule", "severity")]
            ),
            rule_options=[(rule.id, _rule_label(rule, labels, show_workspace)) for rule in rules],
            severities=SEVERITIES,
            has_rules=bool(rules),
            can_write=writable,
            show_workspace=show_workspace,
            older_url=url_with(ALERTS_PATH, [*kept, ("cursor", found[-1]["instance_id"])])
            if more and found
            else None,
            newest_url=url_with(ALERTS_PATH, kept) if query.cursor else None,
            api_url=f"{ADMIN_PATH}/api/alerts/instances?"
            + urlencode(
                [(n, v) for n, v in kept if n in ("workspace", "rule", "severity", "limit")]
                + ([("state", tab)] if tab != "all" else [])
            ),
            rule_example=_rule_example(str(request.base_url).rstrip("/")),
        )

    @get("/{instance_id:str}")
    async def alert_detail(self, request: AnyRequest, instance_id: str) -> Response[Any]:
        found = await visible_instance(request, instance_id)
        engine = gateway_of(request).engine
        workspace_id = found["workspace_id"]
        rule = await get_rule(engine, found["rule_id"])
        rules = {rule.id: rule} if rule is not None else {}
        workspaces = await visible_workspaces(request)
        labels = workspace_labels(workspaces)
        now = datetime.now(UTC)
        alert = alert_row(found, rules, labels, now)
        events, deliveries = await history_of(engine, instance_id)
        channels = {
            stored.channel.id: (stored.channel.name, stored.channel.kind)
            for stored in await list_channels(engine, [workspace_id])
        }
        timeline = sorted(
            [event_entry(event, rule) for event in events]
            + [delivery_entry(sent, channels) for sent in deliveries],
            key=lambda entry: entry.sort_key,
        )
        group = dict(found["labels"])
        start, end = chart_window(
            found["started_at"], found["resolved_at"], rule.window_s if rule else 300, now
        )
        chart = None
        if rule is not None:
            chart = await alert_chart(
                engine,
                rule,
                group,
                workspace_id=workspace_id,
                start=start,
                end=end,
                opened=found["started_at"],
                closed=found["resolved_at"],
            )
        notice = NOTICES.get(request.query_params.get("done", ""), "")
        problem = request.query_params.get("problem") == "ended"
        return await page(
            request,
            "alerts/detail.html",
            nav_active=NAV,
            workspace_rows=workspaces,
            alert=alert,
            rule=None if rule is None else rule_facts(rule),
            chart=chart,
            timeline=timeline,
            traces_url=traces_url(group, alert.workspace, start, end),
            trace_filters=trace_filters(group),
            window_start=start,
            window_end=end,
            silence_url=silence_url(alert.rule_name, group, alert.workspace),
            can_write=access.can_write(request, workspace_id),
            notice=notice,
            ended_problem=problem,
        )

    @post("/{instance_id:str}/ack", status_code=303)
    async def acknowledge(self, request: AnyRequest, instance_id: str) -> Response[Any]:
        return await _change(request, instance_id, "acknowledged")

    @post("/{instance_id:str}/resolve", status_code=303)
    async def resolve(self, request: AnyRequest, instance_id: str) -> Response[Any]:
        return await _change(request, instance_id, "resolved")


async def _change(request: AnyRequest, instance_id: str, done: str) -> Response[Any]:
    change = acknowledge_alert if done == "acknowledged" else resolve_alert
    try:
        await change(request, instance_id)
    except GatewayError as error:
        if error.status != 409:
            raise
        return Redirect(f"{ALERTS_PATH}/{instance_id}?problem=ended", status_code=303)
    return Redirect(f"{ALERTS_PATH}/{instance_id}?done={done}", status_code=303)

"""The console's Reports page, `/admin/reports`: the workspace's report definitions (sections,
range, schedule in words, time zone, next run, recipients, formats, the last report's status)
with each one's latest reports, their download links and how their delivery went; and the
"Run now" form, which calls what `POST /admin/api/reports/{id}/run` calls (`run_now`).

It reads through the same store functions as `/admin/api/reports`, within the caller's
workspaces (the top bar's workspace narrows it to one).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post
from litestar.response import Redirect

from admin_ui import alerts_access as access
from admin_ui.formatting import utc_text
from admin_ui.page_views import workspace_labels
from admin_ui.pages import page
from admin_ui.principals import principal
from admin_ui.report_pages_schedule import schedule_words
from admin_ui.reports_api import run_now
from admin_ui.state import gateway_of
from admin_ui.workspace_operations import visible_workspaces
from telemetry.alerts.channel_store import list_channels
from telemetry.reports.definition import ReportDefinition
from telemetry.reports.delivery_record import RecipientOutcome
from telemetry.reports.period_text import local_time_text, range_text
from telemetry.reports.store import (
    ReportInstance,
    ensure_weekly_summaries,
    list_definitions,
    list_instances,
)

AnyRequest = Request[Any, Any, Any]

NAV: Final = "reports"
INSTANCES_SHOWN: Final = 5
SECTION_TITLES: Final = {
    "summary": "Summary",
    "cost": "Cost",
    "top_keys": "Top keys",
    "top_end_users": "Top end users",
    "latency_errors": "Latency and errors",
    "cache_roi": "Cache ROI",
    "guardrails": "Guardrails",
    "anomalies_alerts": "Anomalies and alerts",
    "forecast": "Forecast",
    "insights": "Insights",
}
RANGE_TITLES: Final = {
    "previous_day": "The previous day",
    "previous_week": "The previous week, Monday to Sunday",
    "previous_month": "The previous month",
    "last_7d": "The last 7 days",
    "last_30d": "The last 30 days",
}
STATUS_TONES: Final = {"done": "ok", "failed": "error"}
FILES_PATH: Final = "/admin/api/reports/instances/{id}/files/{format}"


@dataclass(frozen=True, slots=True)
class FileLink:
    format: str
    size: str
    url: str


@dataclass(frozen=True, slots=True)
class InstanceView:
    id: str
    made: str
    made_iso: str
    range: str
    trigger: str
    status: str
    tone: str
    error: str | None
    files: tuple[FileLink, ...]
    deliveries: tuple[RecipientOutcome, ...] | None


@dataclass(frozen=True, slots=True)
class DefinitionView:
    id: str
    name: str
    workspace: str
    built_in: bool
    enabled: bool
    sections: tuple[str, ...]
    range: str
    schedule_words: str | None
    schedule: str
    time_zone: str
    next_run: str | None
    recipients: tuple[tuple[str, str], ...]
    """(name, kind) of each channel; a deleted one reads ("a deleted channel", "")."""
    formats: tuple[str, ...]
    instances: tuple[InstanceView, ...]
    can_run: bool


def size_text(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / 1024 / 1024:.1f} MB"


def instance_view(instance: ReportInstance, time_zone: str) -> InstanceView:
    return InstanceView(
        id=instance.id,
        made=local_time_text(instance.made_at, time_zone),
        made_iso=utc_text(instance.made_at),
        range=range_text(instance.range_start, instance.range_end, time_zone),
        trigger=instance.trigger,
        status=instance.status,
        tone=STATUS_TONES.get(instance.status, "neutral"),
        error=instance.error,
        files=tuple(
            FileLink(
                format=file.format,
                size=size_text(file.size),
                url=FILES_PATH.format(id=instance.id, format=file.format),
            )
            for file in instance.files
        ),
        deliveries=instance.deliveries,
    )


def definition_view(
    definition: ReportDefinition,
    *,
    workspace: str,
    channels: Mapping[str, tuple[str, str]],
    instances: Sequence[InstanceView],
    can_run: bool,
) -> DefinitionView:
    zone = definition.time_zone
    return DefinitionView(
        id=definition.id,
        name=definition.name,
        workspace=workspace,
        built_in=definition.built_in is not None,
        enabled=definition.enabled,
        sections=tuple(SECTION_TITLES.get(name, name) for name in definition.sections),
        range=RANGE_TITLES.get(definition.range, definition.range),
        schedule_words=schedule_words(definition.schedule),
        schedule=definition.schedule,
        time_zone=zone,
        next_run=local_time_text(definition.next_run_at, zone) if definition.next_run_at else None,
        recipients=tuple(
            channels.get(channel_id, ("a deleted channel", ""))
            for channel_id in definition.recipient_ids
        ),
        formats=tuple(format_.upper() for format_ in definition.formats),
        instances=tuple(instances),
        can_run=can_run,
    )


async def _views(
    request: AnyRequest, definitions: Iterable[ReportDefinition]
) -> list[DefinitionView]:
    engine = gateway_of(request).engine
    definitions = list(definitions)
    labels = workspace_labels(await visible_workspaces(request))
    workspace_ids = {definition.workspace_id for definition in definitions}
    channels = {
        stored.channel.id: (stored.channel.name, stored.channel.kind)
        for stored in await list_channels(engine, workspace_ids)
    }
    found = {
        definition.id: await list_instances(engine, definition.id, limit=INSTANCES_SHOWN)
        for definition in definitions
    }
    return [
        definition_view(
            definition,
            workspace=labels[definition.workspace_id].name
            if definition.workspace_id in labels
            else definition.workspace_id,
            channels=channels,
            instances=[
                instance_view(instance, definition.time_zone) for instance in found[definition.id]
            ],
            can_run=principal(request).can("reports.write", definition.workspace_id),
        )
        for definition in definitions
    ]


class ReportPages(Controller):
    path = "/reports"
    include_in_schema = False

    @get("/")
    async def list_reports(self, request: AnyRequest) -> Response[Any]:
        engine = gateway_of(request).engine
        await ensure_weekly_summaries(engine)
        workspaces = await access.readable_workspaces(request)
        definitions = await list_definitions(engine, workspaces)
        ran = request.query_params.get("ran", "")
        return await page(
            request,
            "reports/list.html",
            nav_active=NAV,
            definitions=await _views(request, definitions),
            ran=ran if access.is_id(ran) else "",
            workspace=request.query_params.get("workspace", ""),
        )

    @post("/{definition_id:str}/run", status_code=303)
    async def run_report(self, request: AnyRequest, definition_id: str) -> Response[Any]:
        instance = await run_now(request, definition_id)
        form = await request.form()
        workspace = str(form.get("workspace") or "")
        query = urlencode(
            [*([("workspace", workspace)] if workspace else []), ("ran", instance.id)]
        )
        return Redirect(f"/admin/reports?{query}#instance-{instance.id}", status_code=303)

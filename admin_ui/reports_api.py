"""`/admin/api/reports`: report definitions, listed, read, created, replaced, deleted and run
now; a definition's instances, one instance, and an instance's file in one format.

Access is the alerts': a caller reads the reports of the workspaces it sees, changing or
running one takes `reports.write` in its workspace, and another workspace's definition or
instance is a 404. A body that fails its checks is a 400 naming the field (`schedule`,
`time_zone`, `sections[2]`, `recipients[0]`); a name the workspace already uses a 409.

`POST /admin/api/reports/{id}/run` makes the report before it answers (201, the instance):
a report reads a few dozen statements over the roll-ups, seconds at most, and the caller gets
its download links at once. The built-in weekly summary can be changed or disabled, not deleted
(409).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

import msgspec
from litestar import Controller, Request, Response, delete, get, post, put
from sqlalchemy.ext.asyncio import AsyncEngine

from admin_ui import alerts_access as access
from admin_ui.console_auth import require_permission
from admin_ui.openapi import Query, described, object_schema, strings, text
from admin_ui.page_params import bad, page_limit
from admin_ui.serialise import iso_time
from admin_ui.state import gateway_of
from gateway.errors import GatewayError, clipped, invalid_request
from telemetry.ids import uuid7_hex
from telemetry.reports.definition import (
    FIELDS,
    FORMATS,
    DefinitionError,
    ReportDefinition,
    definition_data,
    parse_definition,
)
from telemetry.reports.delivery_record import as_json
from telemetry.reports.document import SECTION_NAMES
from telemetry.reports.file_names import report_file_name
from telemetry.reports.ranges import RANGES
from telemetry.reports.runner import DEFAULT_RENDERERS, run_definition
from telemetry.reports.store import (
    DefinitionNameTaken,
    ReportInstance,
    create_definition,
    delete_definition,
    ensure_weekly_summaries,
    get_definition,
    get_instance,
    list_definitions,
    list_instances,
    read_file,
    update_definition,
)

AnyRequest = Request[Any, Any, Any]
Found = TypeVar("Found", ReportDefinition, ReportInstance)

API: Final = "/admin/api/reports"
PERMISSION: Final = "reports.write"
READ_ONLY: Final = (
    "object",
    "id",
    "workspace_id",
    "built_in",
    "next_run_at",
    "created_at",
    "updated_at",
)
_PROPERTIES: Final = {
    "name": text(200),
    "sections": {"type": "array", "items": {"enum": list(SECTION_NAMES)}},
    "range": {"enum": list(RANGES)},
    "schedule": text(200, description="A 5-field cron expression, such as `0 8 * * mon`."),
    "time_zone": text(64, description="An IANA time zone, such as `Europe/Paris`."),
    "recipients": strings(),
    "formats": {"type": "array", "items": {"enum": list(FORMATS)}},
    "enabled": {"type": "boolean"},
}
_REQUIRED: Final = ("name", "sections", "range", "schedule")
CREATE_SCHEMA: Final = object_schema({**_PROPERTIES, "workspace": text()}, required=_REQUIRED)
UPDATE_SCHEMA: Final = object_schema(_PROPERTIES, required=_REQUIRED)
_DEFINITION_PATH: Final = (Query("definition_id", "The report definition's id.", text(32)),)
_INSTANCE_PATH: Final = (Query("instance_id", "The report instance's id.", text(32)),)
_FILE_PATH: Final = (
    *_INSTANCE_PATH,
    Query("format", "The file's format.", {"enum": list(FORMATS)}),
)


def not_found(what: str, given: str, param: str) -> GatewayError:
    return GatewayError(
        404,
        f"No {what.replace('_', ' ')} with id '{clipped(given, 64)}'.",
        code=f"{what}_not_found",
        param=param,
    )


def definition_item(definition: ReportDefinition) -> dict[str, Any]:
    return {
        "object": "report_definition",
        "id": definition.id,
        "workspace_id": definition.workspace_id,
        "built_in": definition.built_in,
        **definition_data(definition),
        "next_run_at": iso_time(definition.next_run_at) if definition.next_run_at else None,
        "created_at": iso_time(definition.created_at) if definition.created_at else None,
        "updated_at": iso_time(definition.updated_at) if definition.updated_at else None,
    }


def instance_item(instance: ReportInstance) -> dict[str, Any]:
    return {
        "object": "report_instance",
        "id": instance.id,
        "definition_id": instance.definition_id,
        "workspace_id": instance.workspace_id,
        "range": {"start": iso_time(instance.range_start), "end": iso_time(instance.range_end)},
        "trigger": instance.trigger,
        "status": instance.status,
        "error": instance.error,
        "made_at": iso_time(instance.made_at),
        "files": [
            {
                "format": file.format,
                "content_type": file.content_type,
                "size": file.size,
                "sha256": file.sha256,
                "url": f"{API}/instances/{instance.id}/files/{file.format}",
            }
            for file in instance.files
        ],
        "deliveries": as_json(instance.deliveries),
    }


async def _visible(
    request: AnyRequest,
    given: str,
    load: Callable[[AsyncEngine, str], Awaitable[Found | None]],
    what: str,
    param: str,
) -> Found:
    """What `load` finds for the id `given`, when the caller sees its workspace; else a 404."""
    found = await load(gateway_of(request).engine, given) if access.is_id(given) else None
    if found is None or not access.visible(request, found.workspace_id):
        raise not_found(what, given, param)
    return found


async def visible_definition(request: AnyRequest, definition_id: str) -> ReportDefinition:
    return await _visible(request, definition_id, get_definition, "report", "definition_id")


async def visible_instance(request: AnyRequest, instance_id: str) -> ReportInstance:
    return await _visible(request, instance_id, get_instance, "report_instance", "instance_id")


def _definition_error(error: DefinitionError) -> GatewayError:
    if isinstance(error, DefinitionNameTaken):
        return access.conflict(f"{error.reason[:1].upper()}{error.reason[1:]}.", "name")
    return invalid_request(
        f"The report is not valid: {error.field}: {error.reason}",
        param=error.field,
        code="invalid_report",
    )


def _parsed(
    body: dict[str, Any], current: ReportDefinition | None, **where: str
) -> ReportDefinition:
    try:
        return parse_definition(
            body,
            definition_id=where["definition_id"],
            workspace_id=where["workspace_id"],
            built_in=current.built_in if current else None,
        )
    except DefinitionError as error:
        raise _definition_error(error) from None


def _require_write(request: AnyRequest, workspace_id: str) -> None:
    require_permission(request, PERMISSION, workspace_id)


def file_name(definition: ReportDefinition | None, instance: ReportInstance, format_: str) -> str:
    """`weekly-summary-2026-11-30.csv`: the definition's name and the range's first day."""
    if definition is None:
        return report_file_name("report", instance.range_start, "UTC", format_)
    return report_file_name(definition.name, instance.range_start, definition.time_zone, format_)


async def run_now(request: AnyRequest, definition_id: str) -> ReportInstance:
    """Make a definition's report now, over its range as of now, with this process's renderers
    and delivery; audited. The API's run and the console's "Run now" button both call this."""
    current = await visible_definition(request, definition_id)
    _require_write(request, current.workspace_id)
    gateway = gateway_of(request)
    scheduler = gateway.report_scheduler
    now = datetime.now(UTC)
    instance = await run_definition(
        gateway.engine,
        current,
        trigger="manual",
        at=now,
        now=now,
        renderers=scheduler.renderers if scheduler else DEFAULT_RENDERERS,
        deliver=scheduler.deliver if scheduler else None,
    )
    await access.audit(
        request,
        "report.run",
        ("report_definition", current.id),
        current.workspace_id,
        after={"instance_id": instance.id, "status": instance.status},
    )
    return instance


class ReportController(Controller):
    path = "/reports"

    @get(
        "/",
        operation_class=described(
            query=(Query("workspace", "Only this workspace's reports (id or slug).", text()),)
        ),
    )
    async def list_reports(self, request: AnyRequest) -> dict[str, Any]:
        """The report definitions of the caller's workspaces (an operator: all), oldest first;
        every workspace has its weekly summary."""
        engine = gateway_of(request).engine
        await ensure_weekly_summaries(engine)
        found = await list_definitions(engine, await access.readable_workspaces(request))
        return {"object": "list", "data": [definition_item(item) for item in found]}

    @get("/{definition_id:str}", operation_class=described(path=_DEFINITION_PATH))
    async def get_report(self, request: AnyRequest, definition_id: str) -> dict[str, Any]:
        return definition_item(await visible_definition(request, definition_id))

    @post("/", status_code=201, operation_class=described(body=CREATE_SCHEMA, conflict=True))
    async def create_report(self, request: AnyRequest) -> dict[str, Any]:
        """A new report definition in `workspace` (the caller's own when left out)."""
        body = await access.body_fields(request, (*FIELDS, "workspace"), READ_ONLY)
        workspace_id = await access.target_workspace(
            request, body.pop("workspace", None), PERMISSION
        )
        definition = _parsed(body, None, definition_id=uuid7_hex(), workspace_id=workspace_id)
        try:
            stored = await create_definition(gateway_of(request).engine, definition)
        except DefinitionError as error:
            raise _definition_error(error) from None
        item = definition_item(stored)
        await access.audit(
            request, "report.create", ("report_definition", stored.id), workspace_id, after=item
        )
        return item

    @put(
        "/{definition_id:str}",
        operation_class=described(body=UPDATE_SCHEMA, path=_DEFINITION_PATH, conflict=True),
    )
    async def replace_report(self, request: AnyRequest, definition_id: str) -> dict[str, Any]:
        """Replace the definition with the body; its next run is scheduled afresh."""
        current = await visible_definition(request, definition_id)
        _require_write(request, current.workspace_id)
        body = await access.body_fields(request, FIELDS, READ_ONLY)
        definition = _parsed(
            body, current, definition_id=current.id, workspace_id=current.workspace_id
        )
        definition = msgspec.structs.replace(definition, created_at=current.created_at)
        try:
            stored = await update_definition(gateway_of(request).engine, definition)
        except DefinitionError as error:
            raise _definition_error(error) from None
        item = definition_item(stored)
        await access.audit(
            request,
            "report.update",
            ("report_definition", current.id),
            current.workspace_id,
            before=definition_item(current),
            after=item,
        )
        return item

    @delete(
        "/{definition_id:str}", status_code=204, operation_class=described(path=_DEFINITION_PATH)
    )
    async def delete_report(self, request: AnyRequest, definition_id: str) -> Response[None]:
        """Delete the definition, its instances and their files."""
        current = await visible_definition(request, definition_id)
        _require_write(request, current.workspace_id)
        if current.built_in is not None:
            raise access.conflict(
                "The weekly summary is built in: disable it (`enabled`: false) instead.",
                "definition_id",
            )
        await delete_definition(gateway_of(request).engine, current.id)
        await access.audit(
            request,
            "report.delete",
            ("report_definition", current.id),
            current.workspace_id,
            before=definition_item(current),
        )
        return Response(None, status_code=204)

    @post(
        "/{definition_id:str}/run",
        status_code=201,
        operation_class=described(path=_DEFINITION_PATH),
    )
    async def run_report(self, request: AnyRequest, definition_id: str) -> dict[str, Any]:
        """Make the report now, over its range as of now, and answer the instance (with a
        `failed` status and the reason when it could not be made)."""
        return instance_item(await run_now(request, definition_id))

    @get(
        "/{definition_id:str}/instances",
        operation_class=described(
            path=_DEFINITION_PATH,
            query=(
                Query("limit", "How many, newest first (1-200, default 50).", {"type": "integer"}),
                Query("before", "Only instances older than this instance id.", text(32)),
            ),
        ),
    )
    async def list_report_instances(
        self, request: AnyRequest, definition_id: str
    ) -> dict[str, Any]:
        """The reports made from the definition, newest first."""
        current = await visible_definition(request, definition_id)
        found = await list_instances(
            gateway_of(request).engine,
            current.id,
            limit=page_limit(request),
            before=access.query_id(request, "before"),
        )
        return {"object": "list", "data": [instance_item(item) for item in found]}

    @get("/instances/{instance_id:str}", operation_class=described(path=_INSTANCE_PATH))
    async def get_report_instance(self, request: AnyRequest, instance_id: str) -> dict[str, Any]:
        return instance_item(await visible_instance(request, instance_id))

    @get(
        "/instances/{instance_id:str}/files/{format:str}",
        operation_class=described(
            path=_FILE_PATH,
            success=(
                {"text/csv": {"type": "string"}, "application/json": {}, "application/pdf": {}},
                "The file, as an attachment named after the report and its range.",
            ),
        ),
    )
    async def download_report_file(
        self, request: AnyRequest, instance_id: str, format: str
    ) -> Response[bytes]:
        """The instance's file in `format` (csv, json or pdf)."""
        if format not in FORMATS:
            raise bad("format", f"must be one of {', '.join(FORMATS)}")
        instance = await visible_instance(request, instance_id)
        engine = gateway_of(request).engine
        found = await read_file(engine, instance.id, format)
        if found is None:
            raise GatewayError(
                404,
                f"This report was not made as {format}.",
                code="report_file_not_found",
                param="format",
            )
        definition = await get_definition(engine, instance.definition_id)
        return Response(
            found.content,
            media_type=found.content_type,
            headers={
                "Content-Disposition": f'attachment; filename="{file_name(definition, instance, format)}"',
                "Cache-Control": "no-store",
            },
        )

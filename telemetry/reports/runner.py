"""Making one report of a definition: its range for the run, the document, a file per format,
the instance stored with its files, then the delivery to its recipients.

Renderers and the delivery are given by the app composition (`telemetry.reports.scheduler`):
this package writes CSV and JSON itself; the PDF renderer and the delivery live with the
console. A format without a renderer in this process is left out and said so in the instance's
`error`; a failure to make the document is a `failed` instance, never an exception to the
caller, and a failing delivery is logged and does not undo the instance.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Final

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.db_outage import is_unavailable
from telemetry.ids import uuid7_hex
from telemetry.reports import render_csv, render_json
from telemetry.reports.build import build_report
from telemetry.reports.cron import time_zone
from telemetry.reports.definition import ReportDefinition
from telemetry.reports.document import ReportDocument
from telemetry.reports.ranges import report_range
from telemetry.reports.store import ReportFile, ReportInstance, add_instance

logger = logging.getLogger("steerway.telemetry.reports")

Renderer = Callable[[ReportDocument], bytes]
Renderers = Mapping[str, Renderer]
Deliver = Callable[[ReportInstance, ReportDocument, Mapping[str, bytes]], Awaitable[None]]
"""Sends a made report to its definition's recipients: the instance, its document, and the
bytes of each format made."""

CONTENT_TYPES: Final = {
    "csv": render_csv.CONTENT_TYPE,
    "json": render_json.CONTENT_TYPE,
    "pdf": "application/pdf",
}
DEFAULT_RENDERERS: Final[Mapping[str, Renderer]] = {
    "csv": render_csv.render_csv,
    "json": render_json.render_json,
}


def _file(format_: str, content: bytes) -> ReportFile:
    return ReportFile(
        format=format_,
        content_type=CONTENT_TYPES[format_],
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
    )


def _reason(error: Exception) -> str:
    """Why a report failed, without the error's text (which may quote rows)."""
    if is_unavailable(error):
        return "the database was unreachable"
    return f"{type(error).__name__}; the gateway's log has the details"


async def run_definition(
    engine: AsyncEngine,
    definition: ReportDefinition,
    *,
    trigger: str,
    at: datetime,
    now: datetime,
    renderers: Renderers = DEFAULT_RENDERERS,
    deliver: Deliver | None = None,
) -> ReportInstance:
    """Make, store and deliver the report of `definition` for a run at `at` (the scheduled
    time, or now for a run asked for), made at `now`."""
    start, end = report_range(definition.range, at, time_zone(definition.time_zone))
    instance = ReportInstance(
        id=uuid7_hex(),
        definition_id=definition.id,
        workspace_id=definition.workspace_id,
        range_start=start,
        range_end=end,
        trigger=trigger,
        status="done",
        error=None,
        made_at=now,
    )
    try:
        document = await build_report(
            engine,
            workspace_id=definition.workspace_id,
            start=start,
            end=end,
            sections=definition.sections,
            title=definition.name,
            time_zone=definition.time_zone,
            now=now,
        )
        files = {
            format_: await asyncio.to_thread(renderers[format_], document)
            for format_ in definition.formats
            if format_ in renderers
        }
    except Exception as error:
        logger.warning(
            "report %r (%s) not made: %s",
            definition.name,
            definition.id,
            type(error).__name__,
            exc_info=True,
        )
        failed = msgspec.structs.replace(instance, status="failed", error=_reason(error))
        return await add_instance(engine, failed)
    missing = [format_ for format_ in definition.formats if format_ not in renderers]
    if missing:
        note = f"not made in this process (no renderer): {', '.join(missing)}"
        instance = msgspec.structs.replace(instance, error=note)
    stored = await add_instance(
        engine, instance, [(_file(format_, content), content) for format_, content in files.items()]
    )
    if deliver is not None:
        try:
            await deliver(stored, document, files)
        except Exception as error:
            logger.warning(
                "report %r (%s) made but not delivered: %s",
                definition.name,
                definition.id,
                type(error).__name__,
                exc_info=True,
            )
    return stored

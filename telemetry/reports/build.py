"""`build_report`: the document of one report, its sections made one after the other (each
reads the analytics in a few statements; one at a time keeps a report's load on the database
small next to the gateway's)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.reports.document import SECTION_NAMES, ReportDocument, Section
from telemetry.reports.queries import Reader
from telemetry.reports.sections import SECTIONS
from telemetry.reports.store import workspace_name

EVERY_WORKSPACE: Final = "All workspaces"


async def build_report(
    engine: AsyncEngine,
    *,
    workspace_id: str | None,
    start: datetime,
    end: datetime,
    sections: Sequence[str],
    title: str,
    time_zone: str,
    now: datetime,
) -> ReportDocument:
    """The report of `workspace_id` (None: every workspace) over [start, end), with `sections`
    in the order `SECTION_NAMES` gives them, made at `now`."""
    unknown = [name for name in sections if name not in SECTIONS]
    if unknown:
        raise ValueError(f"unknown section {unknown[0]!r}; one of {', '.join(SECTION_NAMES)}")
    reader = Reader(engine, workspace_id, start, end)
    made: list[Section] = []
    for name in SECTION_NAMES:
        if name in sections:
            made.append(await SECTIONS[name](reader, now))
    if reader.widened:
        made = [_widened(section) for section in made]
    return ReportDocument(
        title=title,
        workspace_id=workspace_id,
        workspace_name=EVERY_WORKSPACE
        if workspace_id is None
        else await workspace_name(engine, workspace_id),
        start=start,
        end=end,
        time_zone=time_zone,
        made_at=now,
        sections=tuple(made),
    )


def _widened(section: Section) -> Section:
    if section.name not in ("top_end_users", "guardrails"):
        return section
    note = (
        "Tags, end users and guardrails are counted per whole hour (UTC): this section covers "
        "the range widened to whole hours."
    )
    return Section(
        name=section.name,
        title=section.title,
        figures=section.figures,
        charts=section.charts,
        tables=section.tables,
        notes=(*section.notes, note),
    )

"""The report scheduler on SQLite and Postgres: a due definition made exactly once by two
schedulers sharing the database, `next_run_at` moved to the schedule's next time, the weekly
summary given to every workspace, and a report that cannot be made stored as failed."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Mapping
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.db import create_engine
from telemetry.ids import uuid7_hex
from telemetry.reports.definition import WEEKLY_SUMMARY, parse_definition
from telemetry.reports.document import ReportDocument
from telemetry.reports.render_csv import render_csv
from telemetry.reports.scheduler import ReportScheduler, run_due
from telemetry.reports.store import (
    ReportInstance,
    create_definition,
    get_definition,
    list_definitions,
    list_instances,
    read_file,
)
from telemetry.schema import DEFAULT_WORKSPACE_ID, report_instances, workspaces

DUE = datetime(2026, 11, 30, 8, tzinfo=UTC)  # a Monday


async def _definition(engine: AsyncEngine, name: str = "Daily costs") -> str:
    definition = parse_definition(
        {
            "name": name,
            "sections": ["summary", "cost"],
            "range": "previous_day",
            "schedule": "0 8 * * *",
            "formats": ["csv", "json"],
        },
        definition_id=uuid7_hex(),
        workspace_id=DEFAULT_WORKSPACE_ID,
    )
    stored = await create_definition(engine, definition, now=datetime(2026, 11, 30, 7, tzinfo=UTC))
    assert stored.next_run_at == DUE
    return stored.id


async def _instance_count(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int(
            await connection.scalar(sa.select(sa.func.count()).select_from(report_instances)) or 0
        )


async def test_a_due_definition_is_made_exactly_once_by_two_schedulers(engine: AsyncEngine) -> None:
    definition_id = await _definition(engine)
    other = create_engine(engine.url.render_as_string(hide_password=False))
    delivered: list[tuple[str, tuple[str, ...]]] = []

    async def slow_delivery(
        instance: ReportInstance, document: ReportDocument, files: Mapping[str, bytes]
    ) -> None:
        delivered.append((instance.id, tuple(sorted(files))))
        await asyncio.sleep(0.5)  # the round's lock is held meanwhile

    now = DUE.replace(second=20)
    try:
        rounds = await asyncio.gather(
            run_due(engine, now, deliver=slow_delivery), run_due(other, now, deliver=slow_delivery)
        )
        again = await run_due(other, now, deliver=slow_delivery)
    finally:
        await other.dispose()
    made = [instance for found in rounds if found for instance in found]
    assert None in rounds  # the other scheduler found the round taken
    assert [instance.definition_id for instance in made] == [definition_id]
    assert again == []
    assert await _instance_count(engine) == 1
    assert [(made[0].id, ("csv", "json"))] == delivered

    instance = made[0]
    assert (instance.trigger, instance.status, instance.error) == ("scheduled", "done", None)
    assert (instance.range_start, instance.range_end) == (
        datetime(2026, 11, 29, tzinfo=UTC),
        datetime(2026, 11, 30, tzinfo=UTC),
    )
    stored = await get_definition(engine, definition_id)
    assert stored is not None and stored.next_run_at == datetime(2026, 12, 1, 8, tzinfo=UTC)
    content = await read_file(engine, instance.id, "csv")
    assert content is not None and content.content_type == "text/csv"
    lines = list(csv.reader(io.StringIO(content.content.decode())))
    assert lines[0] == ["section", "table", "row", "column", "value", "unit"]
    assert ["report", "meta", "title", "value", "Daily costs", ""] in lines
    assert {file.format: file.size for file in instance.files}["csv"] == len(content.content)


async def test_every_workspace_gets_the_weekly_summary(engine: AsyncEngine) -> None:
    created = datetime(2026, 11, 25, tzinfo=UTC)
    async with engine.begin() as connection:
        await connection.execute(
            workspaces.insert().values(
                workspace_id=uuid7_hex(), name="Acme", slug="acme", settings={}, created_at=created
            )
        )
    assert await run_due(engine, datetime(2026, 11, 26, 12, tzinfo=UTC)) == []
    summaries = [d for d in await list_definitions(engine, None) if d.built_in == WEEKLY_SUMMARY]
    assert len(summaries) == 2
    for summary in summaries:
        assert (summary.schedule, summary.time_zone, summary.range) == (
            "0 8 * * mon",
            "UTC",
            "previous_week",
        )
        assert summary.formats == ("csv", "pdf") and summary.recipient_ids == ()
        assert summary.next_run_at == DUE
    # a second round makes none twice
    await run_due(engine, datetime(2026, 11, 26, 13, tzinfo=UTC))
    assert len(await list_definitions(engine, None)) == 2

    made = await run_due(engine, DUE)
    assert made is not None and len(made) == 2
    for instance in made:
        assert instance.status == "done"
        assert [file.format for file in instance.files] == ["csv"]
        assert instance.error == "not made in this process (no renderer): pdf"
        assert (instance.range_start, instance.range_end) == (
            datetime(2026, 11, 23, tzinfo=UTC),
            DUE.replace(hour=0),
        )


async def test_a_report_that_cannot_be_made_is_stored_as_failed(engine: AsyncEngine) -> None:
    definition_id = await _definition(engine)
    marker = "row text 7731"

    def broken(document: ReportDocument) -> bytes:
        raise RuntimeError(marker)

    made = await run_due(engine, DUE, renderers={"csv": broken, "json": render_csv})
    assert made is not None
    (instance,) = [found for found in made if found.definition_id == definition_id]
    assert instance.status == "failed" and instance.files == ()
    assert instance.error == "RuntimeError; the gateway's log has the details"
    assert [found.id for found in await list_instances(engine, definition_id)] == [instance.id]
    stored = await get_definition(engine, definition_id)
    assert stored is not None and stored.next_run_at == datetime(2026, 12, 1, 8, tzinfo=UTC)


async def test_the_scheduler_runs_in_the_background_until_closed(engine: AsyncEngine) -> None:
    definition = parse_definition(
        {
            "name": "Every minute",
            "sections": ["summary"],
            "range": "previous_day",
            "schedule": "* * * * *",
        },
        definition_id=uuid7_hex(),
        workspace_id=DEFAULT_WORKSPACE_ID,
    )
    await create_definition(engine, definition, now=datetime(2026, 11, 30, tzinfo=UTC))
    delivered = asyncio.Event()

    async def deliver(
        instance: ReportInstance, document: ReportDocument, files: Mapping[str, bytes]
    ) -> None:
        delivered.set()

    scheduler = ReportScheduler(engine, interval=0.05, deliver=deliver)
    await scheduler.start()
    try:
        async with asyncio.timeout(30):
            await delivered.wait()
    finally:
        await scheduler.close()
    made = await list_instances(engine, definition.id)
    assert [instance.trigger for instance in made] == ["scheduled"]
    stored = await get_definition(engine, definition.id)
    assert stored is not None and stored.next_run_at is not None
    assert stored.next_run_at > datetime.now(UTC)
    count = await _instance_count(engine)
    await asyncio.sleep(0.2)  # closed: no more rounds
    assert await _instance_count(engine) == count

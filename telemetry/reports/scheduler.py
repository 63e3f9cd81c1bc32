"""The report scheduler: every `interval` seconds, the definitions that are due are made, once
across the gateway's replicas.

A round runs under `job_lock` with the reports' own key (a Postgres advisory lock; on SQLite a
file lock `<database>.reports-lock` the workers of one `steerway serve` share); a process that
finds it taken skips the round. Each round first gives every workspace its weekly summary
(`store.ensure_weekly_summaries`), then, for each enabled definition whose `next_run_at` has
come, moves `next_run_at` to the schedule's next time after now and makes the report for the
time it was due. Moving it first means a crash mid-report loses that run rather than making it
twice; a gateway that was down for several scheduled times makes one report (the latest due),
not one per missed time.

`steerway serve` starts one `ReportScheduler`; so does `steerway worker`, with the same
renderers and delivery (see `server.app`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Final

from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.job_lock import job_lock
from telemetry.periodic import PeriodicJob
from telemetry.reports.definition import ReportDefinition
from telemetry.reports.runner import DEFAULT_RENDERERS, Deliver, Renderers, run_definition
from telemetry.reports.store import (
    ReportInstance,
    due_definitions,
    ensure_weekly_summaries,
    set_next_run,
)

logger = logging.getLogger("steerway.telemetry.reports.scheduler")

LOCK_KEY: Final = 0x5374_6657_0003
"""The report scheduler's advisory lock (the roll-up folder's and the alert evaluators' are
others)."""
DEFAULT_INTERVAL: Final = 60.0
CLOSE_TIMEOUT: Final = 5.0


async def run_due(
    engine: AsyncEngine,
    now: datetime | None = None,
    *,
    renderers: Renderers = DEFAULT_RENDERERS,
    deliver: Deliver | None = None,
) -> list[ReportInstance] | None:
    """One round at `now` (default: the current time): the instances made, or None when
    another process holds the round."""
    at = now or datetime.now(UTC)
    async with job_lock(engine, key=LOCK_KEY, name="reports") as locked:
        if not locked:
            return None
        await ensure_weekly_summaries(engine, at)
        made: list[ReportInstance] = []
        for definition in await due_definitions(engine, at):
            instance = await _run_due(engine, definition, at, renderers, deliver)
            if instance is not None:
                made.append(instance)
        return made


async def _run_due(
    engine: AsyncEngine,
    definition: ReportDefinition,
    now: datetime,
    renderers: Renderers,
    deliver: Deliver | None,
) -> ReportInstance | None:
    due = definition.next_run_at
    assert due is not None
    try:
        following = definition.next_after(now)
    except ValueError:
        following = None  # a schedule stored before its rules changed: stop, do not loop
    if not await set_next_run(engine, definition.id, due, following):
        return None
    return await run_definition(
        engine,
        definition,
        trigger="scheduled",
        at=due,
        now=now,
        renderers=renderers,
        deliver=deliver,
    )


class ReportScheduler:
    """Runs `run_due` every `interval` seconds while the gateway (or worker) runs; `renderers`
    and `deliver` are also what a report asked for through the API is made with."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        renderers: Renderers = DEFAULT_RENDERERS,
        deliver: Deliver | None = None,
        interval: float = DEFAULT_INTERVAL,
    ) -> None:
        self.engine = engine
        self.renderers = renderers
        self.deliver = deliver
        self._job = PeriodicJob(
            "steerway-reports",
            interval,
            lambda: run_due(self.engine, renderers=self.renderers, deliver=self.deliver),
            logger=logger,
            failing="scheduled reports not made: database %s",
            close_timeout=CLOSE_TIMEOUT,
        )

    async def start(self) -> None:
        await self._job.start()

    async def close(self) -> None:
        await self._job.close()

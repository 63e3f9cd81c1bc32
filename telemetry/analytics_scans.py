"""The roll-up scans of one page, shared by its queries.

A page asks many questions of the same rows: requests, tokens and the cache hit rate per step;
requests by model and by status; latency p50, p95 and time to first token by model, provider
and deployment. Each would scan the range's roll-up rows again for a few sums of its own. Here
a scan is named by the rows it reads (table, kind, grain, step, range, filters, scope), and the
queries that ask for it while it has not started add their sums and, per step, their groups to
it: one statement reads every sum asked, grouped by every dimension asked (at most
`MAX_DIMENSIONS`, each of few values: `telemetry.analytics.FEW_VALUES`), and each query gets its
own columns back, a row per step and combination of the scan's groups. Those rows are partial
sums of the query's groups, which its reader adds up (as it adds buckets into steps). A scan
asked for again after it ran is answered from its rows when it has the sums and groups, or run
again.

Statements that keep a query's own groups (`only`) are not shared; statements over the whole
range (totals, rankings) are shared by queries grouped alike. At most `concurrency` statements
hold a connection at a time.

    scans = SharedScans(engine, concurrency=4)
    await run_query(engine, query, scope=None, scans=scans)
"""

from __future__ import annotations

import asyncio
import operator
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.analytics import FEW_VALUES, AnalyticsQuery, Plan, pending_hours, statement, tune

Rows = Sequence[Sequence[Any]]
MAX_DIMENSIONS: Final = 3
"""The most dimensions one per-step scan is grouped by: their combinations multiply."""


@dataclass(slots=True)
class _Scan:
    dimensions: list[str]
    columns: list[str]
    """Every sum asked so far, in the order they were first asked."""
    merges: bool
    """Whether queries of other groups (per step, of few values) may join it."""
    started: bool = False
    task: asyncio.Task[None] | None = None
    rows: asyncio.Future[Rows] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def serves(self, dimensions: Sequence[str], columns: Sequence[str]) -> bool:
        return set(dimensions) <= set(self.dimensions) and set(columns) <= set(self.columns)

    def takes(self, dimensions: Sequence[str]) -> bool:
        if self.started:
            return False
        if not self.merges:
            return list(dimensions) == self.dimensions
        return len(set(self.dimensions) | set(dimensions)) <= MAX_DIMENSIONS


def scan_key(
    plan_: Plan, query: AnalyticsQuery, scope: str | None, by_step: bool, merges: bool
) -> Hashable:
    """What a statement reads: the rows, and whether per step; the groups too unless it
    `merges` the groups of several queries."""
    return (
        plan_.table.name,
        plan_.kind,
        plan_.grain,
        plan_.step,
        plan_.start,
        plan_.end,
        plan_.pending,
        tuple(sorted((name, tuple(values)) for name, values in query.filters.items())),
        scope,
        by_step,
        () if merges else query.group_by,
    )


class SharedScans:
    """A `telemetry.analytics.RowSource` for the queries of one page (see the module)."""

    def __init__(self, engine: AsyncEngine, concurrency: int) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._slots = asyncio.Semaphore(concurrency)
        self._scans: dict[Hashable, list[_Scan]] = {}
        self._pending: dict[tuple[datetime, datetime], asyncio.Task[tuple[int, ...]]] = {}
        self.statements = 0

    async def pending(self, plan_: Plan) -> tuple[int, ...]:
        """The range's hours not summed yet, read once a page and range."""
        key = (plan_.start, plan_.end)
        task = self._pending.get(key)
        if task is None:
            task = self._pending[key] = asyncio.ensure_future(self._read_pending(plan_))
        return await asyncio.shield(task)

    async def _read_pending(self, plan_: Plan) -> tuple[int, ...]:
        async with self._slots, self.engine.connect() as connection:
            return await pending_hours(connection, plan_)

    async def rows(
        self,
        plan_: Plan,
        query: AnalyticsQuery,
        scope: str | None,
        *,
        by_step: bool = True,
        by_group: bool = True,
        only: Sequence[tuple[str, ...]] = (),
    ) -> Rows:
        if only:
            select = statement(plan_, query, scope, self.dialect, only=only)
            return await self._run(select)
        dimensions = list(query.group_by) if by_group else []
        merges = by_step and set(dimensions) <= FEW_VALUES
        wanted = plan_.columns
        scans = self._scans.setdefault(scan_key(plan_, query, scope, by_step, merges), [])
        scan = next((s for s in scans if s.serves(dimensions, wanted)), None)
        if scan is None:
            scan = next((s for s in scans if s.takes(dimensions)), None)
            if scan is None:
                scan = _Scan(list(dimensions), list(wanted), merges)
                scans.append(scan)
                scan.task = asyncio.ensure_future(self._fill(scan, plan_, query, scope, by_step))
            else:
                scan.dimensions += [d for d in dimensions if d not in scan.dimensions]
                scan.columns += [c for c in wanted if c not in scan.columns]
        rows = await asyncio.shield(scan.rows)
        first = 1 if by_step else 0
        keys = [*range(first), *(first + scan.dimensions.index(d) for d in dimensions)]
        sums = first + len(scan.dimensions)
        keys += [sums + scan.columns.index(column) for column in wanted]
        if keys == list(range(len(keys))) and len(keys) == len(rows[0] if rows else keys):
            return rows
        if len(keys) == 1:
            return [(row[keys[0]],) for row in rows]
        pick = operator.itemgetter(*keys)
        return [pick(row) for row in rows]

    async def _fill(
        self, scan: _Scan, plan_: Plan, query: AnalyticsQuery, scope: str | None, by_step: bool
    ) -> None:
        # Queries started with this one reach their first scan in the same turn of the event
        # loop; the statement is built once they have added their sums and groups.
        await asyncio.sleep(0)
        try:
            async with self._slots:
                scan.started = True
                select = statement(
                    replace(plan_, columns=tuple(scan.columns)),
                    replace(query, group_by=tuple(scan.dimensions)),
                    scope,
                    self.dialect,
                    by_step=by_step,
                )
                scan.rows.set_result(await self._execute(select))
        except BaseException as error:
            scan.started = True
            scan.rows.set_exception(error)
            if not isinstance(error, Exception):
                raise

    async def _run(self, select: Any) -> Rows:
        async with self._slots:
            return await self._execute(select)

    async def _execute(self, select: Any) -> Rows:
        self.statements += 1
        async with self.engine.connect() as connection:
            await tune(connection)
            return list((await connection.execute(select)).all())

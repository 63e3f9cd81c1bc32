"""The roll-up scans of one page, shared by its queries.

A page asks many questions of the same rows: requests, tokens and the cache hit rate per step;
requests and tokens by model; latency p50, p95 and time to first token by model. Each would scan
the range's roll-up rows again for a few sums of its own. Here a scan is named by everything but
its sums (table, kind, grain, step, range, groups, filters, scope, shape), and the queries that
ask for the same scan while it has not started add their sums to it: one statement reads every
sum asked, and each query gets its own columns back. A scan asked for again after it ran is
answered from its rows (when it has the sums) or run again for the sums it lacks.

Statements that keep a query's own groups (`only`) are not shared. At most `concurrency`
statements hold a connection at a time.

    scans = SharedScans(engine, concurrency=4)
    await run_query(engine, query, scope=None, scans=scans)
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.analytics import AnalyticsQuery, Plan, statement

Rows = Sequence[Sequence[Any]]


@dataclass(slots=True)
class _Scan:
    columns: list[str]
    """Every sum asked so far, in the order they were first asked."""
    started: bool = False
    task: asyncio.Task[None] | None = None
    rows: asyncio.Future[Rows] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


def scan_key(
    plan_: Plan, query: AnalyticsQuery, scope: str | None, by_step: bool, by_group: bool
) -> Hashable:
    """What a statement reads and how it groups it: everything but its sums."""
    return (
        plan_.table.name,
        plan_.kind,
        plan_.grain,
        plan_.step,
        plan_.start,
        plan_.end,
        query.group_by if by_group else (),
        tuple(sorted((name, tuple(values)) for name, values in query.filters.items())),
        scope,
        by_step,
    )


class SharedScans:
    """A `telemetry.analytics.RowSource` for the queries of one page (see the module)."""

    def __init__(self, engine: AsyncEngine, concurrency: int) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._slots = asyncio.Semaphore(concurrency)
        self._scans: dict[Hashable, list[_Scan]] = {}
        self.statements = 0

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
        key = scan_key(plan_, query, scope, by_step, by_group)
        wanted = plan_.columns
        scans = self._scans.setdefault(key, [])
        scan = next((s for s in scans if set(wanted) <= set(s.columns)), None)
        if scan is None:
            scan = next((s for s in scans if not s.started), None)
            if scan is None:
                scan = _Scan(list(wanted))
                scans.append(scan)
                scan.task = asyncio.ensure_future(
                    self._fill(scan, plan_, query, scope, by_step, by_group)
                )
            else:
                scan.columns += [c for c in wanted if c not in scan.columns]
        rows = await asyncio.shield(scan.rows)
        width = (1 if by_step else 0) + (len(query.group_by) if by_group else 0)
        positions = [width + scan.columns.index(column) for column in wanted]
        return [(*row[:width], *(row[p] for p in positions)) for row in rows]

    async def _fill(
        self,
        scan: _Scan,
        plan_: Plan,
        query: AnalyticsQuery,
        scope: str | None,
        by_step: bool,
        by_group: bool,
    ) -> None:
        # Queries started with this one reach their first scan in the same turn of the event
        # loop; the statement is built once they have added their sums.
        await asyncio.sleep(0)
        try:
            async with self._slots:
                scan.started = True
                select = statement(
                    replace(plan_, columns=tuple(scan.columns)),
                    query,
                    scope,
                    self.dialect,
                    by_step=by_step,
                    by_group=by_group,
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
            return list((await connection.execute(select)).all())

"""The analytics queries of one page, run concurrently within the viewer's scope.

Panels of a page often ask the same question (the tiles' requests and the error rate's, the
budget's cost and the chart's): each distinct query runs once and every panel asking it awaits
the same answer; queries that read the same sums (p50 and p95 of one histogram) read them once;
and queries that read the same rows for different sums (requests, tokens and the cache hit rate
per step; latency and time to first token by model) share one scan of them
(`telemetry.analytics_scans`). At most `CONCURRENCY` statements hold a database connection at a
time, so a page of twenty panels leaves the pool to the recorder and other viewers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from typing import Final

from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.analytics import AnalyticsQuery, AnalyticsResult, SumsMemo, run_query
from telemetry.analytics_scans import SharedScans

CONCURRENCY: Final = 4


def query_key(query: AnalyticsQuery) -> Hashable:
    return (
        query.metric,
        query.start,
        query.end,
        query.step,
        query.group_by,
        tuple(sorted((name, tuple(values)) for name, values in query.filters.items())),
        query.top,
        query.points,
        query.other_points,
    )


class QueryRunner:
    """Runs `telemetry.analytics` queries for one page, scoped to `scope` (one workspace id,
    or None for every workspace: an operator's view)."""

    def __init__(
        self, engine: AsyncEngine, scope: str | None, concurrency: int = CONCURRENCY
    ) -> None:
        self.engine = engine
        self.scope = scope
        self._answers: dict[Hashable, asyncio.Task[AnalyticsResult]] = {}
        self._sums: SumsMemo = {}
        self.scans = SharedScans(engine, concurrency)
        self.queries_run = 0

    async def _run(self, query: AnalyticsQuery) -> AnalyticsResult:
        self.queries_run += 1
        return await run_query(
            self.engine, query, scope=self.scope, memo=self._sums, scans=self.scans
        )

    async def run(self, query: AnalyticsQuery) -> AnalyticsResult:
        """The query's answer (`InvalidQuery` when it has none)."""
        key = query_key(query)
        task = self._answers.get(key)
        if task is None:
            task = self._answers[key] = asyncio.ensure_future(self._run(query))
        return await asyncio.shield(task)

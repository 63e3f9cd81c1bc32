"""Hourly series of metrics per group, from the roll-ups' hour rows as `telemetry.analytics`
reads them, over a range of any length: a range longer than `MAX_POINTS` hours is read in
consecutive pieces.

The groups are chosen first (`top_groups`: the largest by a metric over the whole range, read at
day steps, so the choice does not depend on where the pieces fall), then each metric is read for
those groups only, by filtering on them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.analytics import (
    MAX_POINTS,
    OTHER,
    AnalyticsQuery,
    Direct,
    Plan,
    RowSource,
    add_sums,
    group_text,
    plan,
    run_query,
    tune,
)
from telemetry.analytics_metrics import METRICS

HOUR = 3600
DAY = 86400
ALL = ""
"""The group of a series read without a dimension: everything in scope."""

Points = list[tuple[datetime, float]]


def hour_floor(moment: datetime) -> datetime:
    return datetime.fromtimestamp(math.floor(moment.timestamp() / HOUR) * HOUR, UTC)


def hour_ceiling(moment: datetime) -> datetime:
    return datetime.fromtimestamp(math.ceil(moment.timestamp() / HOUR) * HOUR, UTC)


async def top_groups(
    engine: AsyncEngine,
    metric: str,
    dimension: str,
    start: datetime,
    end: datetime,
    *,
    top: int,
    filters: Mapping[str, tuple[str, ...]],
    scope: str | None,
) -> list[str]:
    """The `top` values of `dimension` with the most of `metric` over the range (whole days
    around it), largest first; values with none of it are left out. Totals only: one scan."""
    query = AnalyticsQuery(
        metric=metric,
        start=start,
        end=end,
        step=DAY,
        group_by=(dimension,),
        filters=dict(filters),
        top=top,
        points=False,
    )
    result = await run_query(engine, query, scope=scope)
    return [
        series.group[dimension]
        for series in result.series
        if series.group[dimension] != OTHER and series.total
    ]


async def hourly_series(
    engine: AsyncEngine,
    metrics: Sequence[str],
    start: datetime,
    end: datetime,
    *,
    dimension: str | None,
    groups: Sequence[str] = (),
    filters: Mapping[str, tuple[str, ...]],
    scope: str | None,
    scans: RowSource | None = None,
) -> dict[str, dict[str, Points]]:
    """Each of `metrics` per hour from `start` to `end` (both on the hour) for each of `groups`
    of `dimension`, or with no dimension one series, under `ALL`: by metric, then group.

    Only the hours with rows and a value are given: an hour without rows has none, nor has a
    ratio of nothing (an error rate of no requests); what a missing hour means is the reader's
    to say. The metrics are of the same rows (same table), so they are read in one statement (a
    piece), whose sums go straight into points: not through `run_query`'s answer, which has a
    point for every hour and group. With `scans` (`telemetry.analytics_scans.SharedScans`),
    the statements run there."""
    metrics = list(dict.fromkeys(metrics))
    found: dict[str, dict[str, Points]] = {
        metric: ({group: [] for group in groups} if dimension else {ALL: []}) for metric in metrics
    }
    if (dimension is not None and not groups) or not metrics:
        return found
    kept = dict(filters)
    if dimension is not None:
        kept[dimension] = tuple(groups)
    first = start
    while first < end:
        last = min(first + timedelta(hours=MAX_POINTS), end)
        queries = [
            AnalyticsQuery(
                metric=metric,
                start=first,
                end=last,
                step=HOUR,
                group_by=(dimension,) if dimension else (),
                filters=kept,
            )
            for metric in metrics
        ]
        if scans is None:
            async with engine.connect() as connection:
                await tune(connection)
                read, by_group = await _hour_sums(Direct(connection), queries, scope)
        else:
            read, by_group = await _hour_sums(scans, queries, scope)
        base = math.floor(read.start.timestamp())
        times = [datetime.fromtimestamp(base + hour * HOUR, UTC) for hour in range(read.steps)]
        for query in queries:
            metric = METRICS[query.metric]
            picks = [read.columns.index(column) for column in metric.columns]
            for group, by_hour in by_group.items():
                into = found[query.metric].get(group)
                if into is None:
                    continue
                for hour in sorted(by_hour):
                    sums = by_hour[hour]
                    value = metric.value([sums[pick] for pick in picks])
                    if value is not None and times[hour] < last:
                        into.append((times[hour], float(value)))
        first = last
    return found


_HourSums = dict[str, dict[int, list[Any]]]
"""Sums of a statement's columns per group and hour (counted from the piece's start)."""


async def _hour_sums(
    source: RowSource, queries: Sequence[AnalyticsQuery], scope: str | None
) -> tuple[Plan, _HourSums]:
    """The sums of every query's columns per group and hour, from one statement, and the plan
    it read (its columns, in the order of the sums)."""
    plans = [plan(query) for query in queries]
    tables = {(each.table.name, each.kind) for each in plans}
    if len(tables) > 1:
        raise ValueError(f"hourly series of one statement read one table: {sorted(tables)}")
    columns = tuple(dict.fromkeys(column for each in plans for column in each.columns))
    merged = replace(plans[0], columns=columns)
    merged = replace(merged, pending=await source.pending(merged))
    grouped = bool(queries[0].group_by)
    by_group: _HourSums = {}
    for row in await source.rows(merged, queries[0], scope):
        group = group_text(row[1]) if grouped else ALL
        sums = row[1 + grouped :]
        by_hour = by_group.setdefault(group, {})
        hour = int(row[0])
        known = by_hour.get(hour)
        if known is None:
            by_hour[hour] = list(sums)
        else:
            add_sums(known, sums)
    return merged, by_group

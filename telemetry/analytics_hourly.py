"""Hourly series of one metric per group, read through `telemetry.analytics.run_query`, over a
range of any length: a range longer than `MAX_POINTS` hours is read in consecutive pieces.

The groups are chosen first (`top_groups`: the largest by a metric over the whole range, read at
day steps, so the choice does not depend on where the pieces fall), then each metric is read for
those groups only, by filtering on them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.analytics import MAX_POINTS, OTHER, AnalyticsQuery, RowSource, run_query

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
    metric: str,
    start: datetime,
    end: datetime,
    *,
    dimension: str | None,
    groups: Sequence[str] = (),
    filters: Mapping[str, tuple[str, ...]],
    scope: str | None,
    scans: RowSource | None = None,
) -> dict[str, Points]:
    """`metric` per hour from `start` to `end` (both on the hour) for each of `groups` of
    `dimension`, or with no dimension one series, under `ALL`. Only the hours with a value are
    given: an hour without rows has none, nor has a ratio of nothing (an error rate of no
    requests); what a missing hour means is the reader's to say. With `scans`
    (`telemetry.analytics_scans.SharedScans`), series of other metrics over the same rows, read
    at the same time, are read in one scan."""
    if dimension is not None and not groups:
        return {}
    kept = dict(filters)
    if dimension is not None:
        kept[dimension] = tuple(groups)
    found: dict[str, Points] = {group: [] for group in groups} if dimension else {ALL: []}
    first = start
    while first < end:
        last = min(first + timedelta(hours=MAX_POINTS), end)
        query = AnalyticsQuery(
            metric=metric,
            start=first,
            end=last,
            step=HOUR,
            group_by=(dimension,) if dimension else (),
            filters=kept,
        )
        result = await run_query(engine, query, scope=scope, scans=scans)
        for series in result.series:
            group = series.group.get(dimension, ALL) if dimension else ALL
            points = found.get(group)
            if points is None:
                continue
            points.extend(
                (at, float(value)) for at, value in series.points if value is not None and at < last
            )
        first = last
    return found

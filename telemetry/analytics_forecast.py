"""Spend forecasts per workspace, key or model, from the daily cost of the roll-ups.

    found = await forecast_spend(engine, dimension="model", now=now, scope=workspace_id)
    for group in found.groups:
        group.spent_this_month, group.month_end.expected, group.backtest.wape

One analytics query reads the daily cost of the last `HISTORY_DAYS` days and today so far, per
group (the `top` groups by cost over those days); then for each group, and for everything in
scope together:

- **month-end spend**: what the month has spent (today included) plus the forecast of the rest of
  the month (`telemetry.forecast.period_end_projection`: the rest of today, then whole days);
- **the next 30 days**: today and the 29 days after it, today's spend so far plus the forecast of
  the rest;
- **the method** the history's length allows (Holt-Winters with a weekly season from two weeks
  of history on) and its **backtest error**: the WAPE of forecasts 7 days ahead from three
  earlier origins of the group's own history.

Days and months are UTC. A group's history starts at its first day with spend: the days before a
key was made are not days it spent nothing. The forecasting is pure Python and takes a few
milliseconds a group, so it runs in a worker thread; backtests, which depend only on the
complete days, are kept per history.
"""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.analytics import OTHER, AnalyticsQuery, run_query
from telemetry.forecast import (
    Backtest,
    Forecast,
    Projection,
    backtest,
    forecast,
    period_end_projection,
)

HISTORY_DAYS: Final = 56
SEASON: Final = 7
BACKTEST_HORIZON: Final = 7
BACKTEST_FOLDS: Final = 3
NEXT_DAYS: Final = 30
DIMENSIONS: Final = ("workspace", "key", "model")
DEFAULT_TOP: Final = 10
MAX_TOP: Final = 50
DAY: Final = timedelta(days=1)

Daily = list[tuple[datetime, float]]


@dataclass(frozen=True, slots=True)
class GroupForecast:
    group: str
    """The dimension's value (a workspace or key id, a model); "" for everything in scope."""
    history: Daily
    """Whole days, oldest first, from the group's first day with spend to yesterday."""
    spent_today: float
    spent_this_month: float
    month_end: Projection
    next_days: Projection
    backtest: Backtest
    daily: Forecast
    """Day by day from today (its first value is the whole of today)."""

    @property
    def method(self) -> str:
        return self.month_end.method


@dataclass(frozen=True, slots=True)
class SpendForecast:
    now: datetime
    today: datetime
    """The start of today (UTC): the forecast's first day."""
    month_start: datetime
    month_end: datetime
    next_end: datetime
    """The end of the 30 days from today's start."""
    dimension: str | None
    total: GroupForecast
    """Everything in scope together."""
    groups: list[GroupForecast]
    """The `top` groups by spend over the history, largest first; none without spend."""

    def day(self, step: int) -> datetime:
        """The day of the forecast's step `step` (0: today)."""
        return self.today + step * DAY


def day_start(moment: datetime) -> datetime:
    seconds = math.floor(moment.timestamp() / 86400) * 86400
    return datetime.fromtimestamp(seconds, UTC)


def next_month(moment: datetime) -> datetime:
    if moment.month == 12:
        return datetime(moment.year + 1, 1, 1, tzinfo=UTC)
    return datetime(moment.year, moment.month + 1, 1, tzinfo=UTC)


@functools.lru_cache(maxsize=512)
def _backtest(history: tuple[float, ...]) -> Backtest:
    return backtest(history, SEASON, BACKTEST_HORIZON, folds=BACKTEST_FOLDS)


def group_forecast(
    group: str,
    days: Sequence[tuple[datetime, float]],
    *,
    now: datetime,
    month_start: datetime,
    month_end: datetime,
    next_end: datetime,
) -> GroupForecast:
    """The forecast of one group's daily spend `days` (oldest first, ending with today so
    far)."""
    today = day_start(now)
    complete = [(at, value) for at, value in days if at < today]
    first = next((n for n, (_, value) in enumerate(complete) if value > 0), len(complete))
    history = complete[first:]
    values = [value for _, value in history]
    spent_today = sum(value for at, value in days if at >= today)
    spent_month = sum(value for at, value in days if at >= month_start)
    seconds_per_day = DAY.total_seconds()
    horizon = math.ceil((max(month_end, next_end) - today) / DAY)
    return GroupForecast(
        group=group,
        history=history,
        spent_today=spent_today,
        spent_this_month=spent_month,
        month_end=period_end_projection(
            spent_month, values, (month_end - now).total_seconds() / seconds_per_day, SEASON
        ),
        next_days=period_end_projection(
            spent_today, values, (next_end - now).total_seconds() / seconds_per_day, SEASON
        ),
        backtest=_backtest(tuple(values)),
        daily=forecast(values, SEASON, horizon),
    )


async def forecast_spend(
    engine: AsyncEngine,
    *,
    dimension: str | None,
    now: datetime,
    top: int = DEFAULT_TOP,
    filters: Mapping[str, tuple[str, ...]] | None = None,
    scope: str | None,
) -> SpendForecast:
    """Month-end and 30-day spend of the `top` groups of `dimension` (None: everything in
    scope only), within `scope` (one workspace id, or None for every workspace)."""
    if dimension is not None and dimension not in DIMENSIONS:
        raise ValueError(f"forecasts are by {', '.join(DIMENSIONS)}, not {dimension!r}")
    now = now.astimezone(UTC)
    today = day_start(now)
    query = AnalyticsQuery(
        metric="cost",
        start=today - HISTORY_DAYS * DAY,
        end=today + DAY,
        step=int(DAY.total_seconds()),
        group_by=(dimension,) if dimension else (),
        filters=dict(filters or {}),
        top=top if dimension else None,
    )
    result = await run_query(engine, query, scope=scope)
    month_start = datetime(today.year, today.month, 1, tzinfo=UTC)
    bounds = {
        "now": now,
        "month_start": month_start,
        "month_end": next_month(today),
        "next_end": today + NEXT_DAYS * DAY,
    }
    days_of = {
        (series.group.get(dimension, "") if dimension else ""): [
            (at, float(value or 0)) for at, value in series.points
        ]
        for series in result.series
    }
    whole: dict[datetime, float] = {}
    for points in days_of.values():
        for at, value in points:
            whole[at] = whole.get(at, 0.0) + value
    if not whole:
        whole = {at: 0.0 for at in _days(query.start, query.end)}
    chosen = [
        (group, points)
        for group, points in days_of.items()
        if dimension and group != OTHER and any(value > 0 for _, value in points)
    ]

    def compute() -> tuple[GroupForecast, list[GroupForecast]]:
        total = group_forecast("", sorted(whole.items()), **bounds)
        return total, [group_forecast(group, points, **bounds) for group, points in chosen]

    total, groups = await asyncio.to_thread(compute)
    return SpendForecast(
        now=now,
        today=today,
        month_start=month_start,
        month_end=bounds["month_end"],
        next_end=bounds["next_end"],
        dimension=dimension,
        total=total,
        groups=groups,
    )


def _days(start: datetime, end: datetime) -> list[datetime]:
    count = math.ceil((end - start) / DAY)
    return [start + n * DAY for n in range(count)]

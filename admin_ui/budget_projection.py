"""Where a budget's window will end: spent so far plus the forecast of its remaining days.

A key's or a workspace's daily, weekly or monthly budget is projected from that key's or
workspace's own daily spend (the roll-ups' last eight weeks, whole UTC days, from its first day
with spend) with `telemetry.forecast.period_end_projection`: what the window has spent, plus the
forecast of the rest of today and of each day left, so a weekday-heavy key is not projected as if
Saturday were a Tuesday. With less than `MIN_HISTORY_DAYS` days of history, and for end users'
and buckets' budgets (whose daily spend the roll-ups do not keep per account), the projection is
linear: the window's average rate so far, carried to its end.

Windows are cut in the budgets' time zone and days in UTC: where the two differ, the first step
of the forecast (the rest of today) is the rest of the UTC day, a small approximation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.analytics import AnalyticsQuery, run_query
from telemetry.analytics_forecast import HISTORY_DAYS, SEASON, day_start
from telemetry.forecast import period_end_projection

FORECAST_WINDOWS: Final = frozenset({"daily", "weekly", "monthly"})
FORECAST_SCOPES: Final = ("key", "workspace")
MIN_HISTORY_DAYS: Final = 7
MICROS: Final = 1_000_000


@dataclass(frozen=True, slots=True)
class BudgetProjection:
    expected_micros: int
    lower_micros: int
    upper_micros: int
    """The forecast's 80 % interval."""
    method: str


def forecast_window(
    spent_micros: int, end: float | None, now: float, history: Sequence[float] | None
) -> BudgetProjection | None:
    """The window's projected spend at `end` (epoch seconds) from `history`, the subject's
    daily spend, oldest first, ending yesterday; None where the projection stays linear (no
    end, a window already over, less than `MIN_HISTORY_DAYS` of history)."""
    if end is None or now >= end or history is None or len(history) < MIN_HISTORY_DAYS:
        return None
    projected = period_end_projection(spent_micros / MICROS, history, (end - now) / 86400, SEASON)
    return BudgetProjection(
        round(projected.expected * MICROS),
        round(projected.lower * MICROS),
        round(projected.upper * MICROS),
        projected.method,
    )


async def daily_spend(
    engine: AsyncEngine,
    dimension: str,
    subjects: Iterable[str],
    *,
    now: datetime,
    scope: str | None,
) -> dict[str, list[float]]:
    """Each subject's (key or workspace id) daily spend over the last `HISTORY_DAYS` whole UTC
    days, from its first day with spend (a subject without spend has none)."""
    wanted = tuple(sorted(set(subjects)))
    if not wanted:
        return {}
    today = day_start(now.astimezone(UTC))
    query = AnalyticsQuery(
        metric="cost",
        start=today - timedelta(days=HISTORY_DAYS),
        end=today,
        step=86400,
        group_by=(dimension,),
        filters={dimension: wanted},
    )
    result = await run_query(engine, query, scope=scope)
    found = {}
    for series in result.series:
        values = [float(value or 0) for _, value in series.points]
        first = next((n for n, value in enumerate(values) if value > 0), len(values))
        if first < len(values):
            found[series.group[dimension]] = values[first:]
    return found


async def histories(
    engine: AsyncEngine,
    subjects: Mapping[str, Iterable[str]],
    *,
    now: datetime,
    scope: str | None,
) -> dict[tuple[str, str], list[float]]:
    """Daily spend of the subjects of each scope (`key`, `workspace`), by (scope, subject)."""
    scopes = [name for name in FORECAST_SCOPES if name in subjects]
    answers = await asyncio.gather(
        *(daily_spend(engine, name, subjects[name], now=now, scope=scope) for name in scopes)
    )
    return {
        (name, subject): values
        for name, found in zip(scopes, answers, strict=True)
        for subject, values in found.items()
    }

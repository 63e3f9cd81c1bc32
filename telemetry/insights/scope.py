"""What every insight reads over: a workspace (None: every workspace) and a range."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.schema import Money, ai_interactions, traces

DAYS_PER_MONTH: Final = 30
PROXY_SOURCES: Final = ("proxy", "otlp")
"""Trace sources of users' traffic: a judge's calls (`evaluation`) are never a workload."""


@dataclass(frozen=True, slots=True)
class InsightScope:
    engine: AsyncEngine
    workspace_id: str | None
    start: datetime
    end: datetime
    """Excluded."""

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    @property
    def per_month(self) -> float:
        """What multiplies a count over the range into a count over 30 days."""
        seconds = max(self.length.total_seconds(), 1.0)
        return DAYS_PER_MONTH * 86400 / seconds

    def interactions_where(self) -> list[sa.ColumnElement[bool]]:
        """Users' provider calls in the range (never a judge's), in the workspace."""
        where = [
            ai_interactions.c.started_at >= self.start,
            ai_interactions.c.started_at < self.end,
            ai_interactions.c.purpose == "request",
        ]
        if self.workspace_id is not None:
            where.append(ai_interactions.c.workspace_id == self.workspace_id)
        return where

    def traces_where(self) -> list[sa.ColumnElement[bool]]:
        where = [
            traces.c.started_at >= self.start,
            traces.c.started_at < self.end,
            traces.c.source.in_(PROXY_SOURCES),
        ]
        if self.workspace_id is not None:
            where.append(traces.c.workspace_id == self.workspace_id)
        return where


def money_sum(column: sa.ColumnElement[object]) -> sa.ColumnElement[object]:
    """SUM of a money column, read back as an exact Decimal on both backends."""
    return sa.type_coerce(sa.func.sum(column), Money())

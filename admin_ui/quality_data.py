"""Everything the Quality dashboard shows for one range, scope and set of filters, read once
through `telemetry.evaluation.scores` (the JSON API reads the same functions one at a time)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncEngine

from admin_ui.quality_params import QualityFilters
from telemetry.evaluation import scores
from telemetry.evaluation.scores import Comparison, ModelRank, ScoreSeries, StatusSummary


@dataclass(frozen=True, slots=True)
class QualityData:
    statuses: list[StatusSummary]
    starts: list[datetime]
    series: list[ScoreSeries]
    ranking: list[ModelRank]
    comparison: Comparison | None
    evaluators: list[str]
    models: list[str]

    @property
    def empty(self) -> bool:
        """No evaluation at all in the range: the page explains how to set one up."""
        return not self.statuses

    @property
    def judged(self) -> int:
        return sum(s.total for s in self.statuses)

    @property
    def scored(self) -> int:
        return sum(s.counts.get("ok", 0) for s in self.statuses)

    @property
    def spend_usd(self) -> Decimal:
        return sum((s.spend_usd for s in self.statuses), Decimal(0))

    def status_total(self, status: str) -> int:
        return sum(s.counts.get(status, 0) for s in self.statuses)


async def read_quality(
    engine: AsyncEngine,
    *,
    scope: str | None,
    since: datetime,
    until: datetime,
    step: int,
    filters: QualityFilters,
) -> QualityData:
    statuses = await scores.status_summary(
        engine, scope=scope, since=since, until=until, evaluator=filters.evaluator
    )
    evaluators, models = await scores.evaluation_names(
        engine, scope=scope, since=since, until=until
    )
    if not statuses:
        return QualityData([], [], [], [], None, evaluators, models)
    starts, series = await scores.score_series(
        engine,
        scope=scope,
        since=since,
        until=until,
        step=step,
        by=filters.by,
        evaluator=filters.evaluator,
        model=filters.model,
        criterion=filters.criterion,
    )
    ranking = await scores.model_ranking(
        engine,
        scope=scope,
        since=since,
        until=until,
        evaluator=filters.evaluator,
        criterion=filters.criterion,
        order=filters.rank,
    )
    sides = filters.sides()
    comparison = (
        await scores.compare(
            engine,
            scope=scope,
            since=since,
            until=until,
            a=sides[0],
            b=sides[1],
            evaluator=filters.evaluator,
            criterion=filters.criterion,
        )
        if sides
        else None
    )
    return QualityData(statuses, starts, series, ranking, comparison, evaluators, models)

"""Writing `evaluations` rows and reading what the workers need: the judged interaction and
what an evaluator has spent today (UTC)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from telemetry.evaluation.queue import PENDING, RUNNING, Claim
from telemetry.ids import uuid7_hex
from telemetry.schema import ai_interactions, evaluation_queue, evaluations


@dataclass(frozen=True, slots=True)
class JudgedInteraction:
    prompt: Any
    response: Any
    requested_model: str | None
    provider_model: str | None


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str
    scores: dict[str, float]
    score: float | None = None
    rationale: str | None = None
    flags: tuple[str, ...] = ()
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: Decimal | None = None
    latency_ms: float | None = None
    judge_trace_id: str | None = None
    error: str | None = None


async def read_interaction(engine: AsyncEngine, item: Claim) -> JudgedInteraction | None:
    t = ai_interactions.c
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                sa.select(t.prompt, t.response, t.requested_model, t.provider_model).where(
                    t.interaction_id == item.interaction_id,
                    t.workspace_id == item.workspace_id,
                    t.trace_id == item.trace_id,
                )
            )
        ).first()
    if row is None:
        return None
    return JudgedInteraction(row.prompt, row.response, row.requested_model, row.provider_model)


def start_of_day(now: datetime | None = None) -> datetime:
    now = now or datetime.now(UTC)
    return datetime.combine(now.date(), time(0), tzinfo=UTC)


async def spent_today(engine: AsyncEngine, workspace_id: str, evaluator_id: str) -> Decimal:
    """The evaluator's ended evaluations' cost today (every attempt of each), plus what the
    failed attempts of its rows still queued have spent."""
    e = evaluations.c
    q = evaluation_queue.c
    async with engine.connect() as connection:
        ended = (
            await connection.execute(
                sa.select(sa.func.coalesce(sa.func.sum(e.cost_usd), 0)).where(
                    e.workspace_id == workspace_id,
                    e.evaluator_id == evaluator_id,
                    e.created_at >= start_of_day(),
                )
            )
        ).scalar_one()
        queued = (
            await connection.execute(
                sa.select(sa.func.coalesce(sa.func.sum(q.spent_usd), 0)).where(
                    q.workspace_id == workspace_id,
                    q.evaluator_id == evaluator_id,
                    q.status.in_((PENDING, RUNNING)),
                    q.spent_usd.is_not(None),
                )
            )
        ).scalar_one()
    return Decimal(str(ended)) + Decimal(str(queued))


async def write_outcome(
    connection: AsyncConnection,
    item: Claim,
    *,
    evaluator_name: str,
    judge_model: str,
    judged: JudgedInteraction | None,
    outcome: Outcome,
) -> str:
    evaluation_id = uuid7_hex()
    await connection.execute(
        evaluations.insert().values(
            evaluation_id=evaluation_id,
            workspace_id=item.workspace_id,
            evaluator_id=item.evaluator_id,
            evaluator_name=evaluator_name,
            trace_id=item.trace_id,
            interaction_id=item.interaction_id,
            requested_model=judged.requested_model if judged else None,
            provider_model=judged.provider_model if judged else None,
            judge_model=judge_model,
            judge_trace_id=outcome.judge_trace_id,
            status=outcome.status,
            scores=outcome.scores,
            score=outcome.score,
            rationale=outcome.rationale,
            flags=list(outcome.flags),
            prompt_tokens=outcome.prompt_tokens,
            completion_tokens=outcome.completion_tokens,
            cost_usd=outcome.cost_usd,
            latency_ms=outcome.latency_ms,
            attempts=item.attempts,
            error=outcome.error,
            created_at=datetime.now(UTC),
        )
    )
    return evaluation_id

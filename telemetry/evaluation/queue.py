"""The durable queue between picking and judging (`evaluation_queue`).

`enqueue_picks` runs inside the batch writer's transaction, so a picked interaction and its
queue row are written together or not at all. `claim` hands a worker rows with a lease: on
Postgres through `FOR UPDATE SKIP LOCKED`, so concurrent workers never take the same row; on
SQLite through an UPDATE guarded by the row's claimable state (SQLite has one writer at a time).
A claimed row whose lease ran out (its worker died) is claimable again. The attempt is counted
when the row is claimed, so a row that kills its worker still ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from telemetry.evaluation.picking import Pick, has_content
from telemetry.ids import uuid7_hex
from telemetry.schema import evaluation_queue, evaluations

PENDING = "pending"
RUNNING = "running"
DONE = "done"
FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Claim:
    queue_id: str
    workspace_id: str
    evaluator_id: str
    trace_id: str
    interaction_id: str
    reason: str
    attempts: int
    spent_usd: Decimal | None = None
    """What the row's earlier, failed judge attempts cost (None: nothing priced)."""
    spent_prompt_tokens: int | None = None
    spent_completion_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class Spend:
    """What one judge attempt used: added to its row when the attempt failed."""

    cost_usd: Decimal | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    def plus(self, other: Spend) -> Spend:
        return Spend(
            _add(self.cost_usd, other.cost_usd),
            _add(self.prompt_tokens, other.prompt_tokens),
            _add(self.completion_tokens, other.completion_tokens),
        )


N = TypeVar("N", int, Decimal)


def _add(first: N | None, second: N | None) -> N | None:
    if first is None:
        return second
    return first if second is None else first + second


def spent_before(item: Claim) -> Spend:
    return Spend(item.spent_usd, item.spent_prompt_tokens, item.spent_completion_tokens)


def _insert(dialect: str, table: sa.Table, key: list[str]) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table).on_conflict_do_nothing(index_elements=key)


async def enqueue_picks(connection: AsyncConnection, picks: Sequence[Pick]) -> dict[str, int]:
    """Queue rows for picked interactions with content, `no_content` evaluations for those
    without; a pair already queued is left as it is. Counts per table."""
    now = datetime.now(UTC)
    queued: list[dict[str, Any]] = []
    empty: list[dict[str, Any]] = []
    for pick in picks:
        interaction = pick.interaction
        if has_content(interaction):
            queued.append(
                {
                    "queue_id": uuid7_hex(),
                    "workspace_id": interaction.workspace_id,
                    "evaluator_id": pick.evaluator.evaluator_id,
                    "trace_id": pick.trace_id,
                    "interaction_id": interaction.interaction_id,
                    "reason": "sampled",
                    "status": PENDING,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
            )
        else:
            empty.append(
                {
                    "evaluation_id": uuid7_hex(),
                    "workspace_id": interaction.workspace_id,
                    "evaluator_id": pick.evaluator.evaluator_id,
                    "evaluator_name": pick.evaluator.name,
                    "trace_id": pick.trace_id,
                    "interaction_id": interaction.interaction_id,
                    "requested_model": interaction.requested_model,
                    "provider_model": interaction.provider_model,
                    "judge_model": pick.evaluator.judge_model,
                    "status": "no_content",
                    "scores": {},
                    "flags": [],
                    "attempts": 0,
                    "error": "the interaction's prompt and answer were not stored",
                    "created_at": now,
                }
            )
    dialect = connection.dialect.name
    if queued:
        await connection.execute(
            _insert(dialect, evaluation_queue, ["evaluator_id", "interaction_id"]), queued
        )
    if empty:
        await connection.execute(evaluations.insert(), empty)
    return {"evaluation_queue": len(queued), "evaluations": len(empty)}


def _claimable(now: datetime) -> sa.ColumnElement[bool]:
    q = evaluation_queue.c
    return sa.or_(
        sa.and_(q.status == PENDING, q.next_attempt_at <= now),
        sa.and_(q.status == RUNNING, q.claimed_until < now),
    )


async def claim(engine: AsyncEngine, *, limit: int, lease_s: float) -> list[Claim]:
    """Up to `limit` rows, marked running until now + `lease_s`."""
    if limit <= 0:
        return []
    now = datetime.now(UTC)
    until = now + timedelta(seconds=lease_s)
    q = evaluation_queue.c
    columns = (
        q.queue_id,
        q.workspace_id,
        q.evaluator_id,
        q.trace_id,
        q.interaction_id,
        q.reason,
        q.attempts,
        q.spent_usd,
        q.spent_prompt_tokens,
        q.spent_completion_tokens,
    )
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            chosen = (
                sa.select(q.queue_id)
                .where(_claimable(now))
                .order_by(q.next_attempt_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
                .scalar_subquery()
            )
            rows = (
                await connection.execute(
                    evaluation_queue.update()
                    .where(q.queue_id.in_(chosen))
                    .values(status=RUNNING, claimed_until=until, attempts=q.attempts + 1)
                    .returning(*columns)
                )
            ).all()
            return [Claim(*row) for row in rows]
        candidates = (
            await connection.execute(
                sa.select(q.queue_id)
                .where(_claimable(now))
                .order_by(q.next_attempt_at)
                .limit(limit)
            )
        ).scalars()
        claimed: list[Claim] = []
        for queue_id in list(candidates):
            result = await connection.execute(
                evaluation_queue.update()
                .where(q.queue_id == queue_id, _claimable(now))
                .values(status=RUNNING, claimed_until=until, attempts=q.attempts + 1)
                .returning(*columns)
            )
            row = result.first()
            if row is not None:
                claimed.append(Claim(*row))
        return claimed


async def finish(
    connection: AsyncConnection, item: Claim, status: str, error: str | None = None
) -> None:
    await connection.execute(
        evaluation_queue.update()
        .where(
            evaluation_queue.c.queue_id == item.queue_id,
            evaluation_queue.c.workspace_id == item.workspace_id,
        )
        .values(status=status, claimed_until=None, last_error=error)
    )


def _grown(column: sa.Column[Any], by: int | Decimal | None) -> Any:
    return column if by is None else sa.func.coalesce(column, 0) + by


async def retry_later(
    engine: AsyncEngine, item: Claim, error: str, delay_s: float, spent: Spend | None = None
) -> None:
    """Back to pending after `delay_s`; what the failed attempt `spent` is added to the row."""
    q = evaluation_queue.c
    spent = spent or Spend()
    async with engine.begin() as connection:
        await connection.execute(
            evaluation_queue.update()
            .where(
                evaluation_queue.c.queue_id == item.queue_id,
                evaluation_queue.c.workspace_id == item.workspace_id,
            )
            .values(
                status=PENDING,
                claimed_until=None,
                last_error=error,
                next_attempt_at=datetime.now(UTC) + timedelta(seconds=delay_s),
                spent_usd=_grown(q.spent_usd, spent.cost_usd),
                spent_prompt_tokens=_grown(q.spent_prompt_tokens, spent.prompt_tokens),
                spent_completion_tokens=_grown(q.spent_completion_tokens, spent.completion_tokens),
            )
        )

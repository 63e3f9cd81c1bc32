"""The `comparisons` table: create, read, list, and the runner's progress.

Every read is bounded to the caller's workspaces. Moving a comparison from `pending` to
`running` is a conditional update, so a comparison asked to start twice (two clicks, two
processes) is run once.

A running comparison is leased to one runner (`claimed_by`, until `claimed_until`). The runner
renews the lease as it goes and writes progress only while the lease is its own; a lease that
ran out (the runner's process died) lets another runner take the comparison over, once, by a
conditional update, and resume it from the requests that have no saved result.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.ids import uuid7_hex
from telemetry.schema import comparisons

PENDING: Final = "pending"
RUNNING: Final = "running"
DONE: Final = "done"
FAILED: Final = "failed"
CANCELLED: Final = "cancelled"
STATUSES: Final = (PENDING, RUNNING, DONE, FAILED, CANCELLED)
FINISHED: Final = frozenset({DONE, FAILED, CANCELLED})
LIST_LIMIT: Final = 100


@dataclass(frozen=True, slots=True)
class StoredComparison:
    comparison_id: str
    workspace_id: str
    name: str
    definition: dict[str, Any]
    status: str
    estimate: dict[str, Any]
    actual_cost_usd: Decimal | None
    total: int
    completed: int
    failed: int
    results: list[dict[str, Any]]
    error: str | None
    created_by: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _stored(row: sa.Row[Any]) -> StoredComparison:
    created = _utc(row.created_at)
    assert created is not None
    return StoredComparison(
        comparison_id=row.comparison_id,
        workspace_id=row.workspace_id,
        name=row.name,
        definition=row.definition if isinstance(row.definition, dict) else {},
        status=row.status,
        estimate=row.estimate if isinstance(row.estimate, dict) else {},
        actual_cost_usd=None if row.actual_cost_usd is None else Decimal(row.actual_cost_usd),
        total=row.total,
        completed=row.completed,
        failed=row.failed,
        results=row.results if isinstance(row.results, list) else [],
        error=row.error,
        created_by=row.created_by,
        created_at=created,
        started_at=_utc(row.started_at),
        finished_at=_utc(row.finished_at),
    )


async def create_comparison(
    engine: AsyncEngine,
    *,
    workspace_id: str,
    name: str,
    definition: dict[str, Any],
    estimate: dict[str, Any],
    total: int,
    created_by: str | None,
) -> str:
    comparison_id = uuid7_hex()
    async with engine.begin() as conn:
        await conn.execute(
            comparisons.insert().values(
                comparison_id=comparison_id,
                workspace_id=workspace_id,
                name=name,
                definition=definition,
                status=PENDING,
                estimate=estimate,
                actual_cost_usd=None,
                total=total,
                completed=0,
                failed=0,
                results=[],
                error=None,
                created_by=created_by,
                created_at=datetime.now(UTC),
            )
        )
    return comparison_id


def _visible(workspace_ids: Collection[str] | None) -> list[sa.ColumnElement[bool]]:
    if workspace_ids is None:
        return []
    return [comparisons.c.workspace_id.in_(sorted(workspace_ids))]


async def get_comparison(
    engine: AsyncEngine, comparison_id: str, *, workspace_ids: Collection[str] | None
) -> StoredComparison | None:
    statement = sa.select(comparisons).where(
        comparisons.c.comparison_id == comparison_id, *_visible(workspace_ids)
    )
    async with engine.connect() as conn:
        row = (await conn.execute(statement)).first()
    return None if row is None else _stored(row)


async def list_comparisons(
    engine: AsyncEngine, *, workspace_ids: Collection[str] | None, limit: int = LIST_LIMIT
) -> list[StoredComparison]:
    statement = (
        sa.select(comparisons)
        .where(*_visible(workspace_ids))
        .order_by(comparisons.c.created_at.desc(), comparisons.c.comparison_id.desc())
        .limit(limit)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(statement)).all()
    return [_stored(row) for row in rows]


async def claim_for_run(
    engine: AsyncEngine, comparison_id: str, *, runner_id: str, lease_s: float
) -> bool:
    """`pending` → `running`, leased to `runner_id`; False when another caller already moved
    it."""
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        result = await conn.execute(
            comparisons.update()
            .where(comparisons.c.comparison_id == comparison_id, comparisons.c.status == PENDING)
            .values(
                status=RUNNING,
                started_at=now,
                claimed_by=runner_id,
                claimed_until=now + timedelta(seconds=lease_s),
            )
        )
    return result.rowcount == 1


def _abandoned(now: datetime, lease_s: float) -> sa.ColumnElement[bool]:
    """Running with a lease that ran out, or pending for longer than a lease (accepted, but its
    process died before starting it)."""
    return sa.or_(
        sa.and_(
            comparisons.c.status == RUNNING,
            sa.or_(comparisons.c.claimed_until.is_(None), comparisons.c.claimed_until < now),
        ),
        sa.and_(
            comparisons.c.status == PENDING,
            comparisons.c.created_at < now - timedelta(seconds=lease_s),
        ),
    )


async def take_over_expired(
    engine: AsyncEngine, *, runner_id: str, lease_s: float, limit: int = 10
) -> list[str]:
    """Lease to `runner_id` the comparisons another runner abandoned (at most `limit`); the ids
    it got. Each is a conditional update, so of two runners asking at once one gets it."""
    now = datetime.now(UTC)
    async with engine.connect() as conn:
        expired = (
            await conn.execute(
                sa.select(comparisons.c.comparison_id, comparisons.c.started_at)
                .where(_abandoned(now, lease_s))
                .order_by(comparisons.c.comparison_id)
                .limit(limit)
            )
        ).all()
    taken: list[str] = []
    for comparison_id, started_at in expired:
        async with engine.begin() as conn:
            result = await conn.execute(
                comparisons.update()
                .where(comparisons.c.comparison_id == comparison_id, _abandoned(now, lease_s))
                .values(
                    status=RUNNING,
                    started_at=started_at or now,
                    claimed_by=runner_id,
                    claimed_until=now + timedelta(seconds=lease_s),
                )
            )
        if result.rowcount == 1:
            taken.append(comparison_id)
    return taken


async def renew_lease(
    engine: AsyncEngine, comparison_id: str, *, runner_id: str, lease_s: float
) -> bool:
    """Extend the runner's lease; False when the comparison is no longer running under it."""
    async with engine.begin() as conn:
        result = await conn.execute(
            comparisons.update()
            .where(
                comparisons.c.comparison_id == comparison_id,
                comparisons.c.status == RUNNING,
                comparisons.c.claimed_by == runner_id,
            )
            .values(claimed_until=datetime.now(UTC) + timedelta(seconds=lease_s))
        )
    return result.rowcount == 1


async def release_lease(engine: AsyncEngine, comparison_id: str, *, runner_id: str) -> None:
    """Let another runner resume the comparison at once (this process is stopping)."""
    async with engine.begin() as conn:
        await conn.execute(
            comparisons.update()
            .where(
                comparisons.c.comparison_id == comparison_id,
                comparisons.c.status == RUNNING,
                comparisons.c.claimed_by == runner_id,
            )
            .values(claimed_until=None)
        )


async def read_status(engine: AsyncEngine, comparison_id: str) -> str | None:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                sa.select(comparisons.c.status).where(comparisons.c.comparison_id == comparison_id)
            )
        ).first()
    return None if row is None else str(row.status)


async def save_progress(
    engine: AsyncEngine,
    comparison_id: str,
    *,
    runner_id: str,
    results: list[dict[str, Any]],
    completed: int,
    failed: int,
    actual_cost_usd: Decimal | None,
) -> bool:
    """Write the results so far while the lease is the runner's (a cancelled comparison still
    keeps the answers already paid for); False when another runner has taken it over."""
    async with engine.begin() as conn:
        result = await conn.execute(
            comparisons.update()
            .where(
                comparisons.c.comparison_id == comparison_id,
                comparisons.c.claimed_by == runner_id,
            )
            .values(
                results=results,
                completed=completed,
                failed=failed,
                actual_cost_usd=actual_cost_usd,
            )
        )
    return result.rowcount == 1


async def finish_comparison(
    engine: AsyncEngine,
    comparison_id: str,
    status: str,
    error: str | None = None,
    *,
    runner_id: str,
) -> None:
    """End a running comparison leased to the runner (a cancelled one keeps its status)."""
    async with engine.begin() as conn:
        await conn.execute(
            comparisons.update()
            .where(
                comparisons.c.comparison_id == comparison_id,
                comparisons.c.status == RUNNING,
                comparisons.c.claimed_by == runner_id,
            )
            .values(status=status, error=error, finished_at=datetime.now(UTC), claimed_until=None)
        )


async def cancel_comparison(engine: AsyncEngine, comparison_id: str, workspace_id: str) -> bool:
    """Cancel a pending or running comparison; False when it had already ended."""
    async with engine.begin() as conn:
        result = await conn.execute(
            comparisons.update()
            .where(
                comparisons.c.comparison_id == comparison_id,
                comparisons.c.workspace_id == workspace_id,
                comparisons.c.status.in_([PENDING, RUNNING]),
            )
            .values(status=CANCELLED, finished_at=datetime.now(UTC))
        )
    return result.rowcount == 1

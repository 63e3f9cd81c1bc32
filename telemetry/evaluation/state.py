"""What the evaluators' list shows beside each evaluator: its queue (pending, running, failed
rows), what it ended today (ok, failed, no content, over the cap) and its spend today (UTC)
against its daily cap."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.evaluation.results import start_of_day
from telemetry.schema import evaluation_queue, evaluations


@dataclass(slots=True)
class EvaluatorState:
    queue: dict[str, int] = field(default_factory=dict)
    today: dict[str, int] = field(default_factory=dict)
    spent_today_usd: Decimal = Decimal(0)

    def to_json(self) -> dict[str, Any]:
        return {
            "pending": self.queue.get("pending", 0),
            "running": self.queue.get("running", 0),
            "failed": self.queue.get("failed", 0),
            "today": {
                status: self.today.get(status, 0)
                for status in ("ok", "failed", "no_content", "over_cap")
            },
            "spent_today_usd": _money(self.spent_today_usd),
        }


async def evaluator_states(
    engine: AsyncEngine, evaluator_ids: Collection[str], workspace_ids: Collection[str]
) -> dict[str, EvaluatorState]:
    """State per evaluator id; every query filters by the callers' workspaces too."""
    states = {evaluator_id: EvaluatorState() for evaluator_id in evaluator_ids}
    if not states:
        return states
    ids = list(states)
    q = evaluation_queue.c
    e = evaluations.c
    async with engine.connect() as connection:
        queued = await connection.execute(
            sa.select(q.evaluator_id, q.status, sa.func.count())
            .where(q.evaluator_id.in_(ids), q.workspace_id.in_(list(workspace_ids)))
            .where(q.status.in_(("pending", "running", "failed")))
            .group_by(q.evaluator_id, q.status)
        )
        for evaluator_id, status, count in queued:
            states[evaluator_id].queue[status] = int(count)
        ended = await connection.execute(
            sa.select(
                e.evaluator_id,
                e.status,
                sa.func.count(),
                sa.func.coalesce(sa.func.sum(e.cost_usd), 0),
            )
            .where(
                e.evaluator_id.in_(ids),
                e.workspace_id.in_(list(workspace_ids)),
                e.created_at >= start_of_day(),
            )
            .group_by(e.evaluator_id, e.status)
        )
        for evaluator_id, status, count, cost in ended:
            state = states[evaluator_id]
            state.today[status] = int(count)
            state.spent_today_usd += Decimal(str(cost))
    return states


def _money(value: Decimal) -> str:
    """Dollars as exact text without trailing zeros (`0.000136`, `0`)."""
    return format(value.normalize(), "f") if value else "0"

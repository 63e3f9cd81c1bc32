"""The recorded requests a comparison replays: chat answers with their stored prompt.

A request is the last successful chat interaction of a trace (purpose `request`, so a judge's
or a replay's own call is never taken), from the newest traces the explorer's filters find in
one workspace, at most `MAX_REQUESTS`. A request whose prompt or answer was not stored cannot be
replayed or judged: it is counted and left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.schema import ai_interactions, traces
from telemetry.search import TraceFilter, trace_conditions

MAX_REQUESTS: Final = 200
EXCLUDED_SOURCE: Final = "evaluation"


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    trace_id: str
    interaction_id: str
    requested_model: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    prompt_characters: int
    answer_characters: int


@dataclass(frozen=True, slots=True)
class RequestSet:
    requests: list[RecordedRequest]
    traces: int
    more_traces: bool
    without_content: int


def _length(column: sa.Column[Any]) -> sa.ColumnElement[Any]:
    return sa.func.length(sa.cast(column, sa.Text))


async def select_requests(
    engine: AsyncEngine, filters: TraceFilter, *, workspace_id: str, limit: int = MAX_REQUESTS
) -> RequestSet:
    statement = (
        sa.select(traces.c.trace_id)
        .where(
            *trace_conditions(filters, workspace_id, engine.dialect.name),
            traces.c.source != EXCLUDED_SOURCE,
        )
        .order_by(traces.c.started_at.desc(), traces.c.trace_id.desc())
        .limit(limit + 1)
    )
    i = ai_interactions.c
    async with engine.connect() as conn:
        found = [row.trace_id for row in (await conn.execute(statement)).all()]
        taken = found[:limit]
        rows: Sequence[Any] = []
        if taken:
            rows = (
                await conn.execute(
                    sa.select(
                        i.trace_id,
                        i.interaction_id,
                        i.requested_model,
                        i.prompt_tokens,
                        i.completion_tokens,
                        _length(i.prompt).label("prompt_chars"),
                        _length(i.response).label("answer_chars"),
                    )
                    .where(
                        i.workspace_id == workspace_id,
                        i.trace_id.in_(taken),
                        i.operation == "chat",
                        i.status == "ok",
                        i.purpose == "request",
                    )
                    .order_by(i.started_at, i.interaction_id)
                )
            ).all()
    last: dict[str, Any] = {}
    for row in rows:
        last[row.trace_id] = row
    requests: list[RecordedRequest] = []
    without = 0
    for trace_id in taken:
        row = last.get(trace_id)
        if row is None:
            continue
        if row.prompt_chars is None or row.answer_chars is None:
            without += 1
            continue
        requests.append(
            RecordedRequest(
                trace_id=trace_id,
                interaction_id=row.interaction_id,
                requested_model=row.requested_model,
                prompt_tokens=row.prompt_tokens,
                completion_tokens=row.completion_tokens,
                prompt_characters=int(row.prompt_chars),
                answer_characters=int(row.answer_chars),
            )
        )
    return RequestSet(requests, len(taken), len(found) > limit, without)


async def read_prompt(engine: AsyncEngine, workspace_id: str, interaction_id: str) -> Any:
    """The stored prompt of one interaction of `workspace_id` (None when gone)."""
    i = ai_interactions.c
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                sa.select(i.prompt).where(
                    i.workspace_id == workspace_id, i.interaction_id == interaction_id
                )
            )
        ).first()
    return None if row is None else row.prompt

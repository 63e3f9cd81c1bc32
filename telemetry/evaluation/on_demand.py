"""Evaluations asked for by a person: one trace, or the traces a filter of the explorer finds.

Only a request's chat answers can be judged: its `ai_interactions` rows with operation `chat`,
status `ok` and purpose `request` (a judge's or a moderation check's own call is never judged).
Those whose prompt or answer was not stored (sampling, `store_content: none`, a cache answer)
are counted and skipped: the judge would have nothing to read.

Queuing inserts `pending` rows with reason `on_demand` into `evaluation_queue`, which the
evaluation workers drain. The queue holds a pair (evaluator, interaction) once, so asking again
for an interaction already queued, judged or failed puts that row back to `pending` with no
attempts: a re-evaluation. A row a worker is judging right now is left to finish.

Every read and write is bounded to the evaluator's workspace; a set is bounded to `MAX_TRACES`
traces, newest first.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.ids import uuid7_hex
from telemetry.schema import ai_interactions, evaluation_queue, evaluators, traces
from telemetry.search import TraceFilter, trace_conditions

MAX_TRACES: Final = 1000
"""The most traces one request for a filtered set evaluates (the newest that match)."""
REASON: Final = "on_demand"
JUDGED_SOURCE: Final = "evaluation"
"""Traces of this source record a judge's own calls; they are never judged in turn."""
_ROWS_PER_STATEMENT: Final = 500


@dataclass(frozen=True, slots=True)
class EvaluatorChoice:
    """An enabled evaluator, as a form offers it and the queue needs it."""

    evaluator_id: str
    workspace_id: str
    name: str
    judge_model: str | None
    definition: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Candidate:
    interaction_id: str
    trace_id: str
    content_characters: int | None
    """The stored prompt's and answer's length together; None when either was not stored."""


@dataclass(frozen=True, slots=True)
class Selection:
    """The chat answers of some traces that an evaluator could judge."""

    traces: int
    more_traces: bool
    """More traces matched than were taken (`MAX_TRACES`)."""
    candidates: list[Candidate]

    @property
    def with_content(self) -> list[Candidate]:
        return [c for c in self.candidates if c.content_characters is not None]

    @property
    def without_content(self) -> int:
        return sum(1 for c in self.candidates if c.content_characters is None)


@dataclass(frozen=True, slots=True)
class QueueOutcome:
    queued: int
    """Rows made pending: new ones and re-evaluations."""
    already_running: int
    """Interactions a worker is judging now, left as they are."""
    skipped_no_content: int

    def as_json(self) -> dict[str, int]:
        return {
            "queued": self.queued,
            "already_running": self.already_running,
            "skipped_no_content": self.skipped_no_content,
        }


# --- evaluators ---------------------------------------------------------------------------------


def _choice(row: sa.Row[Any]) -> EvaluatorChoice:
    definition = row.definition if isinstance(row.definition, dict) else {}
    judge = definition.get("judge")
    model = judge.get("model") if isinstance(judge, dict) else None
    return EvaluatorChoice(
        evaluator_id=row.evaluator_id,
        workspace_id=row.workspace_id,
        name=row.name,
        judge_model=model if isinstance(model, str) and model else None,
        definition=definition,
    )


def _evaluators_in(workspace_ids: Collection[str] | None) -> sa.Select[Any]:
    statement = sa.select(
        evaluators.c.evaluator_id,
        evaluators.c.workspace_id,
        evaluators.c.name,
        evaluators.c.definition,
    ).where(evaluators.c.enabled.is_(sa.true()))
    if workspace_ids is not None:
        statement = statement.where(evaluators.c.workspace_id.in_(sorted(workspace_ids)))
    return statement


async def enabled_evaluators(
    engine: AsyncEngine, *, workspace_ids: Collection[str] | None
) -> list[EvaluatorChoice]:
    """The enabled evaluators of these workspaces (None: of every one), by name."""
    if workspace_ids is not None and not workspace_ids:
        return []
    statement = _evaluators_in(workspace_ids).order_by(evaluators.c.name, evaluators.c.workspace_id)
    async with engine.connect() as conn:
        return [_choice(row) for row in (await conn.execute(statement)).all()]


async def enabled_evaluator(
    engine: AsyncEngine, evaluator_id: str, *, workspace_ids: Collection[str] | None
) -> EvaluatorChoice | None:
    """The evaluator if it is enabled and belongs to one of these workspaces (None: any)."""
    if workspace_ids is not None and not workspace_ids:
        return None
    statement = _evaluators_in(workspace_ids).where(evaluators.c.evaluator_id == evaluator_id)
    async with engine.connect() as conn:
        row = (await conn.execute(statement)).first()
    return None if row is None else _choice(row)


# --- what can be judged -------------------------------------------------------------------------


def _content_length(column: sa.Column[Any]) -> sa.ColumnElement[Any]:
    return sa.func.length(sa.cast(column, sa.Text))


async def _candidates(
    engine: AsyncEngine, trace_ids: Sequence[str], workspace_id: str
) -> list[Candidate]:
    if not trace_ids:
        return []
    i = ai_interactions.c
    statement = (
        sa.select(
            i.interaction_id,
            i.trace_id,
            (_content_length(i.prompt) + _content_length(i.response)).label("characters"),
        )
        .where(
            i.workspace_id == workspace_id,
            i.trace_id.in_(list(trace_ids)),
            i.operation == "chat",
            i.status == "ok",
            i.purpose == "request",
        )
        .order_by(i.started_at, i.interaction_id)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(statement)).all()
    return [
        Candidate(
            row.interaction_id,
            row.trace_id,
            None if row.characters is None else int(row.characters),
        )
        for row in rows
    ]


async def select_trace(
    engine: AsyncEngine, trace_id: str, *, workspace_id: str
) -> Selection | None:
    """The judgeable answers of one trace of `workspace_id`; None when it holds no such trace."""
    statement = sa.select(traces.c.trace_id).where(
        traces.c.trace_id == trace_id,
        traces.c.workspace_id == workspace_id,
        traces.c.source != JUDGED_SOURCE,
    )
    async with engine.connect() as conn:
        if (await conn.execute(statement)).first() is None:
            return None
    return Selection(1, False, await _candidates(engine, [trace_id], workspace_id))


async def select_traces(
    engine: AsyncEngine, filters: TraceFilter, *, workspace_id: str, limit: int = MAX_TRACES
) -> Selection:
    """The judgeable answers of the newest `limit` traces of `workspace_id` that `filters`
    (the traces explorer's) find."""
    statement = (
        sa.select(traces.c.trace_id)
        .where(
            *trace_conditions(filters, workspace_id, engine.dialect.name),
            traces.c.source != JUDGED_SOURCE,
        )
        .order_by(traces.c.started_at.desc(), traces.c.trace_id.desc())
        .limit(limit + 1)
    )
    async with engine.connect() as conn:
        found = [row.trace_id for row in (await conn.execute(statement)).all()]
    taken = found[:limit]
    return Selection(len(taken), len(found) > limit, await _candidates(engine, taken, workspace_id))


# --- queuing ------------------------------------------------------------------------------------


def _upsert(dialect: str, rows: list[dict[str, Any]]) -> sa.Insert:
    """Insert pending rows; a pair already in the queue goes back to pending unless a worker
    holds it."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(evaluation_queue).values(rows)
    return statement.on_conflict_do_update(
        index_elements=["evaluator_id", "interaction_id"],
        set_={
            "status": "pending",
            "reason": REASON,
            "attempts": 0,
            "next_attempt_at": statement.excluded.next_attempt_at,
            "claimed_until": None,
            "last_error": None,
            "spent_usd": None,
            "spent_prompt_tokens": None,
            "spent_completion_tokens": None,
        },
        where=evaluation_queue.c.status != "running",
    )


async def enqueue(
    engine: AsyncEngine,
    evaluator: EvaluatorChoice,
    selection: Selection,
    *,
    now: datetime | None = None,
) -> QueueOutcome:
    """Queue the selection's answers that have content for `evaluator`. The selection must
    have been made in the evaluator's workspace."""
    moment = now or datetime.now(UTC)
    rows = [
        {
            "queue_id": uuid7_hex(),
            "workspace_id": evaluator.workspace_id,
            "evaluator_id": evaluator.evaluator_id,
            "trace_id": candidate.trace_id,
            "interaction_id": candidate.interaction_id,
            "reason": REASON,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": moment,
            "claimed_until": None,
            "last_error": None,
            "created_at": moment,
        }
        for candidate in selection.with_content
    ]
    queued = 0
    async with engine.begin() as conn:
        for start in range(0, len(rows), _ROWS_PER_STATEMENT):
            chunk = rows[start : start + _ROWS_PER_STATEMENT]
            result = await conn.execute(_upsert(engine.dialect.name, chunk))
            queued += result.rowcount
    return QueueOutcome(
        queued=queued,
        already_running=len(rows) - queued,
        skipped_no_content=selection.without_content,
    )

"""Judged requests planted straight into the database: a request (trace, its rule decisions, one
interaction with its cost) written by the batch writer, and the judge's verdicts on it as
`evaluations` rows, as the evaluation worker would leave them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from telemetry.ids import span_id_hex, uuid7_hex
from telemetry.records import (
    DecisionRecord,
    InteractionRecord,
    SpanRecord,
    TraceBundle,
    TraceRecord,
)
from telemetry.schema import DEFAULT_WORKSPACE_ID, evaluations
from telemetry.writers import BatchWriter


@dataclass
class Judged:
    """One request and what one evaluator made of it."""

    at: datetime
    model: str
    scores: dict[str, float] = field(default_factory=dict)
    status: str = "ok"
    evaluator: str = "helpfulness-check"
    workspace_id: str = DEFAULT_WORKSPACE_ID
    tags: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    cost_usd: Decimal | None = Decimal("0.002")
    judge_cost_usd: Decimal | None = Decimal("0.0001")
    rationale: str | None = "The answer addresses the question."
    judge_trace_id: str | None = None
    trace_id: str = field(default_factory=lambda: uuid7_hex())
    interaction_id: str = field(default_factory=lambda: uuid7_hex())

    @property
    def mean(self) -> float | None:
        if self.status != "ok" or not self.scores:
            return None
        return sum(self.scores.values()) / len(self.scores)


def request_bundle(judged: Judged) -> TraceBundle:
    started = judged.at.timestamp() - 2.0
    ended = started + 1.0
    root = span_id_hex()
    bundle = TraceBundle(
        trace=TraceRecord(
            trace_id=judged.trace_id,
            workspace_id=judged.workspace_id,
            api_key_id=None,
            request_id=f"req-{judged.trace_id[-8:]}",
            route="/v1/chat/completions",
            started_at=started,
            ended_at=ended,
            status="ok",
            http_status=200,
            requested_model=judged.model,
            provider="mock",
            provider_model=judged.model,
            stream=False,
            tags=list(judged.tags),
        ),
        spans=[
            SpanRecord(
                span_id=root,
                trace_id=judged.trace_id,
                workspace_id=judged.workspace_id,
                name="gateway.request",
                component="gateway",
                started_at=started,
                ended_at=ended,
            )
        ],
    )
    for sequence, rule in enumerate(judged.rules, start=1):
        bundle.decisions.append(
            DecisionRecord(
                decision_id=uuid7_hex(),
                trace_id=judged.trace_id,
                workspace_id=judged.workspace_id,
                sequence=sequence,
                type="rule_evaluation",
                component="rules",
                rule_id=rule,
                rule_name=rule,
                created_at=started + sequence / 1000,
            )
        )
    bundle.interactions.append(
        InteractionRecord(
            interaction_id=judged.interaction_id,
            trace_id=judged.trace_id,
            workspace_id=judged.workspace_id,
            api_key_id=None,
            provider="mock",
            requested_model=judged.model,
            provider_model=judged.model,
            deployment="mock-1",
            attempt=1,
            operation="chat",
            stream=False,
            prompt_tokens=10,
            completion_tokens=20,
            total_tokens=30,
            cost_usd=judged.cost_usd,
            started_at=started,
            ended_at=ended,
            status="ok",
            http_status=200,
            cache_hit=False,
        )
    )
    return bundle


def evaluation_row(judged: Judged) -> dict[str, Any]:
    return {
        "evaluation_id": uuid7_hex(),
        "workspace_id": judged.workspace_id,
        "evaluator_id": f"ev-{judged.evaluator}"[:32],
        "evaluator_name": judged.evaluator,
        "trace_id": judged.trace_id,
        "interaction_id": judged.interaction_id,
        "requested_model": judged.model,
        "provider_model": judged.model,
        "judge_model": "judge",
        "judge_trace_id": judged.judge_trace_id,
        "status": judged.status,
        "scores": judged.scores if judged.status == "ok" else {},
        "score": judged.mean,
        "rationale": judged.rationale if judged.status == "ok" else None,
        "flags": judged.flags,
        "prompt_tokens": 300,
        "completion_tokens": 60,
        "cost_usd": judged.judge_cost_usd,
        "latency_ms": 850.0,
        "attempts": 1,
        "error": None if judged.status == "ok" else f"{judged.status}: planted",
        "created_at": judged.at,
    }


async def plant(engine: Any, history: list[Judged], *, with_requests: bool = True) -> None:
    """Write the requests (unless `with_requests` is false) and their evaluations."""
    if with_requests:
        await BatchWriter(engine).write([request_bundle(judged) for judged in history])
    async with engine.begin() as connection:
        await connection.execute(sa.insert(evaluations), [evaluation_row(j) for j in history])


def spread(start: datetime, count: int, every: timedelta) -> list[datetime]:
    return [start + every * n for n in range(count)]

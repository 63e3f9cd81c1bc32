"""A planted history for the insights (`telemetry.insights`), with what each insight must find.

Over one week (`START` to `END`) in the workspace asked for, and the same kinds of rows in
another workspace and just before the week, which no insight of the workspace may count:

- workload `assistant` scored by evaluator `helpfulness`: served by `gpt-4o` (100 calls at
  $0.01, 40 scores of 78/82), `gpt-4o-mini` (40 calls at $0.001, 40 scores of 77/81: 1 point
  lower, well within the 2-point margin), `cheap-bad` (40 calls at $0.0005, 40 scores of 58/62:
  worse) and `tiny` (5 calls at $0.0002, 5 scores: not enough data);
- workload `solo` scored by `helpfulness`, served by one model only;
- `faq`: the same prompt answered 5 times uncached ($0.01 each), once more from the cache, 2
  other prompts once, 3 calls without a stored prompt, and the same prompt 4 times by a judge
  (purpose `evaluation`, never a user's repeat);
- `summariser`: 40 answers of 50-200 tokens with `max_tokens` 4096 (flagged); `writer`: 40
  answers of 700-900 tokens with `max_tokens` 1024 (not flagged);
- errors: 6 `openai` `rate_limit` errors whose messages differ only in ids and numbers, and 2
  `anthropic` `overloaded_error` "Overloaded".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.ids import uuid7_hex
from telemetry.records import TraceBundle
from telemetry.schema import ai_interactions, evaluations
from telemetry.writers import BatchWriter
from tests.telemetry import make_bundle

START = datetime(2024, 5, 6, tzinfo=UTC)
END = START + timedelta(days=7)
FAQ_PROMPT = [{"role": "user", "content": "What are your opening hours?"}]
RATE_LIMIT = (
    "Rate limit reached for org-{org} in organization on tokens per min: Limit 30000, Used {used}."
)


@dataclass
class Planted:
    workspace_id: str
    faq_traces: list[str] = field(default_factory=list)
    rate_limit_traces: list[str] = field(default_factory=list)
    overloaded_traces: list[str] = field(default_factory=list)
    without_max_tokens: int = 0
    bundles: list[TraceBundle] = field(default_factory=list)
    judge_traces: list[str] = field(default_factory=list)


def call(
    at: datetime,
    workspace_id: str,
    *,
    model: str,
    served: str | None = None,
    provider: str = "openai",
    cost: Decimal | None = Decimal("0.001"),
    status: str = "ok",
    cache_hit: bool = False,
    prompt: Any = None,
    completion_tokens: int = 5,
    features: dict[str, Any] | None = None,
    error: tuple[str, str] | None = None,
    api_key_id: str | None = "key1",
) -> TraceBundle:
    bundle = make_bundle(
        started_at=at.timestamp(),
        cost=cost,
        status=status,
        cache_hit=cache_hit,
        completion_tokens=completion_tokens,
        model=model,
        provider=provider,
        workspace_id=workspace_id,
        api_key_id=api_key_id,
    )
    error_type, message = error if error else (None, None)
    trace = msgspec.structs.replace(
        bundle.trace,
        provider_model=served or model,
        features=features if features is not None else {"model": model},
        error_type=error_type,
        error_message=message,
    )
    interactions = [
        msgspec.structs.replace(
            interaction,
            provider_model=served or model,
            prompt=prompt,
            error_type=error_type if error else interaction.error_type,
            error_message=message,
        )
        for interaction in bundle.interactions
    ]
    return msgspec.structs.replace(bundle, trace=trace, interactions=interactions)


def _scores(low: float, count: int) -> list[float]:
    """`count` scores alternating `low` and `low + 4`: mean `low + 2`, spread 2."""
    return [low if n % 2 == 0 else low + 4 for n in range(count)]


def history(workspace_id: str, start: datetime = START) -> tuple[Planted, list[dict[str, Any]]]:
    """The bundles of one workspace's week and its evaluations' rows."""
    planted = Planted(workspace_id)
    add = planted.bundles.append
    minute = timedelta(minutes=7)
    clock = iter(start + timedelta(hours=1) + n * minute for n in range(10_000))
    served_calls = {
        "gpt-4o": (100, Decimal("0.01")),
        "gpt-4o-mini": (40, Decimal("0.001")),
        "cheap-bad": (40, Decimal("0.0005")),
        "tiny": (5, Decimal("0.0002")),
    }
    for served, (calls, cost) in served_calls.items():
        for _ in range(calls):
            add(call(next(clock), workspace_id, model="assistant", served=served, cost=cost))
    for _ in range(10):
        add(call(next(clock), workspace_id, model="solo", cost=Decimal("0.002")))
    for _ in range(5):
        bundle = call(
            next(clock), workspace_id, model="faq", cost=Decimal("0.01"), prompt=FAQ_PROMPT
        )
        planted.faq_traces.append(bundle.trace.trace_id)
        add(bundle)
    add(
        call(
            next(clock),
            workspace_id,
            model="faq",
            cost=Decimal(0),
            prompt=FAQ_PROMPT,
            cache_hit=True,
        )
    )
    for text in ("Where are you?", "Who are you?"):
        add(
            call(next(clock), workspace_id, model="faq", prompt=[{"role": "user", "content": text}])
        )
    for _ in range(3):
        add(call(next(clock), workspace_id, model="faq", cost=Decimal("0.01")))
    for _ in range(4):
        bundle = call(next(clock), workspace_id, model="faq", prompt=FAQ_PROMPT)
        bundle = msgspec.structs.replace(
            bundle, trace=msgspec.structs.replace(bundle.trace, source="evaluation")
        )
        planted.judge_traces.append(bundle.trace.trace_id)
        add(bundle)
    for n in range(40):
        add(
            call(
                next(clock),
                workspace_id,
                model="summariser",
                completion_tokens=50 + n * 150 // 39,
                features={"model": "summariser", "max_tokens": 4096},
            )
        )
        add(
            call(
                next(clock),
                workspace_id,
                model="writer",
                completion_tokens=700 + n * 5,
                features={"model": "writer", "max_completion_tokens": 1024},
            )
        )
    for n in range(6):
        message = RATE_LIMIT.format(org=f"a{n}b{n * 7}c", used=29000 + n * 131)
        bundle = call(
            next(clock),
            workspace_id,
            model="assistant",
            served="gpt-4o",
            status="error",
            cost=None,
            error=("rate_limit", message),
        )
        planted.rate_limit_traces.append(bundle.trace.trace_id)
        add(bundle)
    for _ in range(2):
        bundle = call(
            next(clock),
            workspace_id,
            model="assistant",
            served="claude-3-5-sonnet",
            provider="anthropic",
            status="error",
            cost=None,
            error=("overloaded_error", "Overloaded"),
        )
        planted.overloaded_traces.append(bundle.trace.trace_id)
        add(bundle)
    planted.without_max_tokens = sum(
        1
        for b in planted.bundles
        if b.trace.status == "ok"
        and b.trace.source != "evaluation"
        and "max_tokens" not in b.trace.features
        and "max_completion_tokens" not in b.trace.features
    )
    rows = []
    scored = {"gpt-4o": (78.0, 40), "gpt-4o-mini": (77.0, 40), "cheap-bad": (58.0, 40)}
    scored["tiny"] = (80.0, 5)
    moment = start + timedelta(days=2)
    for served, (low, count) in scored.items():
        for score in _scores(low, count):
            rows.append(_evaluation(workspace_id, "assistant", served, score, moment))
    for score in _scores(70.0, 30):
        rows.append(_evaluation(workspace_id, "solo", "solo", score, moment))
    rows.append(_evaluation(workspace_id, "assistant", "gpt-4o-mini", None, moment, "failed"))
    return planted, rows


def _evaluation(
    workspace_id: str,
    requested: str,
    served: str,
    score: float | None,
    at: datetime,
    status: str = "ok",
) -> dict[str, Any]:
    return {
        "evaluation_id": uuid7_hex(),
        "workspace_id": workspace_id,
        "evaluator_id": "ev1",
        "evaluator_name": "helpfulness",
        "trace_id": uuid7_hex(),
        "interaction_id": uuid7_hex(),
        "requested_model": requested,
        "provider_model": served,
        "judge_model": "judge",
        "status": status,
        "scores": {} if score is None else {"helpfulness": score},
        "score": score,
        "flags": [],
        "attempts": 1,
        "created_at": at,
    }


async def plant_insights(engine: AsyncEngine, workspace_id: str, other_workspace: str) -> Planted:
    """The week of `workspace_id`, and the same in `other_workspace` and just before the week."""
    planted, rows = history(workspace_id)
    other, other_rows = history(other_workspace)
    early, early_rows = history(workspace_id, START - timedelta(days=8))
    await BatchWriter(engine).write([*planted.bundles, *other.bundles, *early.bundles])
    judge_traces = [*planted.judge_traces, *other.judge_traces, *early.judge_traces]
    async with engine.begin() as connection:
        await connection.execute(sa.insert(evaluations), [*rows, *other_rows, *early_rows])
        await connection.execute(
            sa.update(ai_interactions)
            .where(ai_interactions.c.trace_id.in_(judge_traces))
            .values(purpose="evaluation")
        )
    return planted

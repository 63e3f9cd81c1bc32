"""A builder of whole requests for the roll-up tests: one trace bundle with the attempts,
decisions, tags, end user and guardrail findings a test names, and nothing else."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from telemetry.ids import span_id_hex, uuid7_hex
from telemetry.records import (
    DecisionRecord,
    GuardrailViolationRecord,
    InteractionRecord,
    TraceBundle,
    TraceRecord,
)
from telemetry.schema import DEFAULT_WORKSPACE_ID
from tests.telemetry import MINUTE


@dataclass(frozen=True)
class Attempt:
    """One provider attempt (an `ai_interactions` row)."""

    provider: str = "openai"
    served: str = "gpt-4o-mini-2024"
    deployment: str = "primary"
    status: str = "ok"
    prompt: int | None = 10
    completion: int | None = 5
    cached: int | None = None
    cost: Decimal | None = Decimal("0.001")
    cost_saved: Decimal | None = None
    ttft_ms: float | None = None
    cache_hit: bool = False
    error_type: str | None = None


@dataclass(frozen=True)
class Finding:
    """One guardrail violation."""

    guardrail: str
    action: str
    entities: Mapping[str, int] = field(default_factory=dict)


FAILED = Attempt(status="error", prompt=None, completion=None, cost=None, error_type="timeout")
"""An attempt the provider failed without reporting usage: it cost nothing."""


def request(
    *,
    at: float = MINUTE + 1.5,
    duration_ms: float = 100.0,
    workspace_id: str = DEFAULT_WORKSPACE_ID,
    api_key_id: str | None = "key1",
    model: str = "gpt-4o-mini",
    status: str = "ok",
    error_type: str | None = None,
    source: str = "proxy",
    attempts: Sequence[Attempt] = (Attempt(),),
    overhead_ms: float | None = None,
    tags: Sequence[str] = (),
    end_user: str | None = None,
    rules: Sequence[str] = (),
    decisions: Sequence[str] = (),
    findings: Sequence[Finding] = (),
) -> TraceBundle:
    """A request that started `at` (epoch seconds) and took `duration_ms`; `rules` are the ids of
    the rules that matched, `decisions` the types of further decisions (retry, fallback...)."""
    trace_id = uuid7_hex()
    step = duration_ms / 1000.0 / (len(attempts) + 1)
    interactions = [
        InteractionRecord(
            interaction_id=uuid7_hex(),
            trace_id=trace_id,
            workspace_id=workspace_id,
            span_id=span_id_hex(),
            api_key_id=api_key_id,
            provider=a.provider,
            requested_model=model,
            provider_model=a.served,
            deployment=a.deployment,
            attempt=n + 1,
            operation="chat",
            prompt_tokens=a.prompt,
            completion_tokens=a.completion,
            cached_tokens=a.cached,
            total_tokens=None if a.prompt is None else a.prompt + (a.completion or 0),
            cost_usd=a.cost,
            cost_saved_usd=a.cost_saved,
            started_at=at + n * step,
            ended_at=at + (n + 1) * step,
            ttft_ms=a.ttft_ms,
            status=a.status,
            error_type=a.error_type,
            cache_hit=a.cache_hit,
        )
        for n, a in enumerate(attempts)
    ]
    made: list[DecisionRecord] = []

    def decide(type: str, rule_id: str | None = None) -> None:
        made.append(
            DecisionRecord(
                decision_id=uuid7_hex(),
                trace_id=trace_id,
                workspace_id=workspace_id,
                sequence=len(made),
                type=type,
                component="rules" if rule_id else "upstream",
                rule_id=rule_id,
                created_at=at,
            )
        )

    for rule_id in rules:
        decide("rule_evaluation", rule_id)
    for type in decisions:
        decide(type)
    return TraceBundle(
        trace=TraceRecord(
            trace_id=trace_id,
            workspace_id=workspace_id,
            api_key_id=api_key_id,
            request_id=f"req-{trace_id[-8:]}",
            end_user=end_user,
            route="/v1/chat/completions",
            started_at=at,
            ended_at=at + duration_ms / 1000.0,
            status=status,
            http_status=200 if status == "ok" else 502,
            requested_model=model,
            provider=attempts[-1].provider if attempts else None,
            provider_model=attempts[-1].served if attempts else None,
            error_type=error_type,
            overhead_ms=overhead_ms,
            tags=list(tags),
            source=source,
        ),
        decisions=made,
        interactions=interactions,
        violations=[
            GuardrailViolationRecord(
                violation_id=uuid7_hex(),
                trace_id=trace_id,
                workspace_id=workspace_id,
                api_key_id=api_key_id,
                guardrail=f.guardrail,
                kind="pii",
                direction="input",
                action=f.action,
                entities=dict(f.entities),
                score=1.0,
                latency_us=10.0,
                created_at=at,
            )
            for f in findings
        ],
    )

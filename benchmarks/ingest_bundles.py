"""Synthetic trace bundles shaped like the gateway's, for the `ingest` scenario.

Each bundle is one chat request: a root span with four stage spans under it (authentication,
steering, limits, the provider call), four decisions (rule evaluation, rate limit, cache,
model selection), one provider attempt or, for a share of requests, a failed attempt and a
fallback that answered (one more span and a `fallback` decision), tags, metadata, a few hundred
bytes of prompt and answer, and now and then a guardrail finding. Ids are fresh for every
bundle, times are "now", so rows land in today's roll-up buckets and partitions.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from decimal import Decimal

import msgspec

from telemetry.ids import span_id_hex, uuid7_hex
from telemetry.records import (
    DecisionRecord,
    GuardrailViolationRecord,
    InteractionRecord,
    SpanRecord,
    TraceBundle,
    TraceRecord,
)

TABLES = ("traces", "spans", "decisions", "ai_interactions", "guardrail_violations")
_MODELS = ("gpt-4o-mini", "gpt-4o", "claude-3-5-haiku", "gemini-1.5-flash")
_TEAMS = ("search", "support", "billing", "growth")
_PROMPT = "Summarise the customer's last three messages and suggest a reply. " * 5
_ANSWER = "The customer asks for a refund of the duplicate charge on the March invoice. " * 5


@dataclass(frozen=True, slots=True)
class BundleMix:
    """How the synthetic traffic is made up."""

    workspaces: int = 4
    keys: int = 24
    """Each key belongs to one workspace."""
    end_users_a_key: int = 20
    fallback_share: float = 0.5
    """Requests whose first attempt fails and a fallback answers: two interactions."""
    violation_share: float = 0.1

    @property
    def interactions_per_bundle(self) -> float:
        return 1.0 + self.fallback_share


def rows_of(bundle: TraceBundle) -> tuple[int, int, int, int, int]:
    """The rows a bundle adds to each table of `TABLES`, in that order."""
    return (
        1,
        len(bundle.spans),
        len(bundle.decisions),
        len(bundle.interactions),
        len(bundle.violations),
    )


class BundleFactory:
    """Makes bundles; seeded, so two runs send the same mix."""

    def __init__(self, mix: BundleMix = BundleMix(), seed: int = 17) -> None:
        self.mix = mix
        self._draw = random.Random(seed)
        self._workspaces = [f"bench-ws-{n}" for n in range(mix.workspaces)]
        self._keys = [f"bench-key-{n}" for n in range(mix.keys)]

    def make(self) -> TraceBundle:
        draw = self._draw
        now = time.time()
        key_number = draw.randrange(len(self._keys))
        key = self._keys[key_number]
        workspace = self._workspaces[key_number % len(self._workspaces)]
        model = draw.choice(_MODELS)
        fallback = draw.random() < self.mix.fallback_share
        trace_id = uuid7_hex()
        root = span_id_hex()

        def span(
            name: str, component: str, start: float, end: float, **extra: object
        ) -> SpanRecord:
            return SpanRecord(
                span_id=span_id_hex(),
                trace_id=trace_id,
                workspace_id=workspace,
                parent_span_id=root,
                name=name,
                component=component,
                started_at=now + start,
                ended_at=now + end,
                attributes=dict(extra),
            )

        def decision(sequence: int, kind: str, component: str, **output: object) -> DecisionRecord:
            return DecisionRecord(
                decision_id=uuid7_hex(),
                trace_id=trace_id,
                workspace_id=workspace,
                sequence=sequence,
                type=kind,
                component=component,
                input={"model": model, "key": key},
                output=dict(output),
                reasoning=f"{kind} for {model}",
                evaluation_us=draw.uniform(2.0, 40.0),
                created_at=now + 0.0002 * sequence,
            )

        calls = [span("provider.call", "providers", 0.0005, 0.3, **{"gen_ai.system": "openai"})]
        decisions = [
            decision(0, "rule_evaluation", "steering", rules_matched=1),
            decision(1, "rate_limit", "limits", allowed=True, remaining=draw.randrange(1000)),
            decision(2, "cache_decision", "cache", result="miss"),
            decision(3, "model_selection", "router", provider="openai", model=model),
        ]
        interactions = [self._interaction(trace_id, workspace, key, model, calls[0], fallback)]
        if fallback:
            calls.append(span("provider.call", "providers", 0.31, 0.6, attempt=2))
            decisions.append(decision(4, "fallback", "router", to="anthropic"))
            interactions.append(self._interaction(trace_id, workspace, key, model, calls[1], False))
        violations = []
        if draw.random() < self.mix.violation_share:
            violations.append(
                GuardrailViolationRecord(
                    violation_id=uuid7_hex(),
                    trace_id=trace_id,
                    workspace_id=workspace,
                    api_key_id=key,
                    guardrail="pii",
                    kind="pii",
                    direction="input",
                    action="mask",
                    entities={"email": 1},
                    score=1.0,
                    latency_us=35.0,
                    created_at=now,
                )
            )
        last = interactions[-1]
        return TraceBundle(
            trace=TraceRecord(
                trace_id=trace_id,
                workspace_id=workspace,
                api_key_id=key,
                request_id=f"req-{trace_id[-12:]}",
                end_user=f"user-{key_number}-{draw.randrange(self.mix.end_users_a_key)}",
                route="/v1/chat/completions",
                started_at=now,
                ended_at=last.ended_at + 0.0004,
                requested_model=model,
                provider=last.provider,
                provider_model=last.provider_model,
                overhead_ms=0.31,
                tags=["prod", draw.choice(_TEAMS)],
                metadata={"team": draw.choice(_TEAMS), "feature": "reply-draft", "ticket": 4711},
                features={"token_estimate": 180, "has_tools": False, "stream": False},
            ),
            spans=[
                SpanRecord(
                    span_id=root,
                    trace_id=trace_id,
                    workspace_id=workspace,
                    name="gateway.request",
                    component="gateway",
                    started_at=now,
                    ended_at=last.ended_at + 0.0004,
                ),
                span("auth", "gateway", 0.00001, 0.00004),
                span("steer", "rules", 0.00004, 0.0001, rules=12),
                span("limits", "limits", 0.0001, 0.00015),
                *calls,
            ],
            decisions=decisions,
            interactions=interactions,
            violations=violations,
        )

    def _interaction(
        self, trace_id: str, workspace: str, key: str, model: str, call: SpanRecord, fails: bool
    ) -> InteractionRecord:
        prompt_tokens = self._draw.randrange(80, 400)
        completion_tokens = 0 if fails else self._draw.randrange(20, 300)
        return InteractionRecord(
            interaction_id=uuid7_hex(),
            trace_id=trace_id,
            workspace_id=workspace,
            span_id=call.span_id,
            api_key_id=key,
            provider="openai" if call.attributes.get("attempt") is None else "anthropic",
            requested_model=model,
            provider_model=f"{model}-2024",
            deployment="primary" if call.attributes.get("attempt") is None else "fallback",
            attempt=int(call.attributes.get("attempt", 1)),
            operation="chat",
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=prompt_tokens + completion_tokens,
            cost_usd=None
            if fails
            else Decimal(prompt_tokens * 15 + completion_tokens * 60) / 10**8,
            started_at=call.started_at,
            ended_at=call.ended_at,
            ttft_ms=None if fails else 42.0,
            status="error" if fails else "ok",
            http_status=502 if fails else 200,
            finish_reason=None if fails else "stop",
            error_type="upstream_error" if fails else None,
            error_message="upstream answered 502" if fails else None,
            prompt=[{"role": "user", "content": _PROMPT}],
            response=None if fails else [{"role": "assistant", "content": _ANSWER}],
        )


class BundleStream:
    """Bundles from a pool of `BundleFactory` templates, each sent with fresh ids.

    Building a bundle from scratch costs about as much as writing it, and on two cores that
    would measure the generator rather than the recorder; a copy that changes only the ids
    (and keeps every other value, shared with its template) costs a fraction of it. Ids are
    the run's prefix and a serial number, as long as the gateway's, so no two collide.
    """

    def __init__(self, factory: BundleFactory, pool: int = 2048) -> None:
        self._templates = [factory.make() for _ in range(pool)]
        self._prefix = uuid7_hex()[:12]
        self._serial = 0

    def next(self) -> TraceBundle:
        template = self._templates[self._serial % len(self._templates)]
        self._serial += 1
        tail = f"{self._prefix}{self._serial:012x}"
        trace_id = f"{tail}{template.trace.trace_id[24:]}"
        span_tail = f"{self._prefix[8:]}{self._serial:011x}"
        ids = {s.span_id: f"{span_tail}{n:x}" for n, s in enumerate(template.spans)}
        replace = msgspec.structs.replace
        return TraceBundle(
            trace=replace(template.trace, trace_id=trace_id),
            spans=[
                replace(
                    s,
                    span_id=ids[s.span_id],
                    trace_id=trace_id,
                    parent_span_id=ids.get(s.parent_span_id or ""),
                )
                for s in template.spans
            ],
            decisions=[
                replace(d, decision_id=f"{tail}{n:08x}", trace_id=trace_id)
                for n, d in enumerate(template.decisions)
            ],
            interactions=[
                replace(
                    i,
                    interaction_id=f"{tail}{n:08x}",
                    trace_id=trace_id,
                    span_id=ids.get(i.span_id or ""),
                )
                for n, i in enumerate(template.interactions)
            ],
            violations=[
                replace(v, violation_id=f"{tail}{n:08x}", trace_id=trace_id)
                for n, v in enumerate(template.violations)
            ],
        )

"""What the request path hands to the recorder: plain structs, cheap to build on the hot path.

The structs are not tracked by the cyclic garbage collector (`gc=False`: they never form
cycles), so thousands of them waiting in the recorder's queue add nothing to collection pauses.

Times are Unix epoch seconds (floats, UTC); the writer turns them into timestamps off the hot
path. Money is a `Decimal` in US dollars, or `None` when the price is unknown (never a guessed 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Final

import msgspec

OWN_CALL_SOURCES: Final = ("evaluation", "moderation")
"""Trace sources of the gateway's own model calls (a quality judge's, a moderation judge's):
left out of the users' usage roll-ups and of the traces explorer unless asked for."""


class SpanRecord(msgspec.Struct, kw_only=True, gc=False):
    span_id: str
    trace_id: str
    workspace_id: str
    parent_span_id: str | None = None
    name: str
    component: str
    started_at: float
    ended_at: float
    status: str = "ok"  # ok | error | cancelled
    attributes: dict[str, Any] = msgspec.field(default_factory=dict)
    events: Sequence[dict[str, Any]] = msgspec.field(default_factory=list)
    """The gateway's own spans carry `()` when they have none: an empty list per span would be
    one more container for the cyclic collector to watch while the span waits to be written."""

    @property
    def duration_ms(self) -> float:
        return (self.ended_at - self.started_at) * 1000.0


class DecisionRecord(msgspec.Struct, kw_only=True, gc=False):
    decision_id: str
    trace_id: str
    workspace_id: str
    sequence: int
    type: str  # rule_evaluation | model_selection | rate_limit | budget_check | cache_decision | guardrail | retry | fallback
    component: str
    rule_id: str | None = None
    rule_name: str | None = None
    input: dict[str, Any] = msgspec.field(default_factory=dict)
    output: dict[str, Any] = msgspec.field(default_factory=dict)
    reasoning: str = ""
    evaluation_us: float = 0.0
    created_at: float


class InteractionRecord(msgspec.Struct, kw_only=True, gc=False):
    interaction_id: str
    trace_id: str
    workspace_id: str
    span_id: str | None = None
    api_key_id: str | None = None
    provider: str
    requested_model: str
    provider_model: str
    deployment: str
    attempt: int = 1
    operation: str  # chat | embeddings
    stream: bool = False
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    total_tokens: int | None = None
    usage_estimated: bool = False  # the provider reported none: guessed from the text streamed
    cost_usd: Decimal | None = None
    cost_saved_usd: Decimal | None = None  # on a cache hit: what the provider call would have cost
    started_at: float
    ended_at: float
    ttft_ms: float | None = None
    tokens_per_second: float | None = None
    status: str = "ok"  # ok | error | cancelled
    http_status: int | None = None
    finish_reason: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    cache_hit: bool = False
    prompt: Any = None  # stored only as telemetry.store_content allows
    response: Any = None
    purpose: str = "request"  # request | evaluation (a judge's call) | moderation

    @property
    def latency_ms(self) -> float:
        return (self.ended_at - self.started_at) * 1000.0


class TraceRecord(msgspec.Struct, kw_only=True, gc=False):
    trace_id: str
    workspace_id: str
    api_key_id: str | None = None
    request_id: str
    end_user: str | None = None
    route: str
    method: str = "POST"
    started_at: float
    ended_at: float
    status: str = "ok"  # ok | error | cancelled
    http_status: int = 200
    requested_model: str | None = None
    provider: str | None = None
    provider_model: str | None = None
    stream: bool = False
    error_type: str | None = None
    error_message: str | None = None
    overhead_ms: float | None = None
    tags: list[str] = msgspec.field(default_factory=list)
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    # Routing features kept even when content is not, so rules can be replayed against history.
    features: dict[str, Any] = msgspec.field(default_factory=dict)
    parent_trace_id: str | None = None
    parent_span_id: str | None = None
    escaped: bool = False
    source: str = "proxy"  # proxy | otlp | evaluation | moderation: how the trace was made

    @property
    def duration_ms(self) -> float:
        return (self.ended_at - self.started_at) * 1000.0


class GuardrailViolationRecord(msgspec.Struct, kw_only=True, gc=False):
    """A guardrail's finding: counts per entity type, never the matched text."""

    violation_id: str
    trace_id: str
    workspace_id: str
    api_key_id: str | None = None
    guardrail: str
    kind: str  # pii | prompt_injection | ...
    direction: str  # input | output
    action: str  # block | mask | log
    entities: dict[str, int] = msgspec.field(default_factory=dict)
    score: float
    latency_us: float
    created_at: float


class TraceBundle(msgspec.Struct, kw_only=True, gc=False):
    """Everything one request produced: enqueued to the recorder in a single call."""

    trace: TraceRecord
    spans: list[SpanRecord] = msgspec.field(default_factory=list)
    decisions: list[DecisionRecord] = msgspec.field(default_factory=list)
    interactions: list[InteractionRecord] = msgspec.field(default_factory=list)
    # Defaulted, so spill files written before violations were recorded still decode.
    violations: list[GuardrailViolationRecord] = msgspec.field(default_factory=list)
    for_evaluation: bool = False
    """Set by whatever picks requests for evaluation: the trace is then kept whole even when
    `telemetry.sampling` would keep only its figures, so an evaluator finds its content."""

"""Requests as the proxy records them, built through `RequestTrace`, for the OTLP export tests:
a root span, an auth span, a provider call with its interaction, and the decisions a test asks
for."""

from __future__ import annotations

from decimal import Decimal

from telemetry.ids import uuid7_hex
from telemetry.records import InteractionRecord, TraceBundle, TraceRecord
from telemetry.schema import DEFAULT_WORKSPACE_ID
from telemetry.trace import RequestTrace


def proxied(
    *,
    traceparent: str | None = None,
    rule: str | None = None,
    cache_status: str = "MISS",
    provider: str = "mock",
    failed: bool = False,
    source: str = "proxy",
) -> TraceBundle:
    trace = RequestTrace(traceparent)
    start = trace.start
    trace.add_span("auth", "gateway", start, start + 0.0001, attributes={"key.id": "k1"})
    trace.add_decision(
        "rule_evaluation",
        "rules",
        input={"rules_evaluated": 1},
        output={},
        reasoning="1 of 1 evaluated rules matched" if rule else "none of 1 rules matched",
        evaluation_us=3.0,
    )
    if rule is not None:
        trace.add_decision(
            "rule_evaluation",
            "rules",
            rule_id=rule,
            rule_name=f"{rule} name",
            input={"matched_on": ["model"]},
            output={"route_to": "mock-gpt"},
            reasoning="matched: model",
            evaluation_us=0.0,
        )
    trace.add_decision(
        "cache_decision",
        "cache",
        input={"read": True},
        output={"status": cache_status, "degraded": False},
        reasoning="temperature 0",
        evaluation_us=1.0,
    )
    called = start + 0.001
    span_id = trace.add_span(
        "provider.chat",
        "provider",
        called,
        called + 0.05,
        status="error" if failed else "ok",
        attributes={"gen_ai.provider.name": provider, "error.type": "502" if failed else None},
    )
    trace.interactions.append(
        InteractionRecord(
            interaction_id=uuid7_hex(),
            trace_id=trace.trace_id,
            workspace_id="",
            span_id=span_id,
            provider=provider,
            requested_model="mock-gpt",
            provider_model="mock-gpt-0613",
            deployment="mock/mock-gpt",
            operation="chat",
            prompt_tokens=None if failed else 12,
            completion_tokens=None if failed else 7,
            cost_usd=None if failed else Decimal("0.00042"),
            started_at=trace.wall(called),
            ended_at=trace.wall(called + 0.05),
            status="error" if failed else "ok",
            http_status=502 if failed else 200,
            finish_reason=None if failed else "stop",
            error_type="502" if failed else None,
        )
    )
    ended = start + 0.06
    record = TraceRecord(
        trace_id=trace.trace_id,
        workspace_id=DEFAULT_WORKSPACE_ID,
        request_id=f"req-{trace.trace_id[-8:]}",
        route="/v1/chat/completions",
        started_at=trace.start_wall,
        ended_at=trace.wall(ended),
        status="error" if failed else "ok",
        http_status=502 if failed else 200,
        requested_model="mock-gpt",
        provider=provider,
        error_type="upstream_error" if failed else None,
        parent_trace_id=trace.parent_trace_id,
        parent_span_id=trace.parent_span_id,
        source=source,
    )
    return trace.bundle(record, ended)

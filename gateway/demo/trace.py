"""One demo request's records as they grow, the way `telemetry.trace.RequestTrace` collects a
real one's: spans under the root span, decisions numbered in order, attempts, violations; every
row stamped with the trace and its workspace. Times are on the simulated clock, ids from the
seeded generator.
"""

from __future__ import annotations

from typing import Any

from gateway.demo.ids import DemoIds
from telemetry.records import (
    DecisionRecord,
    GuardrailViolationRecord,
    InteractionRecord,
    SpanRecord,
    TraceBundle,
    TraceRecord,
)


class DemoTrace:
    __slots__ = (
        "decisions",
        "ids",
        "interactions",
        "root_span_id",
        "spans",
        "started_at",
        "trace_id",
        "violations",
        "workspace_id",
    )

    def __init__(self, ids: DemoIds, started_at: float, trace_id: str, workspace_id: str):
        self.ids = ids
        self.started_at = started_at
        self.trace_id = trace_id
        self.workspace_id = workspace_id
        self.root_span_id = ids.span()
        self.spans: list[SpanRecord] = []
        self.decisions: list[DecisionRecord] = []
        self.interactions: list[InteractionRecord] = []
        self.violations: list[GuardrailViolationRecord] = []

    def span(
        self,
        name: str,
        component: str,
        started: float,
        ended: float,
        attributes: dict[str, Any],
        *,
        status: str = "ok",
        span_id: str | None = None,
    ) -> str:
        span_id = span_id or self.ids.span()
        self.spans.append(
            SpanRecord(
                span_id=span_id,
                trace_id=self.trace_id,
                workspace_id=self.workspace_id,
                parent_span_id=self.root_span_id,
                name=name,
                component=component,
                started_at=started,
                ended_at=ended,
                status=status,
                attributes=attributes,
            )
        )
        return span_id

    def decide(
        self,
        at: float,
        type: str,
        component: str,
        input: dict[str, Any],
        output: dict[str, Any],
        reasoning: str,
        evaluation_us: float = 0.0,
        *,
        rule_id: str | None = None,
        rule_name: str | None = None,
    ) -> None:
        self.decisions.append(
            DecisionRecord(
                decision_id=self.ids.at(at),
                trace_id=self.trace_id,
                workspace_id=self.workspace_id,
                sequence=len(self.decisions) + 1,
                type=type,
                component=component,
                rule_id=rule_id,
                rule_name=rule_name,
                input=input,
                output=output,
                reasoning=reasoning,
                evaluation_us=evaluation_us,
                created_at=at,
            )
        )

    def violation(
        self,
        at: float,
        *,
        guardrail: str,
        kind: str,
        direction: str,
        action: str,
        entities: dict[str, int],
        score: float,
        latency_us: float,
        api_key_id: str,
    ) -> None:
        self.violations.append(
            GuardrailViolationRecord(
                violation_id=self.ids.at(at),
                trace_id=self.trace_id,
                workspace_id=self.workspace_id,
                api_key_id=api_key_id,
                guardrail=guardrail,
                kind=kind,
                direction=direction,
                action=action,
                entities=entities,
                score=score,
                latency_us=latency_us,
                created_at=at,
            )
        )

    def bundle(self, trace: TraceRecord) -> TraceBundle:
        """Close the root span over the whole request and package everything."""
        root = SpanRecord(
            span_id=self.root_span_id,
            trace_id=self.trace_id,
            workspace_id=self.workspace_id,
            parent_span_id=trace.parent_span_id,  # the caller's span, when it sent traceparent
            name="gateway.request",
            component="gateway",
            started_at=trace.started_at,
            ended_at=trace.ended_at,
            status=trace.status,
            attributes={"http.route": trace.route, "http.status_code": trace.http_status},
        )
        return TraceBundle(
            trace=trace,
            spans=[root, *self.spans],
            decisions=self.decisions,
            interactions=self.interactions,
            violations=self.violations,
        )

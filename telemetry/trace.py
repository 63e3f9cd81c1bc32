"""Per-request trace context: W3C `traceparent` in and out, spans and decisions collected cheaply.

Every request gets its own trace id, the key of its rows. A caller's `traceparent` is kept as the
trace's parent (`parent_trace_id`, `parent_span_id`) and continued upstream, so the provider
call still joins the caller's distributed trace; it never becomes the key of our rows, since
any client may send any id (many calls of one instrumented application share one).

Timing uses `perf_counter` on the hot path; wall-clock times are derived once per record from
the request's start, so every span of a trace sits on one consistent clock.
"""

from __future__ import annotations

import re
import time
from typing import Any

from telemetry.ids import span_id_hex, uuid7_hex
from telemetry.records import (
    DecisionRecord,
    GuardrailViolationRecord,
    InteractionRecord,
    SpanRecord,
    TraceBundle,
    TraceRecord,
)

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


def parse_traceparent(value: str | None) -> tuple[str, str, str] | None:
    """(trace_id, parent_span_id, flags) from a valid W3C traceparent, else None."""
    if not value:
        return None
    match = _TRACEPARENT.match(value.strip().lower())
    if match is None:
        return None
    version, trace_id, parent_id, flags = match.groups()
    if version == "ff" or trace_id == _ZERO_TRACE or parent_id == _ZERO_SPAN:
        return None
    return trace_id, parent_id, flags


class RequestTrace:
    """Collects what one request produced; `bundle()` hands it to the recorder."""

    __slots__ = (
        "decisions",
        "flags",
        "interactions",
        "parent_span_id",
        "parent_trace_id",
        "root_span_id",
        "spans",
        "start",
        "start_wall",
        "trace_id",
        "violations",
        "workspace_id",
    )

    def __init__(self, traceparent: str | None = None) -> None:
        self.start = time.perf_counter()
        self.start_wall = time.time()
        self.trace_id = uuid7_hex()
        parsed = parse_traceparent(traceparent)
        if parsed is None:
            self.parent_trace_id: str | None = None
            self.parent_span_id: str | None = None
            self.flags = "01"
        else:
            self.parent_trace_id, self.parent_span_id, self.flags = parsed
        self.root_span_id = span_id_hex()
        self.workspace_id = ""
        self.spans: list[SpanRecord] = []
        self.decisions: list[DecisionRecord] = []
        self.interactions: list[InteractionRecord] = []
        self.violations: list[GuardrailViolationRecord] = []

    def wall(self, perf: float) -> float:
        return self.start_wall + (perf - self.start)

    def traceparent_for(self, span_id: str) -> str:
        """What goes upstream: the caller's distributed trace continued when it sent one, else
        ours, with `span_id` as the parent."""
        return f"00-{self.parent_trace_id or self.trace_id}-{span_id}-{self.flags}"

    def add_span(
        self,
        name: str,
        component: str,
        started: float,
        ended: float,
        *,
        status: str = "ok",
        attributes: dict[str, Any] | None = None,
        span_id: str | None = None,
        events: list[dict[str, Any]] | None = None,
    ) -> str:
        span_id = span_id or span_id_hex()
        self.spans.append(
            SpanRecord(
                span_id=span_id,
                trace_id=self.trace_id,
                workspace_id=self.workspace_id,
                parent_span_id=self.root_span_id,
                name=name,
                component=component,
                started_at=self.wall(started),
                ended_at=self.wall(ended),
                status=status,
                attributes=attributes or {},
                events=tuple(events) if events else (),
            )
        )
        return span_id

    def add_decision(
        self,
        type: str,
        component: str,
        *,
        input: dict[str, Any],
        output: dict[str, Any],
        reasoning: str,
        evaluation_us: float,
        rule_id: str | None = None,
        rule_name: str | None = None,
    ) -> None:
        self.decisions.append(
            DecisionRecord(
                decision_id=uuid7_hex(),
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
                created_at=time.time(),
            )
        )

    def add_violation(
        self,
        *,
        guardrail: str,
        kind: str,
        direction: str,
        action: str,
        entities: dict[str, int],
        score: float,
        latency_us: float,
        api_key_id: str | None = None,
    ) -> None:
        """Note what a guardrail found; `entities` counts matches per type, never their text."""
        self.violations.append(
            GuardrailViolationRecord(
                violation_id=uuid7_hex(),
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
                created_at=time.time(),
            )
        )

    def bundle(self, trace: TraceRecord, ended: float) -> TraceBundle:
        """Close the root span and package everything; the workspace is stamped on every row,
        and the request's key on violations recorded without one."""
        workspace = trace.workspace_id
        for record in self.spans:
            record.workspace_id = workspace
        for decision in self.decisions:
            decision.workspace_id = workspace
        for interaction in self.interactions:
            interaction.workspace_id = workspace
        for violation in self.violations:
            violation.workspace_id = workspace
            if violation.api_key_id is None:
                violation.api_key_id = trace.api_key_id
        root = SpanRecord(
            span_id=self.root_span_id,
            trace_id=self.trace_id,
            workspace_id=workspace,
            parent_span_id=self.parent_span_id,
            name="gateway.request",
            component="gateway",
            started_at=self.start_wall,
            ended_at=self.wall(ended),
            status=trace.status,
            attributes={"http.route": trace.route, "http.status_code": trace.http_status},
            events=(),
        )
        return TraceBundle(
            trace=trace,
            spans=[root, *self.spans],
            decisions=self.decisions,
            interactions=self.interactions,
            violations=self.violations,
        )

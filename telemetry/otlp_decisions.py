"""A request's decisions as it is read in a trace viewer: a summary on the root span and one
span event per decision.

The summary answers the usual questions at a glance (which rules matched, was it a cache hit,
what did the guardrails say, where was it routed, how many retries); the events keep every
decision with its reasoning, in order, for whoever opens the span.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from google.protobuf.internal.containers import RepeatedCompositeFieldContainer
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from telemetry.otlp_values import json_text, put_attributes
from telemetry.records import DecisionRecord


def decision_summary(decisions: Sequence[DecisionRecord]) -> dict[str, Any]:
    """`steerway.*` attributes for the root span; absent where no such decision was taken."""
    summary: dict[str, Any] = {}
    matched = [d for d in decisions if d.type == "rule_evaluation" and d.rule_id is not None]
    if any(d.type == "rule_evaluation" for d in decisions):
        summary["steerway.rule.matched"] = [d.rule_id for d in matched]
        summary["steerway.rule.names"] = [d.rule_name or d.rule_id for d in matched]
    for decision in decisions:
        output = decision.output
        if decision.type == "cache_decision":
            status = output.get("status")
            summary["steerway.cache.status"] = status
            summary["steerway.cache.hit"] = status == "HIT"
        elif decision.type == "model_selection" and output:
            summary["steerway.route.deployment"] = output.get("deployment")
            summary["steerway.route.provider"] = output.get("provider")
        elif decision.type == "rate_limit":
            summary["steerway.rate_limit.allowed"] = output.get("allowed")
        elif decision.type == "budget_check" and "allowed" in output:
            summary["steerway.budget.allowed"] = output.get("allowed")
        elif decision.type == "fallback":
            summary["steerway.fallback.to"] = output.get("to")
    verdicts = [_verdict(d) for d in decisions if d.type == "guardrail"]
    if verdicts:
        summary["steerway.guardrail.verdict"] = verdicts
    retries = sum(1 for d in decisions if d.type == "retry")
    if retries:
        summary["steerway.retry.count"] = retries
    return summary


def add_decision_events(
    target: RepeatedCompositeFieldContainer[Span.Event], decisions: Iterable[DecisionRecord]
) -> None:
    """One event per decision, named `steerway.decision.<type>`, in the order they were taken."""
    for decision in decisions:
        event = target.add()
        event.time_unix_nano = int(decision.created_at * 1e9)
        event.name = f"steerway.decision.{decision.type}"
        put_attributes(
            event.attributes,
            {
                "steerway.decision.sequence": decision.sequence,
                "steerway.decision.component": decision.component,
                "steerway.rule.id": decision.rule_id,
                "steerway.rule.name": decision.rule_name,
                "steerway.decision.reasoning": decision.reasoning or None,
                "steerway.decision.input": json_text(decision.input),
                "steerway.decision.output": json_text(decision.output),
                "steerway.decision.evaluation_us": decision.evaluation_us,
            },
        )


def _verdict(decision: DecisionRecord) -> str:
    """`<guardrail>:<outcome>`, e.g. `pii:masked`; an admission refusal reads `model_access:blocked`."""
    guardrail = decision.input.get("guardrail")
    if guardrail is None:
        allowed = decision.output.get("allowed")
        return f"model_access:{'pass' if allowed else 'blocked'}"
    return f"{guardrail}:{decision.output.get('outcome', 'unknown')}"

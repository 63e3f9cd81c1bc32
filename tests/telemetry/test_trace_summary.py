"""The trace summary: what the summary columns of `traces` hold for a request's records."""

from __future__ import annotations

from decimal import Decimal

from telemetry.records import (
    DecisionRecord,
    GuardrailViolationRecord,
    InteractionRecord,
    TraceBundle,
    TraceRecord,
)
from telemetry.schema import traces
from telemetry.trace_summary import SUMMARY_COLUMNS, summarize

T0 = 1_764_000_000.0


def trace() -> TraceRecord:
    return TraceRecord(
        trace_id="t" * 32,
        workspace_id="w" * 32,
        request_id="r",
        route="/v1/chat/completions",
        started_at=T0,
        ended_at=T0 + 2,
    )


def attempt(number: int, **fields: object) -> InteractionRecord:
    values: dict[str, object] = {
        "interaction_id": f"{number:032x}",
        "trace_id": "t" * 32,
        "workspace_id": "w" * 32,
        "provider": "openai",
        "requested_model": "gpt-4o",
        "provider_model": "gpt-4o",
        "deployment": f"deployment-{number}",
        "attempt": number,
        "operation": "chat",
        "started_at": T0 + number,
        "ended_at": T0 + number + 0.5,
    }
    values.update(fields)
    return InteractionRecord(**values)  # type: ignore[arg-type]


def decision(sequence: int, type: str, rule_id: str | None = None) -> DecisionRecord:
    return DecisionRecord(
        decision_id=f"{sequence:032x}",
        trace_id="t" * 32,
        workspace_id="w" * 32,
        sequence=sequence,
        type=type,
        component="rules",
        rule_id=rule_id,
        created_at=T0,
    )


def violation(guardrail: str, action: str) -> GuardrailViolationRecord:
    return GuardrailViolationRecord(
        violation_id=guardrail + action,
        trace_id="t" * 32,
        workspace_id="w" * 32,
        guardrail=guardrail,
        kind="pii",
        direction="input",
        action=action,
        score=1.0,
        latency_us=10.0,
        created_at=T0,
    )


def test_the_columns_are_the_tables_summary_columns() -> None:
    assert set(SUMMARY_COLUMNS) <= set(traces.c.keys())


def test_a_request_without_attempts_has_no_deployment_tokens_or_cost() -> None:
    summary = summarize(TraceBundle(trace=trace()))
    assert summary.row() == (None, None, None, None, None, None, False, [], None, [])


def test_attempts_add_up_and_the_last_one_names_the_deployment() -> None:
    bundle = TraceBundle(
        trace=trace(),
        interactions=[
            attempt(2, prompt_tokens=10, completion_tokens=5, total_tokens=15,
                    cost_usd=Decimal("0.0001"), ttft_ms=300.0),
            attempt(1, status="error"),  # failed before any usage: nothing known
            attempt(3, prompt_tokens=7, completion_tokens=None, total_tokens=7,
                    cost_usd=Decimal("0.00002"), ttft_ms=120.0),
        ],
    )  # fmt: skip
    summary = summarize(bundle)
    assert summary.deployment == "deployment-3"
    assert (summary.prompt_tokens, summary.completion_tokens, summary.total_tokens) == (17, 5, 22)
    assert summary.cost_usd == Decimal("0.00012")
    assert summary.ttft_ms == 300.0  # the first attempt that had a first token
    assert summary.cache_hit is False


def test_a_cache_hit_costs_nothing_and_says_so() -> None:
    bundle = TraceBundle(
        trace=trace(),
        interactions=[attempt(1, deployment="cache", cache_hit=True, cost_usd=Decimal(0))],
    )
    summary = summarize(bundle)
    assert (summary.deployment, summary.cache_hit, summary.cost_usd) == ("cache", True, 0)


def test_rules_in_decision_order_and_the_strongest_guardrail_action() -> None:
    bundle = TraceBundle(
        trace=trace(),
        decisions=[
            decision(3, "rule_evaluation", "second"),
            decision(1, "rule_evaluation"),  # the summary decision names no rule
            decision(2, "rule_evaluation", "first"),
            decision(4, "guardrail", None),
        ],
        violations=[violation("audit", "log"), violation("pii", "mask"), violation("audit", "log")],
    )
    summary = summarize(bundle)
    assert summary.rules_matched == ["first", "second"]
    assert summary.guardrail_action == "mask"
    assert summary.guardrails_triggered == ["audit", "pii"]
    blocked = with_violations(bundle, [violation("injection", "block")])
    assert summarize(blocked).guardrail_action == "block"


def with_violations(bundle: TraceBundle, extra: list[GuardrailViolationRecord]) -> TraceBundle:
    return TraceBundle(
        trace=bundle.trace,
        decisions=bundle.decisions,
        violations=[*bundle.violations, *extra],
    )

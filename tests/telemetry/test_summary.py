"""The trace summary the writer works out from each bundle, and each decision's outcome: worked
out right, and stored on both backends whichever way the bundle reaches the database (a plain
write, escaping, strings cut to fit, a spill file replayed)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.ids import uuid7_hex
from telemetry.recorder import Recorder
from telemetry.records import (
    DecisionRecord,
    GuardrailViolationRecord,
    InteractionRecord,
    TraceBundle,
)
from telemetry.schema import decisions, traces
from telemetry.spill import SpillFile, spill_files
from telemetry.summary import SUMMARY_COLUMNS, decision_outcome, summarise
from telemetry.writers import BatchWriter
from tests.telemetry import MINUTE, eventually, make_bundle


def add_attempt(bundle: TraceBundle, **changes: Any) -> InteractionRecord:
    first = bundle.interactions[0]
    attempt = msgspec.structs.replace(
        first, interaction_id=uuid7_hex(), attempt=len(bundle.interactions) + 1, **changes
    )
    bundle.interactions.append(attempt)
    return attempt


def add_decision(bundle: TraceBundle, type: str, component: str, **fields: Any) -> None:
    bundle.decisions.append(
        DecisionRecord(
            decision_id=uuid7_hex(),
            trace_id=bundle.trace.trace_id,
            workspace_id=bundle.trace.workspace_id,
            sequence=len(bundle.decisions) + 1,
            type=type,
            component=component,
            created_at=MINUTE,
            **fields,
        )
    )


def add_violation(bundle: TraceBundle, guardrail: str, action: str) -> None:
    bundle.violations.append(
        GuardrailViolationRecord(
            violation_id=uuid7_hex(),
            trace_id=bundle.trace.trace_id,
            workspace_id=bundle.trace.workspace_id,
            guardrail=guardrail,
            kind="pii",
            direction="input",
            action=action,
            entities={"EMAIL_ADDRESS": 1},
            score=1.0,
            latency_us=10.0,
            created_at=MINUTE,
        )
    )


def summary_of(bundle: TraceBundle) -> dict[str, Any]:
    status, values = summarise(bundle)
    return {"status": status, **dict(zip(SUMMARY_COLUMNS, values, strict=True))}


def failed_then_served() -> TraceBundle:
    """A first attempt that failed on deployment a, a second one served on b."""
    bundle = make_bundle(prompt_tokens=10, completion_tokens=None, cost=Decimal("0.001"))
    first = bundle.interactions[0]
    first.status, first.deployment, first.ttft_ms, first.total_tokens = "error", "a", None, 10
    add_attempt(
        bundle,
        status="ok",
        deployment="b",
        prompt_tokens=12,
        completion_tokens=30,
        total_tokens=42,
        cost_usd=Decimal("0.0020000001"),
        ttft_ms=85.5,
    )
    return bundle


# --- worked out ---------------------------------------------------------------------------------


def test_attempts_are_summed_and_the_answering_one_gives_deployment_and_first_token() -> None:
    summary = summary_of(failed_then_served())
    assert summary["status"] == "ok"
    assert summary["deployment"] == "b"
    assert (summary["prompt_tokens"], summary["completion_tokens"]) == (22, 30)
    assert summary["total_tokens"] == 52
    assert summary["cost_usd"] == Decimal("0.0030000001")
    assert summary["ttft_ms"] == 85.5
    assert summary["cache_hit"] is False


def test_a_request_without_attempts_has_no_tokens_cost_or_deployment() -> None:
    bundle = make_bundle()
    bundle.interactions = []
    summary = summary_of(bundle)
    for column in ("deployment", "prompt_tokens", "total_tokens", "cost_usd", "ttft_ms"):
        assert summary[column] is None, column
    assert summary["rules_matched"] == [] and summary["guardrails_triggered"] == []
    assert summary["guardrail_action"] is None


def test_unknown_costs_are_left_out_of_the_sum_and_a_cache_answer_counts_as_a_hit() -> None:
    bundle = make_bundle(cost=None, cache_hit=True)
    assert summary_of(bundle)["cost_usd"] is None
    assert summary_of(bundle)["cache_hit"] is True
    add_attempt(bundle, cost_usd=Decimal("0.5"), cache_hit=False)
    assert summary_of(bundle)["cost_usd"] == Decimal("0.5")


def test_matched_rules_are_listed_once_in_order() -> None:
    bundle = make_bundle()
    bundle.decisions = []
    add_decision(bundle, "rule_evaluation", "rules", input={"rules_matched": 2})
    for rule_id in ("premium", "eu-only", "premium"):
        add_decision(bundle, "rule_evaluation", "rules", rule_id=rule_id)
    add_decision(bundle, "model_selection", "router", output={"deployment": "d"})
    assert summary_of(bundle)["rules_matched"] == ["premium", "eu-only"]


def test_the_strongest_guardrail_action_and_every_guardrail_that_found_something() -> None:
    bundle = make_bundle()
    add_violation(bundle, "pii", "log")
    assert summary_of(bundle)["guardrail_action"] == "log"
    add_violation(bundle, "secrets", "block")
    add_violation(bundle, "pii", "mask")
    summary = summary_of(bundle)
    assert summary["guardrail_action"] == "block"
    assert summary["guardrails_triggered"] == ["pii", "secrets"]


def refused(error_type: str) -> TraceBundle:
    bundle = make_bundle(status="error")
    bundle.trace.error_type = error_type
    bundle.trace.http_status = 429
    bundle.interactions = []
    bundle.decisions = []
    return bundle


def test_refusals_by_the_gateways_policy_are_stored_as_denied() -> None:
    by_rule = refused("request_denied")
    add_decision(by_rule, "rule_evaluation", "rules", output={"deny": {"status": 403}})
    by_rate = refused("rate_limit_exceeded")
    add_decision(by_rate, "rate_limit", "admission", output={"allowed": False})
    by_budget = refused("insufficient_quota")
    add_decision(
        by_budget, "budget_check", "admission", output={"allowed": False, "denied_by": "key"}
    )
    by_model = refused("model_not_allowed")
    add_decision(by_model, "guardrail", "admission", output={"allowed": False})
    by_guardrail = refused("guardrail_violation")
    add_violation(by_guardrail, "pii", "block")
    without_key = refused("invalid_api_key")
    for bundle in (by_rule, by_rate, by_budget, by_model, by_guardrail, without_key):
        assert summarise(bundle)[0] == "denied", bundle.trace.error_type


def test_failures_stay_errors_even_with_a_refusal_like_code() -> None:
    upstream_429 = make_bundle(status="error")  # the provider's own 429, passed through
    upstream_429.trace.error_type = "rate_limit_exceeded"
    limits_down = refused("limits_unavailable")
    add_decision(
        limits_down, "rate_limit", "admission", output={"allowed": False, "unavailable": True}
    )
    budget_crossed = make_bundle(status="error")
    add_decision(budget_crossed, "budget_check", "admission", output={"soft_percent": 80})
    for bundle in (upstream_429, limits_down, budget_crossed):
        assert summarise(bundle)[0] == "error"
    served = make_bundle()
    add_decision(served, "rate_limit", "admission", output={"allowed": True})
    assert summarise(served)[0] == "ok"


@pytest.mark.parametrize(
    ("type", "component", "fields", "outcome"),
    [
        ("rule_evaluation", "rules", {"input": {"rules_matched": 0}}, "no_match"),
        ("rule_evaluation", "rules", {"input": {"rules_matched": 1}}, "matched"),
        ("rule_evaluation", "rules", {"output": {"deny": {}}}, "denied"),
        ("rule_evaluation", "rules", {"rule_id": "r"}, "matched"),
        ("model_selection", "router", {"output": {"deployment": "d"}}, "selected"),
        ("model_selection", "router", {}, "unavailable"),
        ("rate_limit", "admission", {"output": {"allowed": True}}, "allowed"),
        ("rate_limit", "admission", {"output": {"allowed": True, "degraded": True}}, "degraded"),
        ("rate_limit", "admission", {"output": {"allowed": False}}, "denied"),
        (
            "budget_check",
            "admission",
            {"output": {"allowed": False, "unavailable": 1}},
            "unavailable",
        ),
        ("budget_check", "admission", {"output": {"soft_percent": 80}}, "soft_limit"),
        ("cache_decision", "cache", {"output": {"status": "HIT"}}, "hit"),
        ("cache_decision", "cache", {"output": {"status": "BYPASS"}}, "bypass"),
        ("guardrail", "guardrails", {"output": {"outcome": "masked"}}, "masked"),
        ("guardrail", "admission", {"output": {"allowed": False}}, "denied"),
        ("retry", "reliability", {}, "retried"),
        ("fallback", "reliability", {}, "fell_back"),
        ("cooldown", "reliability", {}, "cooldown"),
        ("something_new", "x", {}, None),
    ],
)
def test_each_decision_gets_an_outcome(
    type: str, component: str, fields: dict[str, Any], outcome: str | None
) -> None:
    decision = DecisionRecord(
        decision_id="d", trace_id="t", workspace_id="w", sequence=1, type=type,
        component=component, created_at=MINUTE, **fields,
    )  # fmt: skip
    assert decision_outcome(decision) == outcome


# --- stored -------------------------------------------------------------------------------------


def rich_bundle() -> TraceBundle:
    bundle = failed_then_served()
    add_decision(bundle, "rule_evaluation", "rules", rule_id="premium")
    add_violation(bundle, "pii", "mask")
    return bundle


async def stored_summary(engine: AsyncEngine, trace_id: str) -> dict[str, Any]:
    columns = [traces.c.status, *(traces.c[name] for name in SUMMARY_COLUMNS)]
    async with engine.connect() as connection:
        row = (
            await connection.execute(sa.select(*columns).where(traces.c.trace_id == trace_id))
        ).one()
    return dict(row._mapping)


async def stored_outcomes(engine: AsyncEngine, trace_id: str) -> list[str | None]:
    async with engine.connect() as connection:
        result = await connection.execute(
            sa.select(decisions.c.outcome)
            .where(decisions.c.trace_id == trace_id)
            .order_by(decisions.c.sequence)
        )
        return list(result.scalars())


EXPECTED = {
    "status": "ok",
    "deployment": "b",
    "prompt_tokens": 22,
    "completion_tokens": 30,
    "total_tokens": 52,
    "cost_usd": Decimal("0.0030000001"),
    "ttft_ms": 85.5,
    "cache_hit": False,
    "rules_matched": ["premium"],
    "guardrail_action": "mask",
    "guardrails_triggered": ["pii"],
}


async def test_the_writer_stores_the_summary_and_outcomes(engine: AsyncEngine) -> None:
    bundle = rich_bundle()
    await BatchWriter(engine).write([bundle])
    assert await stored_summary(engine, bundle.trace.trace_id) == EXPECTED
    assert await stored_outcomes(engine, bundle.trace.trace_id) == ["unavailable", "matched"]


async def test_an_escaped_or_cut_bundle_keeps_its_summary(engine: AsyncEngine) -> None:
    escaped = rich_bundle()
    escaped.trace.end_user = "nul\x00user"
    cut = rich_bundle()
    cut.trace.request_id = "r" * 500  # longer than its column: Postgres refuses it uncut
    recorder = Recorder(engine, retry_initial=0.01)
    await recorder.start()
    assert recorder.record(escaped) and recorder.record(cut)
    await recorder.flush()
    await recorder.stop()
    assert recorder.stats.written_bundles == 2
    for bundle in (escaped, cut):
        assert await stored_summary(engine, bundle.trace.trace_id) == EXPECTED


async def test_a_replayed_spill_file_gets_the_summary_too(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    spill_dir = tmp_path / "spill"
    bundle = rich_bundle()
    spill = SpillFile.create(spill_dir)
    spill.append([bundle])
    spill.release()
    recorder = Recorder(engine, spill_dir=spill_dir, retry_initial=0.01)
    await recorder.start()
    await eventually(lambda: not spill_files(spill_dir))
    await recorder.stop()
    assert recorder.stats.replayed_bundles == 1
    assert await stored_summary(engine, bundle.trace.trace_id) == EXPECTED
    assert await stored_outcomes(engine, bundle.trace.trace_id) == ["unavailable", "matched"]

"""A stored comparison as the API answers it and the console shows it: its definition without
the evaluator's full definition, its progress, and what its results say (`stats`)."""

from __future__ import annotations

from typing import Any

from telemetry.comparison.stats import (
    PairedDifference,
    VariantSummary,
    paired_difference,
    summarise_variant,
)
from telemetry.comparison.store import StoredComparison


def _number(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def variant_json(summary: VariantSummary) -> dict[str, Any]:
    return {
        "answered": summary.answered,
        "scored": summary.scored,
        "mean_score": _number(summary.mean),
        "score_low": _number(summary.low),
        "score_high": _number(summary.high),
        "cost_per_request_usd": None
        if summary.cost_per_request_usd is None
        else str(summary.cost_per_request_usd),
        "latency_p50_ms": _number(summary.latency_p50_ms),
    }


def difference_json(difference: PairedDifference) -> dict[str, Any]:
    return {
        "method": "paired",
        "pairs": difference.pairs,
        "b_minus_a": _number(difference.difference),
        "low": _number(difference.low),
        "high": _number(difference.high),
        "verdict": difference.verdict,
    }


def comparison_json(found: StoredComparison, *, results: bool) -> dict[str, Any]:
    definition = found.definition
    evaluator = definition.get("evaluator", {})
    answer: dict[str, Any] = {
        "object": "comparison",
        "id": found.comparison_id,
        "workspace_id": found.workspace_id,
        "name": found.name,
        "status": found.status,
        "filter": definition.get("filter", {}),
        "variants": definition.get("variants", {}),
        "evaluator": {
            "id": evaluator.get("id"),
            "name": evaluator.get("name"),
            "judge_model": evaluator.get("judge_model"),
        },
        "estimate": found.estimate,
        "actual_cost_usd": None if found.actual_cost_usd is None else str(found.actual_cost_usd),
        "progress": {"total": found.total, "completed": found.completed, "failed": found.failed},
        "error": found.error,
        "created_by": found.created_by,
        "created_at": found.created_at.isoformat(),
        "started_at": None if found.started_at is None else found.started_at.isoformat(),
        "finished_at": None if found.finished_at is None else found.finished_at.isoformat(),
    }
    if results:
        answer["summary"] = {
            "a": variant_json(summarise_variant(found.results, "a")),
            "b": variant_json(summarise_variant(found.results, "b")),
            "difference": difference_json(paired_difference(found.results)),
        }
        answer["results"] = found.results
    return answer

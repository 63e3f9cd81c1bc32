"""The insights as `/admin/api/insights` answers them: money as exact decimal strings (as in
the rest of the admin API), times ISO 8601 UTC, scores to two decimals, each trace with its
console link. Key ids come with their names where the caller can see the key."""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

from admin_ui.serialise import iso_time, money
from telemetry.insights.cheaper_models import CheaperModels, Comparison, ServedModel, Workload
from telemetry.insights.errors import ErrorGroup, Errors
from telemetry.insights.findings import Insights
from telemetry.insights.max_tokens import MaxTokens, MaxTokensGroup
from telemetry.insights.notes import (
    cheaper_model_notes,
    error_notes,
    max_tokens_notes,
    repeat_notes,
)
from telemetry.insights.repeats import RepeatGroup, Repeats
from telemetry.insights.stats import Sample

TRACE_PATH: Final = "/admin/traces/{id}"
_EXACT: Final = Decimal("1e-10")
"""Money's stored precision: a cost per request is a quotient, cut there."""


def usd(value: Decimal | None) -> str | None:
    return None if value is None else money(value.quantize(_EXACT))


def points(value: float) -> float | None:
    return round(value, 2) if math.isfinite(value) else None


def trace_links(trace_ids: tuple[str, ...]) -> list[dict[str, str]]:
    return [{"trace_id": t, "url": TRACE_PATH.format(id=t)} for t in trace_ids]


def _scores(sample: Sample | None) -> dict[str, Any] | None:
    if sample is None:
        return None
    lower, upper = sample.interval()
    return {
        "count": sample.count,
        "mean": points(sample.mean),
        "lower": points(lower),
        "upper": points(upper),
    }


def _served(model: ServedModel) -> dict[str, Any]:
    return {
        "provider_model": model.provider_model,
        "requests": model.requests,
        "cost_per_request": usd(model.cost_per_request),
        "mean_prompt_tokens": None if model.prompt_tokens is None else round(model.prompt_tokens),
        "mean_completion_tokens": None
        if model.completion_tokens is None
        else round(model.completion_tokens),
        "scores": _scores(model.scores),
    }


def _comparison(found: Comparison) -> dict[str, Any]:
    diff = found.difference
    return {
        "current": found.current,
        "candidate": found.candidate,
        "verdict": found.verdict,
        "score_difference": None
        if diff is None
        else {"mean": points(diff.mean), "lower": points(diff.lower), "upper": points(diff.upper)},
        "saving_per_request": usd(found.saving_per_request),
        "monthly_saving": usd(found.monthly_saving),
        "priced_cost_per_request": usd(found.priced_cost_per_request),
        "reason": found.reason,
    }


def _workload(workload: Workload) -> dict[str, Any]:
    return {
        "evaluator": workload.evaluator,
        "requested_model": workload.requested_model,
        "served": [_served(m) for m in workload.served],
        "comparisons": [_comparison(c) for c in workload.comparisons],
        "note": workload.note,
    }


def cheaper_models_answer(found: CheaperModels) -> dict[str, Any]:
    return {
        "margin": found.margin,
        "min_samples": found.min_samples,
        "suggestions": [
            {"evaluator": w.evaluator, "requested_model": w.requested_model, **_comparison(c)}
            for w, c in found.suggestions
        ],
        "workloads": [_workload(w) for w in found.workloads],
        "notes": cheaper_model_notes(found),
    }


def _repeat(group: RepeatGroup) -> dict[str, Any]:
    return {
        "fingerprint": group.fingerprint,
        "requested_model": group.requested_model,
        "requests": group.requests,
        "repeats": group.repeats,
        "cost": usd(group.cost),
        "saving": usd(group.saving),
        "first_seen": iso_time(group.first_seen),
        "last_seen": iso_time(group.last_seen),
        "example_traces": trace_links(group.example_traces),
    }


def repeats_answer(found: Repeats) -> dict[str, Any]:
    return {
        "compared": found.compared,
        "skipped": found.skipped,
        "repeats": found.repeats,
        "saving": usd(found.saving),
        "more_groups": found.more_groups,
        "groups": [_repeat(g) for g in found.groups],
        "notes": repeat_notes(found),
    }


def _max_tokens(group: MaxTokensGroup, keys: Mapping[str, str]) -> dict[str, Any]:
    key = group.api_key_id
    return {
        "requested_model": group.requested_model,
        "key": None if key is None else {"id": key, "name": keys.get(key)},
        "requests": group.requests,
        "typical_max_tokens": group.typical_max_tokens,
        "largest_max_tokens": group.largest_max_tokens,
        "completion_tokens": {
            "p50_at_most": group.completion_p50,
            "p99_at_most": group.completion_p99,
            "max": group.completion_max,
        },
        "ratio": round(group.ratio, 1),
        "flagged": group.flagged,
        "suggested_max_tokens": group.suggested_max_tokens,
    }


def max_tokens_answer(found: MaxTokens, keys: Mapping[str, str]) -> dict[str, Any]:
    return {
        "ratio": found.ratio,
        "min_requests": found.min_requests,
        "without_max_tokens": found.without_max_tokens,
        "cut": found.cut,
        "groups": [_max_tokens(g, keys) for g in found.groups],
        "notes": max_tokens_notes(found),
    }


def _error(group: ErrorGroup) -> dict[str, Any]:
    return {
        "fingerprint": group.fingerprint,
        "provider": group.provider,
        "error_type": group.error_type or None,
        "template": group.template,
        "example_message": group.example_message,
        "count": group.count,
        "first_seen": iso_time(group.first_seen),
        "last_seen": iso_time(group.last_seen),
        "example_traces": trace_links(group.example_traces),
        "summary": group.summary,
    }


def errors_answer(found: Errors) -> dict[str, Any]:
    return {
        "errors": found.errors,
        "more_groups": found.more_groups,
        "messages_left_out": found.messages_left_out,
        "groups": [_error(g) for g in found.groups],
        "notes": error_notes(found),
    }


def insights_answer(found: Insights, keys: Mapping[str, str]) -> dict[str, Any]:
    return {
        "object": "insights",
        "from": iso_time(found.scope.start),
        "to": iso_time(found.scope.end),
        "cheaper_models": cheaper_models_answer(found.cheaper_models),
        "repeats": repeats_answer(found.repeats),
        "max_tokens": max_tokens_answer(found.max_tokens, keys),
        "errors": errors_answer(found.errors),
    }

"""A cheaper model of equal quality for a workload.

A workload is what one requested (public) model answers, scored by one evaluator: scores of
different evaluators measure different criteria and are never mixed. Within a workload, every
model that served it (a rule's split, a fallback, a changed route) has its judged scores and its
actual cost per request. A cheaper model is suggested in place of a dearer one when both have at
least `min_samples` scores and the 95 % interval of the difference of their mean scores
(candidate minus current, Welch) lies above `-margin`: whatever the true difference, it is not
worse by more than the margin. The comparison is only fair within a workload, where both models
answered the same kind of request; a model judged on another workload says nothing here.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final, Literal

import sqlalchemy as sa

from providers.pricing import PriceTable
from telemetry.insights.scope import InsightScope, money_sum
from telemetry.insights.stats import Difference, Sample, difference
from telemetry.schema import ai_interactions, evaluations

DEFAULT_MARGIN: Final = 2.0
"""Points on the 0-100 score scale a cheaper model may lose before it counts as worse."""
DEFAULT_MIN_SAMPLES: Final = 30
"""Scores each model needs before a comparison says anything."""
MAX_GROUPS: Final = 500
"""Rows each aggregate answers at most (workloads times served models)."""

Verdict = Literal["equal_quality", "worse", "inconclusive", "not_enough_data"]


@dataclass(frozen=True, slots=True)
class ServedModel:
    provider_model: str
    requests: int
    """Paid calls that answered (ok, not cache hits) in the range."""
    cost_per_request: Decimal | None
    prompt_tokens: float | None
    completion_tokens: float | None
    scores: Sample | None


@dataclass(frozen=True, slots=True)
class Comparison:
    current: str
    candidate: str
    verdict: Verdict
    difference: Difference | None
    saving_per_request: Decimal | None
    monthly_saving: Decimal | None
    """What serving the current model's requests with the candidate would save in 30 days, at
    the range's volume and the actual costs per request."""
    priced_cost_per_request: Decimal | None
    """The candidate's price-table cost at the current model's mean tokens, for comparison."""
    reason: str


@dataclass(frozen=True, slots=True)
class Workload:
    evaluator: str
    requested_model: str
    served: tuple[ServedModel, ...]
    comparisons: tuple[Comparison, ...]
    note: str | None = None

    @property
    def suggestions(self) -> tuple[Comparison, ...]:
        return tuple(c for c in self.comparisons if c.verdict == "equal_quality")


@dataclass(frozen=True, slots=True)
class CheaperModels:
    margin: float
    min_samples: int
    workloads: tuple[Workload, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def suggestions(self) -> tuple[tuple[Workload, Comparison], ...]:
        found = [(w, c) for w in self.workloads for c in w.suggestions]
        return tuple(sorted(found, key=lambda pair: -(pair[1].monthly_saving or 0)))


async def _scores(scope: InsightScope) -> list[tuple[Any, ...]]:
    e = evaluations.c
    where = [
        e.created_at >= scope.start,
        e.created_at < scope.end,
        e.status == "ok",
        e.score.is_not(None),
        e.requested_model.is_not(None),
        e.provider_model.is_not(None),
    ]
    if scope.workspace_id is not None:
        where.append(e.workspace_id == scope.workspace_id)
    count = sa.func.count(e.score)
    select = (
        sa.select(
            e.evaluator_name,
            e.requested_model,
            e.provider_model,
            count,
            sa.func.sum(e.score),
            sa.func.sum(e.score * e.score),
        )
        .where(*where)
        .group_by(e.evaluator_name, e.requested_model, e.provider_model)
        .order_by(count.desc())
        .limit(MAX_GROUPS)
    )
    async with scope.engine.connect() as connection:
        return [tuple(row) for row in (await connection.execute(select)).all()]


@dataclass(frozen=True, slots=True)
class _Cost:
    requests: int
    cost_per_request: Decimal | None
    prompt_tokens: float | None
    completion_tokens: float | None


async def _costs(scope: InsightScope, models: set[str]) -> dict[tuple[str, str], _Cost]:
    i = ai_interactions.c
    select = (
        sa.select(
            i.requested_model,
            i.provider_model,
            sa.func.count(),
            money_sum(i.cost_usd),
            sa.func.count(i.cost_usd),
            sa.func.avg(i.prompt_tokens),
            sa.func.avg(i.completion_tokens),
        )
        .where(
            *scope.interactions_where(),
            i.status == "ok",
            i.cache_hit.is_(False),
            i.requested_model.in_(sorted(models)),
        )
        .group_by(i.requested_model, i.provider_model)
        .limit(MAX_GROUPS)
    )
    async with scope.engine.connect() as connection:
        rows = (await connection.execute(select)).all()
    found = {}
    for requested, served, requests, spent, priced, prompt, completion in rows:
        per_request = Decimal(spent) / priced if priced and spent is not None else None
        found[(requested, served)] = _Cost(
            requests=int(requests),
            cost_per_request=per_request,
            prompt_tokens=None if prompt is None else float(prompt),
            completion_tokens=None if completion is None else float(completion),
        )
    return found


def _priced(prices: PriceTable, candidate: str, current: ServedModel) -> Decimal | None:
    if current.prompt_tokens is None or current.completion_tokens is None:
        return None
    return prices.cost(candidate, round(current.prompt_tokens), round(current.completion_tokens))


def _compare(
    current: ServedModel,
    candidate: ServedModel,
    *,
    margin: float,
    min_samples: int,
    per_month: float,
    prices: PriceTable,
) -> Comparison:
    assert current.cost_per_request is not None and candidate.cost_per_request is not None
    saving = current.cost_per_request - candidate.cost_per_request
    monthly = (saving * current.requests * Decimal(repr(per_month))).quantize(Decimal("0.01"))
    priced = _priced(prices, candidate.provider_model, current)
    counts = [m.scores.count if m.scores else 0 for m in (current, candidate)]
    if min(counts) < min_samples:
        short = ", ".join(
            f"{m.provider_model} has {n}"
            for m, n in zip((current, candidate), counts, strict=True)
            if n < min_samples
        )
        reason = f"Not enough scores: each model needs {min_samples}; {short}."
        return Comparison(
            current.provider_model,
            candidate.provider_model,
            "not_enough_data",
            None,
            saving,
            monthly,
            priced,
            reason,
        )
    assert current.scores is not None and candidate.scores is not None
    diff = difference(candidate.scores, current.scores)
    if diff.lower >= -margin:
        verdict: Verdict = "equal_quality"
        reason = (
            f"The score difference is {diff.mean:+.1f} points (95 % interval {diff.lower:+.1f} "
            f"to {diff.upper:+.1f}): not worse than {margin:g} points."
        )
    elif diff.upper < -margin:
        verdict = "worse"
        reason = (
            f"Scores are lower by {-diff.mean:.1f} points (95 % interval {diff.lower:+.1f} to "
            f"{diff.upper:+.1f}): worse than the {margin:g}-point margin."
        )
    else:
        verdict = "inconclusive"
        reason = (
            f"The score difference is {diff.mean:+.1f} points, but its 95 % interval "
            f"({diff.lower:+.1f} to {diff.upper:+.1f}) reaches below -{margin:g}: more scores "
            "would tell."
        )
    return Comparison(
        current.provider_model,
        candidate.provider_model,
        verdict,
        diff,
        saving,
        monthly,
        priced,
        reason,
    )


def _workload(
    evaluator: str,
    requested: str,
    served: list[ServedModel],
    *,
    margin: float,
    min_samples: int,
    per_month: float,
    prices: PriceTable,
) -> Workload:
    served.sort(key=lambda m: (-m.requests, m.provider_model))
    priced = [m for m in served if m.cost_per_request is not None and m.requests]
    comparisons = [
        _compare(
            current,
            candidate,
            margin=margin,
            min_samples=min_samples,
            per_month=per_month,
            prices=prices,
        )
        for current in priced
        for candidate in priced
        if candidate.cost_per_request < current.cost_per_request  # type: ignore[operator]
        and candidate.scores is not None
    ]
    note = None
    if len(served) < 2:
        note = (
            f"Only {served[0].provider_model if served else 'one model'} served this workload: "
            "split its traffic with a rule (a share to a cheaper model) and let the evaluator "
            "score both to compare."
        )
    elif not comparisons:
        note = "No model that served this workload was cheaper per request and scored."
    comparisons.sort(key=lambda c: (c.verdict != "equal_quality", -(c.monthly_saving or 0)))
    return Workload(evaluator, requested, tuple(served), tuple(comparisons), note)


async def find_cheaper_models(
    scope: InsightScope,
    prices: PriceTable,
    *,
    margin: float = DEFAULT_MARGIN,
    min_samples: int = DEFAULT_MIN_SAMPLES,
) -> CheaperModels:
    scores = await _scores(scope)
    if not scores:
        return CheaperModels(
            margin,
            min_samples,
            (),
            (
                "No scored answers in this range: an evaluator (see Quality) scores a sample of "
                "the traffic; suggestions need scores of at least two models per workload.",
            ),
        )
    costs = await _costs(scope, {row[1] for row in scores})
    grouped: dict[tuple[str, str], list[ServedModel]] = defaultdict(list)
    for evaluator, requested, served, count, total, squares in scores:
        cost = costs.get((requested, served))
        grouped[(evaluator, requested)].append(
            ServedModel(
                provider_model=served,
                requests=cost.requests if cost else 0,
                cost_per_request=cost.cost_per_request if cost else None,
                prompt_tokens=cost.prompt_tokens if cost else None,
                completion_tokens=cost.completion_tokens if cost else None,
                scores=Sample(int(count), float(total), float(squares)),
            )
        )
    workloads = [
        _workload(
            evaluator,
            requested,
            served,
            margin=margin,
            min_samples=min_samples,
            per_month=scope.per_month,
            prices=prices,
        )
        for (evaluator, requested), served in sorted(grouped.items())
    ]
    workloads.sort(
        key=lambda w: (
            not w.suggestions,
            -max((c.monthly_saving or 0 for c in w.suggestions), default=0),
            w.requested_model,
            w.evaluator,
        )
    )
    return CheaperModels(margin, min_samples, tuple(workloads))

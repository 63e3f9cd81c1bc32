"""What the judges' verdicts say, read back: the evaluations of one trace, scores over time by
model or by evaluator, models ranked by score and by cost per point, an A/B comparison of two
models, two tag values or a rule's traces against the rest, and how many evaluations ended how.

Every function takes `scope`, the one workspace the reader may see (None: every workspace, for
the operator), keyword-only without a default, and a [since, until) range on
`evaluations.created_at`, so each query walks the (workspace_id, created_at) index within a
range. Group counts are bounded (`MAX_GROUPS`) and lists limited.

Only evaluations with `status = 'ok'` carry a score; the others are counted by status.
`criterion` reads one criterion's score out of the `scores` object instead of the mean.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from telemetry.db import as_utc
from telemetry.schema import ai_interactions, evaluations, traces, workspaces
from telemetry.search_json import array_holds

__all__ = [
    "EVALUATION_STATUSES",
    "MAX_GROUPS",
    "MIN_SAMPLES",
    "Comparison",
    "EvaluationRow",
    "InvalidScoreQuery",
    "ModelRank",
    "ScoreSeries",
    "SideStats",
    "StatusSummary",
    "Variant",
    "compare",
    "evaluation_names",
    "mean_score",
    "mean_score_groups",
    "model_ranking",
    "score_series",
    "sides_of",
    "status_summary",
    "trace_evaluations",
    "welch",
]

EVALUATION_STATUSES: Final = ("ok", "failed", "no_content", "over_cap")
MAX_GROUPS: Final = 8
"""Lines on one chart; the groups with the most scores are kept."""
MAX_POINTS: Final = 2000
MIN_SAMPLES: Final = 10
"""Scores each side of a comparison needs before the comparison says anything."""
TRACE_LIMIT: Final = 200
RANK_LIMIT: Final = 50
RANK_ORDERS: Final = ("score", "cost_per_point")
MAX_CRITERION_LENGTH: Final = 64
CRITERION_NAME: Final = re.compile(rf"[\w .:/+-]{{1,{MAX_CRITERION_LENGTH}}}")
"""What a criterion may be called here: it becomes a JSON path, which quotes must not break."""

Condition = sa.ColumnElement[bool]
e = evaluations.c


class InvalidScoreQuery(ValueError):
    """A parameter the score queries cannot use; `parameter` names it for the caller's error."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


# --- shared conditions --------------------------------------------------------------------------


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Scope = str | tuple[str, ...] | None


def _window(scope: Scope, since: datetime, until: datetime) -> list[Condition]:
    if until <= since:
        raise InvalidScoreQuery("until", "the range must end after it starts")
    found: list[Condition] = [e.created_at >= _utc(since), e.created_at < _utc(until)]
    if isinstance(scope, str):
        found.insert(0, e.workspace_id == scope)
    elif scope is not None:
        found.insert(0, e.workspace_id.in_(scope))
    return found


async def _every_workspace(bind: AsyncEngine | AsyncConnection, scope: str | None) -> Scope:
    """The scope as the queries read it: every workspace is named one by one, so the
    (workspace_id, created_at) index serves the range per workspace, where "any workspace"
    would read the whole table."""
    if scope is not None:
        return scope
    query = sa.select(workspaces.c.workspace_id)
    if isinstance(bind, AsyncConnection):
        return tuple((await bind.execute(query)).scalars())
    async with bind.connect() as connection:
        return tuple((await connection.execute(query)).scalars())


def _scored(criterion: str | None) -> sa.ColumnElement[Any]:
    """The score a query averages: the evaluation's mean, or one criterion's score."""
    if criterion is None:
        return e.score
    if not CRITERION_NAME.fullmatch(criterion):
        raise InvalidScoreQuery(
            "criterion",
            f"a criterion's name: 1 to {MAX_CRITERION_LENGTH} letters, digits, spaces or _ . : / + -",
        )
    return e.scores[criterion].as_float()


def _filters(
    evaluator: str | None, model: str | None, criterion: str | None
) -> tuple[sa.ColumnElement[Any], list[Condition]]:
    value = _scored(criterion)
    found: list[Condition] = [e.status == "ok", value.is_not(None)]
    if evaluator:
        found.append(e.evaluator_name == evaluator)
    if model:
        found.append(e.requested_model == model)
    return value, found


def _bucket(column: sa.ColumnElement[Any], step: int, dialect: str) -> sa.ColumnElement[Any]:
    """The number of the `step`-second bucket a time falls in (seconds since 1970 // step)."""
    if dialect == "postgresql":
        return sa.cast(sa.func.floor(sa.func.extract("epoch", column) / step), sa.BigInteger)
    # SQLite keeps UTC text; integer division of whole seconds is the floor for times after 1970.
    return sa.cast(sa.func.strftime("%s", column), sa.Integer).op("/")(step)


def _dialect(connection: AsyncConnection) -> str:
    return connection.dialect.name


def _decimal(value: Any) -> Decimal:
    if value is None:
        return Decimal(0)
    return value if isinstance(value, Decimal) else Decimal(str(value))


# --- one trace ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EvaluationRow:
    evaluation_id: str
    evaluator_name: str
    trace_id: str
    interaction_id: str
    requested_model: str | None
    judge_model: str
    judge_trace_id: str | None
    status: str
    scores: dict[str, float]
    score: float | None
    rationale: str | None
    flags: list[str]
    cost_usd: Decimal | None
    latency_ms: float | None
    attempts: int
    error: str | None
    created_at: datetime


async def trace_evaluations(
    engine: AsyncEngine, trace_id: str, *, scope: str | None
) -> list[EvaluationRow]:
    """Every evaluation of the trace's interactions, oldest first (the trace_id index)."""
    conditions: list[Condition] = [e.trace_id == trace_id]
    if scope is not None:
        conditions.append(e.workspace_id == scope)
    query = (
        sa.select(*(getattr(e, name) for name in EvaluationRow.__slots__))
        .where(*conditions)
        .order_by(e.created_at, e.evaluation_id)
        .limit(TRACE_LIMIT)
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).mappings().all()
    found = []
    for row in rows:
        values = dict(row)
        values["created_at"] = as_utc(row["created_at"])
        values["scores"] = {str(k): float(v) for k, v in (row["scores"] or {}).items()}
        values["flags"] = [str(flag) for flag in row["flags"] or []]
        found.append(EvaluationRow(**values))
    return found


# --- over time ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScoreSeries:
    """One line: the mean score of each step (None where nothing was scored) and its count."""

    name: str
    means: list[float | None]
    counts: list[int]

    @property
    def total(self) -> int:
        return sum(self.counts)


def _steps(since: datetime, until: datetime, step: int) -> list[datetime]:
    if step <= 0:
        raise InvalidScoreQuery("step", "the step must be a positive number of seconds")
    first = int(_utc(since).timestamp()) // step * step
    end = _utc(until).timestamp()
    count = math.ceil((end - first) / step)
    if count > MAX_POINTS:
        raise InvalidScoreQuery("step", f"the range holds more than {MAX_POINTS} steps")
    return [datetime.fromtimestamp(first + n * step, UTC) for n in range(count)]


async def score_series(
    engine: AsyncEngine,
    *,
    scope: str | None,
    since: datetime,
    until: datetime,
    step: int,
    by: Literal["model", "evaluator"],
    evaluator: str | None = None,
    model: str | None = None,
    criterion: str | None = None,
) -> tuple[list[datetime], list[ScoreSeries]]:
    """The step starts, and one series per model (or evaluator): the `MAX_GROUPS` with the most
    scores in the range, most first."""
    within = await _every_workspace(engine, scope)
    key = {"model": e.requested_model, "evaluator": e.evaluator_name}.get(by)
    if key is None:
        raise InvalidScoreQuery("by", "by is model or evaluator")
    starts = _steps(since, until, step)
    value, filters = _filters(evaluator, model, criterion)
    where = [*_window(within, since, until), *filters]
    top = (
        sa.select(key, sa.func.count())
        .where(*where)
        .group_by(key)
        .order_by(sa.func.count().desc(), key)
        .limit(MAX_GROUPS)
    )
    async with engine.connect() as connection:
        names = [row[0] for row in (await connection.execute(top)).all()]
        if not names:
            return starts, []
        bucket = _bucket(e.created_at, step, _dialect(connection))
        keyed: Condition = key.in_([n for n in names if n is not None])
        if None in names:
            keyed = sa.or_(keyed, key.is_(None))
        query = (
            sa.select(bucket.label("bucket"), key, sa.func.count(), sa.func.sum(value))
            .where(*where, keyed)
            .group_by(bucket, key)
        )
        rows = (await connection.execute(query)).all()
    first = int(starts[0].timestamp()) // step if starts else 0
    lines = {name: ([0.0] * len(starts), [0] * len(starts)) for name in names}
    for number, name, count, total in rows:
        index = int(number) - first
        if 0 <= index < len(starts):
            sums, counts = lines[name]
            sums[index] += float(total or 0)
            counts[index] += int(count)
    return starts, [
        ScoreSeries(
            name=name if name is not None else "(unknown)",
            means=[s / c if c else None for s, c in zip(sums, counts, strict=True)],
            counts=counts,
        )
        for name, (sums, counts) in lines.items()
    ]


# --- models ranked ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModelRank:
    """A judged model's mean score and what its judged requests cost.

    `cost_per_request_usd` is the mean provider cost of the interactions that were judged (the
    same sample as the scores, so the two agree). `cost_per_point_usd` is the cost of 1,000 such
    requests divided by the mean score (to a millionth of a dollar): what each point of quality
    costs per thousand requests.
    Lower is cheaper for the quality; it says nothing unless the models did comparable work.
    """

    model: str
    samples: int
    mean_score: float
    cost_samples: int
    cost_per_request_usd: Decimal | None
    cost_per_point_usd: Decimal | None


async def model_ranking(
    engine: AsyncEngine,
    *,
    scope: str | None,
    since: datetime,
    until: datetime,
    evaluator: str | None = None,
    criterion: str | None = None,
    order: str = "score",
    limit: int = RANK_LIMIT,
) -> list[ModelRank]:
    """The `limit` most judged models, by mean score, best first (`order="score"`), or by cost
    per point, cheapest first (`order="cost_per_point"`; models without a known cost last)."""
    within = await _every_workspace(engine, scope)
    if order not in RANK_ORDERS:
        raise InvalidScoreQuery("rank", "rank is score or cost_per_point")
    value, filters = _filters(evaluator, None, criterion)
    i = ai_interactions.c
    joined = evaluations.outerjoin(
        ai_interactions,
        sa.and_(i.interaction_id == e.interaction_id, i.workspace_id == e.workspace_id),
    )
    query = (
        sa.select(
            e.requested_model,
            sa.func.count(),
            sa.func.avg(value),
            sa.func.count(i.cost_usd),
            sa.func.sum(i.cost_usd),
        )
        .select_from(joined)
        .where(*_window(within, since, until), *filters, e.requested_model.is_not(None))
        .group_by(e.requested_model)
        .order_by(sa.func.count().desc(), e.requested_model)
        .limit(max(1, min(limit, RANK_LIMIT)))
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    ranked = []
    for model, samples, mean, cost_samples, cost_sum in rows:
        per_request = _decimal(cost_sum) / cost_samples if cost_samples else None
        mean = float(mean)
        per_point = (
            (per_request * 1000 / Decimal(str(mean))).quantize(Decimal("1e-6"))
            if per_request is not None and mean > 0
            else None
        )
        ranked.append(
            ModelRank(
                model=model,
                samples=int(samples),
                mean_score=mean,
                cost_samples=int(cost_samples),
                cost_per_request_usd=per_request.quantize(Decimal("1e-10"))
                if per_request is not None
                else None,
                cost_per_point_usd=per_point,
            )
        )
    if order == "cost_per_point":
        ranked.sort(
            key=lambda r: (r.cost_per_point_usd is None, r.cost_per_point_usd or 0, -r.samples)
        )
    else:
        ranked.sort(key=lambda r: (-r.mean_score, -r.samples, r.model))
    return ranked


# --- A/B ----------------------------------------------------------------------------------------

VariantKind = Literal["model", "tag", "rule"]


@dataclass(frozen=True, slots=True)
class Variant:
    """One side of a comparison: the judged requests of a model, those whose trace carries a tag,
    or those whose trace a rule matched (`matched=False`: those it did not)."""

    kind: VariantKind
    value: str
    matched: bool = True

    @property
    def label(self) -> str:
        if self.kind == "rule":
            return f"rule {self.value} {'matched' if self.matched else 'not matched'}"
        return f"{self.kind} {self.value}"


def _variant_condition(variant: Variant, dialect: str) -> Condition:
    if not variant.value:
        raise InvalidScoreQuery(variant.kind, f"name the {variant.kind} to compare")
    if variant.kind == "model":
        return e.requested_model == variant.value
    column = traces.c.tags if variant.kind == "tag" else traces.c.rules_matched
    held = sa.exists().where(
        traces.c.trace_id == e.trace_id,
        traces.c.workspace_id == e.workspace_id,
        array_holds(column, variant.value, dialect),
    )
    return held if variant.matched else ~held


@dataclass(frozen=True, slots=True)
class SideStats:
    label: str
    samples: int
    mean: float | None
    std_dev: float | None


@dataclass(frozen=True, slots=True)
class Comparison:
    """`difference` is A's mean minus B's, with a 95 % confidence interval by Welch's t-test
    (the sides may differ in size and spread). None when either side has under `MIN_SAMPLES`."""

    a: SideStats
    b: SideStats
    difference: float | None
    low: float | None
    high: float | None
    verdict: str


def _t_quantile_975(df: float) -> float:
    """Student's t at 97.5 % for `df` degrees of freedom, by the Cornish-Fisher expansion around
    the normal quantile (within 0.01 of the exact value from df = 4 up; with `MIN_SAMPLES` a
    side, Welch's df is at least 9)."""
    z = 1.959963984540054
    return (
        z
        + (z**3 + z) / (4 * df)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
    )


def _side(label: str, count: int, total: float, squares: float) -> SideStats:
    if count == 0:
        return SideStats(label, 0, None, None)
    mean = total / count
    variance = max(0.0, (squares - count * mean * mean) / (count - 1)) if count > 1 else 0.0
    return SideStats(label, count, mean, math.sqrt(variance))


def welch(a: SideStats, b: SideStats) -> Comparison:
    if a.samples < MIN_SAMPLES or b.samples < MIN_SAMPLES:
        return Comparison(
            a,
            b,
            None,
            None,
            None,
            f"Not enough samples: each side needs at least {MIN_SAMPLES} scored answers "
            f"(A has {a.samples}, B has {b.samples}).",
        )
    assert a.mean is not None and b.mean is not None
    assert a.std_dev is not None and b.std_dev is not None
    va, vb = a.std_dev**2 / a.samples, b.std_dev**2 / b.samples
    difference = a.mean - b.mean
    spread = va + vb
    if spread == 0:
        low = high = difference
    else:
        df = spread**2 / (va**2 / (a.samples - 1) + vb**2 / (b.samples - 1))
        margin = _t_quantile_975(df) * math.sqrt(spread)
        low, high = difference - margin, difference + margin
    if low <= 0 <= high:
        verdict = (
            f"No clear difference: A minus B is {difference:+.1f} points, and the true difference "
            f"could lie anywhere from {low:+.1f} to {high:+.1f} points (95 % confidence)."
        )
    else:
        better, worse = ("A", "B") if difference > 0 else ("B", "A")
        verdict = (
            f"{better} scores higher than {worse} by {abs(difference):.1f} points "
            f"(95 % confidence: {min(abs(low), abs(high)):.1f} to "
            f"{max(abs(low), abs(high)):.1f} points)."
        )
    return Comparison(a, b, difference, low, high, verdict)


async def compare(
    engine: AsyncEngine,
    *,
    scope: str | None,
    since: datetime,
    until: datetime,
    a: Variant,
    b: Variant,
    evaluator: str | None = None,
    criterion: str | None = None,
) -> Comparison:
    """The scores of side A against side B within the range: counts, means, the difference."""
    within = await _every_workspace(engine, scope)
    value, filters = _filters(evaluator, None, criterion)
    where = [*_window(within, since, until), *filters]
    sides = []
    async with engine.connect() as connection:
        dialect = _dialect(connection)
        for variant in (a, b):
            query = sa.select(
                sa.func.count(), sa.func.sum(value), sa.func.sum(value * value)
            ).where(*where, _variant_condition(variant, dialect))
            count, total, squares = (await connection.execute(query)).one()
            sides.append(_side(variant.label, int(count), float(total or 0), float(squares or 0)))
    return welch(sides[0], sides[1])


# --- statuses and spend -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatusSummary:
    """Evaluations by how they ended, and what the judge's calls cost, per evaluator."""

    evaluator: str
    counts: dict[str, int]
    spend_usd: Decimal
    prompt_tokens: int
    completion_tokens: int

    @property
    def total(self) -> int:
        return sum(self.counts.values())


async def status_summary(
    engine: AsyncEngine,
    *,
    scope: str | None,
    since: datetime,
    until: datetime,
    evaluator: str | None = None,
) -> list[StatusSummary]:
    """One summary per evaluator (most evaluations first), at most `RANK_LIMIT`."""
    within = await _every_workspace(engine, scope)
    where = _window(within, since, until)
    if evaluator:
        where.append(e.evaluator_name == evaluator)
    query = (
        sa.select(
            e.evaluator_name,
            e.status,
            sa.func.count(),
            sa.func.sum(e.cost_usd),
            sa.func.sum(e.prompt_tokens),
            sa.func.sum(e.completion_tokens),
        )
        .where(*where)
        .group_by(e.evaluator_name, e.status)
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    found: dict[str, dict[str, Any]] = {}
    for name, status, count, cost, prompt, completion in rows:
        entry = found.setdefault(
            name,
            {
                "counts": dict.fromkeys(EVALUATION_STATUSES, 0),
                "spend": Decimal(0),
                "prompt": 0,
                "completion": 0,
            },
        )
        entry["counts"][status] = entry["counts"].get(status, 0) + int(count)
        entry["spend"] += _decimal(cost)
        entry["prompt"] += int(prompt or 0)
        entry["completion"] += int(completion or 0)
    summaries = [
        StatusSummary(name, v["counts"], v["spend"], v["prompt"], v["completion"])
        for name, v in found.items()
    ]
    summaries.sort(key=lambda s: (-s.total, s.evaluator))
    return summaries[:RANK_LIMIT]


# --- for alerts and pickers ---------------------------------------------------------------------


async def mean_score(
    connection: AsyncConnection,
    *,
    scope: str | None,
    since: datetime,
    until: datetime,
    evaluator: str,
    model: str | None = None,
    criterion: str | None = None,
) -> tuple[int, float | None]:
    """How many scores the evaluator gave in the range, and their mean (None when none)."""
    within = await _every_workspace(connection, scope)
    value, filters = _filters(evaluator, model, criterion)
    query = sa.select(sa.func.count(), sa.func.avg(value)).where(
        *_window(within, since, until), *filters
    )
    count, mean = (await connection.execute(query)).one()
    return int(count), float(mean) if mean is not None else None


GROUP_COLUMNS: Final = {"evaluator": e.evaluator_name, "model": e.requested_model}


async def mean_score_groups(
    connection: AsyncConnection,
    *,
    scope: str | None,
    since: datetime,
    until: datetime,
    evaluators: Sequence[str],
    models: Sequence[str] = (),
    criterion: str | None = None,
    group_by: tuple[str, ...] = (),
) -> dict[tuple[str, ...], tuple[int, float | None]]:
    """(count, mean) of the scores in the range per group of `group_by` (evaluator, model),
    for the alert rules on scores; at most `RANK_LIMIT` groups, the most scored first."""
    within = await _every_workspace(connection, scope)
    if any(name not in GROUP_COLUMNS for name in group_by):
        raise InvalidScoreQuery("group_by", "scores are grouped by evaluator or model")
    value, filters = _filters(None, None, criterion)
    if evaluators:
        filters.append(e.evaluator_name.in_(list(evaluators)))
    if models:
        filters.append(e.requested_model.in_(list(models)))
    keys = [GROUP_COLUMNS[name] for name in group_by]
    query = (
        sa.select(*keys, sa.func.count(), sa.func.avg(value))
        .where(*_window(within, since, until), *filters)
        .group_by(*keys)
        .order_by(sa.func.count().desc())
        .limit(RANK_LIMIT)
    )
    found: dict[tuple[str, ...], tuple[int, float | None]] = {}
    for row in (await connection.execute(query)).all():
        group = tuple("" if v is None else str(v) for v in row[: len(keys)])
        count, mean = row[len(keys)], row[len(keys) + 1]
        found[group] = (int(count), float(mean) if mean is not None else None)
    return found


async def evaluation_names(
    engine: AsyncEngine, *, scope: str | None, since: datetime, until: datetime
) -> tuple[list[str], list[str]]:
    """The evaluators and judged models with evaluations in the range, for the page's pickers."""
    within = await _every_workspace(engine, scope)
    where = _window(within, since, until)
    async with engine.connect() as connection:
        evaluators = (
            await connection.execute(
                sa.select(e.evaluator_name)
                .where(*where)
                .group_by(e.evaluator_name)
                .order_by(e.evaluator_name)
                .limit(RANK_LIMIT)
            )
        ).scalars()
        evaluator_names = [str(name) for name in evaluators]
        models = (
            await connection.execute(
                sa.select(e.requested_model)
                .where(*where, e.requested_model.is_not(None))
                .group_by(e.requested_model)
                .order_by(e.requested_model)
                .limit(RANK_LIMIT)
            )
        ).scalars()
        return evaluator_names, [str(model) for model in models]


def sides_of(kind: str, first: str, second: str | None) -> tuple[Variant, Variant]:
    """The two sides a request asks to compare: two models, two tags, or one rule (matched
    against not matched) unless a second rule is named."""
    if kind not in ("model", "tag", "rule"):
        raise InvalidScoreQuery("kind", "kind is model, tag or rule")
    if kind == "rule" and not second:
        return Variant("rule", first), Variant("rule", first, matched=False)
    if not second:
        raise InvalidScoreQuery("b", f"name the second {kind} to compare")
    return Variant(kind, first), Variant(kind, second)  # type: ignore[arg-type]

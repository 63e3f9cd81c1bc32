"""Analytics read from the roll-ups agree with the raw requests they were made from, on both
backends: totals, groups, filters, scoping, top-N, percentiles within a bucket's width."""

from __future__ import annotations

import asyncio
import itertools
import math
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.analytics import AnalyticsQuery, InvalidQuery, plan, range_pieces, run_query
from telemetry.analytics_metrics import percentile_of
from telemetry.analytics_scans import SharedScans
from telemetry.db import create_engine
from telemetry.records import TraceBundle
from telemetry.schema import DEFAULT_WORKSPACE_ID, ROLLUP_LATENCY_BOUNDS_MS
from telemetry.writers import BatchWriter
from tests.e2e.conftest import Database, backend_database
from tests.telemetry import make_bundle

__all__ = ["backend_database"]

START = datetime(2025, 2, 3, 0, 0, tzinfo=UTC)
HOURS = 50
OTHER_WORKSPACE = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
SECRET_MODEL = "model-only-in-the-other-workspace"
MODELS = {"gpt-4o": "openai", "gpt-4o-mini": "openai", "claude-3-5": "anthropic"}


@dataclass
class History:
    engine: AsyncEngine
    bundles: list[TraceBundle]

    def of(self, workspace: str | None = None) -> list[TraceBundle]:
        return [b for b in self.bundles if workspace is None or b.trace.workspace_id == workspace]


def _bundles(seed: int = 7) -> list[TraceBundle]:
    draw = random.Random(seed)
    found = []
    for _ in range(700):
        other = draw.random() < 0.2
        model = SECRET_MODEL if other else draw.choice(sorted(MODELS))
        found.append(
            make_bundle(
                started_at=START.timestamp() + draw.uniform(0, HOURS * 3600),
                latency_ms=draw.lognormvariate(5.5, 0.9),
                cost=None if draw.random() < 0.05 else Decimal(draw.randint(1, 99_999)) / 10**7,
                status="error" if draw.random() < 0.1 else "ok",
                cache_hit=draw.random() < 0.15,
                prompt_tokens=draw.randint(1, 3000),
                completion_tokens=draw.randint(0, 800),
                api_key_id=draw.choice(["key-a", "key-b"]) if not other else "key-other",
                provider=MODELS.get(model, "secret-provider"),
                model=model,
                workspace_id=OTHER_WORKSPACE if other else DEFAULT_WORKSPACE_ID,
            )
        )
    return found


@pytest.fixture(scope="module")
async def history(backend_database: Database) -> AsyncIterator[History]:
    """The requests, recorded once per backend for the module: its tests only read them."""
    engine = create_engine(backend_database.url)
    bundles = _bundles()
    writer = BatchWriter(engine)
    for start in range(0, len(bundles), 250):  # several batches add into the same rows
        await writer.write(bundles[start : start + 250])
    yield History(engine, bundles)
    await engine.dispose()


def _query(metric: str = "requests", **changes: object) -> AnalyticsQuery:
    given: dict[str, object] = {"start": START, "end": START + timedelta(hours=HOURS)}
    return AnalyticsQuery(metric=metric, **(given | changes))  # type: ignore[arg-type]


def _cost(bundle: TraceBundle) -> Decimal:
    return sum((i.cost_usd for i in bundle.interactions if i.cost_usd), Decimal(0))


async def test_totals_equal_the_sums_of_the_raw_requests_at_every_grain(history: History) -> None:
    bundles = history.bundles
    expected: dict[str, int | Decimal] = {
        "requests": len(bundles),
        "errors": sum(b.trace.status == "error" for b in bundles),
        "cache_hits": sum(b.interactions[0].cache_hit for b in bundles),
        "input_tokens": sum(b.interactions[0].prompt_tokens or 0 for b in bundles),
        "output_tokens": sum(b.interactions[0].completion_tokens or 0 for b in bundles),
        "cost": sum((_cost(b) for b in bundles), Decimal(0)),
        "unpriced": sum(
            b.interactions[0].cost_usd is None and not b.interactions[0].cache_hit for b in bundles
        ),
    }
    for step in (300, 3600, 86400):
        for metric, total in expected.items():
            result = await run_query(history.engine, _query(metric, step=step), scope=None)
            assert result.total == total, (metric, step)
            (series,) = result.series
            assert sum(value or 0 for _, value in series.points) == total, (metric, step)
    by_day = await run_query(history.engine, _query("requests", step=86400), scope=None)
    assert by_day.grain == "day"
    assert [moment for moment, _ in by_day.series[0].points] == [
        START,
        START + timedelta(days=1),
        START + timedelta(days=2),
    ]
    error_rate = await run_query(history.engine, _query("error_rate"), scope=None)
    assert error_rate.total == pytest.approx(int(expected["errors"]) / len(bundles))


async def test_groups_and_filters_split_the_totals_by_model_and_provider(history: History) -> None:
    result = await run_query(
        history.engine, _query("cost", group_by=("model",), step=3600), scope=None
    )
    by_model = {series.group["model"]: series.total for series in result.series}
    expected: dict[str, Decimal] = {}
    for bundle in history.bundles:
        model = bundle.trace.requested_model or ""
        expected[model] = expected.get(model, Decimal(0)) + _cost(bundle)
    assert by_model == expected

    openai = await run_query(
        history.engine,
        _query("requests", group_by=("model",), filters={"provider": ("openai",)}),
        scope=None,
    )
    assert {s.group["model"]: s.total for s in openai.series} == {
        model: sum(b.trace.requested_model == model for b in history.bundles)
        for model in ("gpt-4o", "gpt-4o-mini")
    }


async def test_a_workspace_sees_only_its_own_numbers(history: History) -> None:
    mine = await run_query(
        history.engine, _query("requests", group_by=("model", "key")), scope=DEFAULT_WORKSPACE_ID
    )
    groups = [series.group for series in mine.series]
    assert groups and all(group["model"] != SECRET_MODEL for group in groups)
    assert all(group["key"] != "key-other" for group in groups)
    assert mine.total == len(history.of(DEFAULT_WORKSPACE_ID))

    theirs = await run_query(history.engine, _query("cost"), scope=OTHER_WORKSPACE)
    assert theirs.total == sum((_cost(b) for b in history.of(OTHER_WORKSPACE)), Decimal(0))
    nobody = await run_query(history.engine, _query("requests"), scope="f" * 32)
    assert nobody.total == 0


async def test_top_folds_the_rest_into_other_without_losing_anything(history: History) -> None:
    result = await run_query(
        history.engine, _query("requests", group_by=("model",), top=2), scope=None
    )
    names = [series.group["model"] for series in result.series]
    counts = {model: 0 for model in [*MODELS, SECRET_MODEL]}
    for bundle in history.bundles:
        counts[bundle.trace.requested_model or ""] += 1
    largest = sorted(counts, key=lambda model: -counts[model])[:2]
    assert names == [*largest, "(other)"]
    assert sum(series.total or 0 for series in result.series) == len(history.bundles)

    latency = await run_query(
        history.engine, _query("latency_p95", group_by=("model",), top=1), scope=None
    )
    other = next(s for s in latency.series if s.group["model"] == "(other)")
    rest = [
        b for b in history.bundles if b.trace.requested_model != latency.series[0].group["model"]
    ]
    _assert_close_to_exact(other.total, [b.trace.duration_ms for b in rest], 0.95)


async def test_a_ranking_over_ragged_edges_reads_each_stretch_at_its_coarsest_grain(
    history: History,
) -> None:
    """Totals over a range with part days and part hours at both ends (read from day, hour and
    minute rows together) still equal the raw requests in it, group by group."""
    start, end = START + timedelta(hours=22, minutes=10), START + timedelta(hours=49, minutes=30)
    query = _query("requests", group_by=("model",), top=2, start=start, end=end, step=300)
    assert [grain for grain, _, _ in range_pieces(plan(query))] == [
        "minute",
        "minute",
        "hour",
        "hour",
        "day",
    ]
    result = await run_query(history.engine, query, scope=None)
    inside = [
        b for b in history.bundles if start.timestamp() <= b.trace.started_at < end.timestamp()
    ]
    counts: dict[str, int] = {}
    for bundle in inside:
        model = bundle.trace.requested_model or ""
        counts[model] = counts.get(model, 0) + 1
    largest = sorted(counts, key=lambda model: -counts[model])[:2]
    totals = {series.group["model"]: series.total for series in result.series}
    assert totals == {
        **{model: counts[model] for model in largest},
        "(other)": sum(n for model, n in counts.items() if model not in largest),
    }
    for series in result.series:
        assert sum(value or 0 for _, value in series.points) == series.total


@pytest.mark.parametrize(
    ("start", "end", "step"),
    [
        ("2025-02-03T22:10", "2025-02-06T01:30", 300),
        ("2025-02-03T00:00", "2025-02-10T00:00", 3600),
        ("2025-02-03T05:00", "2025-02-03T09:00", 3600),
        ("2025-02-03T05:07", "2025-02-03T05:20", 60),
        ("2025-02-01T00:00", "2025-03-01T00:00", 86400),
    ],
)
def test_range_pieces_cover_the_range_once_each_on_its_own_grain(
    start: str, end: str, step: int
) -> None:
    query = _query(
        "requests",
        start=datetime.fromisoformat(start).replace(tzinfo=UTC),
        end=datetime.fromisoformat(end).replace(tzinfo=UTC),
        step=step,
        top=3,
        group_by=("model",),
    )
    planned = plan(query)
    pieces = sorted(range_pieces(planned), key=lambda piece: piece[1])
    assert pieces[0][1] == planned.start and pieces[-1][2] == planned.end
    for (_, _, previous_end), (_, next_start, _) in itertools.pairwise(pieces):
        assert previous_end == next_start
    seconds = {"minute": 60, "hour": 3600, "day": 86400}
    for grain, lo, hi in pieces:
        assert lo < hi
        assert lo.timestamp() % seconds[grain] == 0 and hi.timestamp() % seconds[grain] == 0
    # no stretch read at a grain finer than it could be
    for grain, lo, hi in pieces:
        for coarser, size in seconds.items():
            if size > seconds[grain]:
                whole = -(-lo.timestamp() // size) * size + size <= hi.timestamp()
                assert not whole, (grain, lo, hi, coarser)


def _exact(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(math.ceil(fraction * len(ordered)) - 1, 0)]


def _bucket_width(value: float) -> float:
    bounds = (0, *ROLLUP_LATENCY_BOUNDS_MS)
    for lower, upper in itertools.pairwise(bounds):
        if value <= upper:
            return float(upper - lower)
    return math.inf


def _assert_close_to_exact(estimate: object, values: list[float], fraction: float) -> None:
    exact = _exact(values, fraction)
    assert isinstance(estimate, float)
    assert abs(estimate - exact) <= _bucket_width(exact), (estimate, exact)


async def test_percentiles_are_within_a_bucket_of_the_exact_ones(history: History) -> None:
    durations = [b.trace.duration_ms for b in history.bundles]
    for name, fraction in (("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)):
        result = await run_query(history.engine, _query(f"latency_{name}"), scope=None)
        _assert_close_to_exact(result.total, durations, fraction)
    ttft = await run_query(history.engine, _query("ttft_p50"), scope=None)
    assert ttft.total is not None and 10 < ttft.total <= 15  # every attempt's ttft is 12.5 ms


def test_a_percentile_of_an_empty_histogram_is_unknown_and_of_one_bucket_inside_it() -> None:
    assert percentile_of([0] * (len(ROLLUP_LATENCY_BOUNDS_MS) + 1), 0.5) is None
    buckets = [0] * (len(ROLLUP_LATENCY_BOUNDS_MS) + 1)
    buckets[ROLLUP_LATENCY_BOUNDS_MS.index(100)] = 10  # ten requests in (75, 100]
    assert percentile_of(buckets, 0.5) == pytest.approx(87.5)
    assert percentile_of(buckets, 1.0) == pytest.approx(100.0)
    buckets[-1] = 1000  # beyond the last bound: reported as the last bound
    assert percentile_of(buckets, 0.99) == float(ROLLUP_LATENCY_BOUNDS_MS[-1])


async def test_tags_rules_and_guardrails_are_read_from_the_breakdowns(history: History) -> None:
    by_tag = await run_query(history.engine, _query("requests", group_by=("tag",)), scope=None)
    assert {s.group["tag"]: s.total for s in by_tag.series} == {
        "prod": len(history.bundles),
        "ü-tag": len(history.bundles),
    }
    assert by_tag.grain == "hour"
    cost_by_tag = await run_query(
        history.engine, _query("cost", filters={"tag": ("prod",)}), scope=OTHER_WORKSPACE
    )
    assert cost_by_tag.total == sum((_cost(b) for b in history.of(OTHER_WORKSPACE)), Decimal(0))


@pytest.mark.parametrize(
    "changes",
    [
        {"metric": "requests"},
        {"metric": "cost", "group_by": ("model",), "top": 2},
        {"metric": "latency_p95", "group_by": ("model",), "top": 1},
        {"metric": "error_rate", "group_by": ("provider", "model")},
        {"metric": "requests", "group_by": ("key",), "filters": {"status": ("ok",)}, "top": 1},
        {"metric": "cost", "group_by": ("tag",), "top": 1},
        {
            "metric": "requests",
            "group_by": ("model",),
            "top": 2,
            "start": START + timedelta(hours=22, minutes=10),
            "end": START + timedelta(hours=49, minutes=30),
            "step": 300,
        },
    ],
)
async def test_totals_only_equal_the_totals_of_the_series(
    history: History, changes: dict[str, object]
) -> None:
    """A totals-only read (one scan of the range's coarsest rows) gives the groups, `(other)`
    included, and the overall total that the series give, and no points."""
    query = _query(**changes)  # type: ignore[arg-type]
    for scope in (None, OTHER_WORKSPACE):
        series = await run_query(history.engine, query, scope=scope)
        totals = await run_query(history.engine, replace(query, points=False), scope=scope)
        assert [(s.group, s.total) for s in totals.series] == [
            (s.group, s.total) for s in series.series
        ]
        assert totals.total == series.total
        assert all(s.points == [] for s in totals.series)
        if series.metric.additive:
            for found in series.series:
                assert sum(value or 0 for _, value in found.points) == found.total


@pytest.mark.parametrize("group_by", [("model",), ("key",), ("tag",)])
async def test_other_without_points_keeps_every_total(
    history: History, group_by: tuple[str, ...]
) -> None:
    query = _query("requests", group_by=group_by, top=1, step=3600)
    series = await run_query(history.engine, query, scope=None)
    alone = await run_query(history.engine, replace(query, other_points=False), scope=None)
    assert [(s.group, s.total) for s in alone.series] == [(s.group, s.total) for s in series.series]
    assert alone.total == series.total
    assert sum(s.total or 0 for s in alone.series) == series.total
    *kept, other = alone.series
    assert other.group[group_by[0]] == "(other)"
    assert other.points == []
    assert [s.points for s in kept] == [s.points for s in series.series[:-1]]


async def test_queries_of_one_page_share_their_scans_and_answer_as_alone(
    history: History,
) -> None:
    """Queries over the same rows with different sums and groups read them in one statement
    (started together), and each answers exactly as it does alone."""
    queries = [
        _query("requests", step=3600),
        _query("input_tokens", step=3600),
        _query("cache_hit_rate", step=3600),
        _query("requests", group_by=("model",), top=2, step=3600),
        _query("total_tokens", group_by=("model",), top=2, step=3600),
        _query("latency_p95", group_by=("model",), top=2, step=3600),
        _query("cost", group_by=("key",), top=1, step=3600),
        _query("cost", group_by=("key",), top=1, step=3600, other_points=False),
        _query("requests", group_by=("end_user",), top=1, step=3600),
        _query("cost", group_by=("model",), points=False),
    ]
    for scope in (None, OTHER_WORKSPACE):
        scans = SharedScans(history.engine, concurrency=2)
        together = await asyncio.gather(
            *(run_query(history.engine, q, scope=scope, scans=scans) for q in queries)
        )
        for query, shared in zip(queries, together, strict=True):
            alone = await run_query(history.engine, query, scope=scope)
            assert [(s.group, s.total, s.points) for s in shared.series] == [
                (s.group, s.total, s.points) for s in alone.series
            ], query
            assert shared.total == alone.total
    # Started together, the three without groups and the three by model read one scan (by
    # step and model); by model, status and provider, one more.
    scans = SharedScans(history.engine, concurrency=2)
    await asyncio.gather(
        *(run_query(history.engine, q, scope=None, scans=scans) for q in queries[:6])
    )
    assert scans.statements == 1
    await asyncio.gather(
        run_query(history.engine, _query("errors", group_by=("status",)), scope=None, scans=scans),
        run_query(
            history.engine, _query("cost", group_by=("provider", "model")), scope=None, scans=scans
        ),
    )
    assert scans.statements == 2


@pytest.mark.parametrize(
    ("changes", "parameter"),
    [
        ({"metric": "no_such_metric"}, "metric"),
        ({"group_by": ("model", "key", "provider")}, "group_by"),
        ({"group_by": ("model", "model")}, "group_by"),
        ({"group_by": ("colour",)}, "group_by"),
        ({"filters": {"colour": ("red",)}}, "colour"),
        ({"group_by": ("tag", "model")}, "group_by"),
        ({"group_by": ("tag", "end_user")}, "group_by"),
        ({"metric": "latency_p95", "group_by": ("tag",)}, "group_by"),
        ({"step": 90}, "step"),
        ({"step": 60, "end": START + timedelta(days=30)}, "step"),
        ({"metric": "requests", "group_by": ("tag",), "step": 60}, "step"),
        ({"top": 0}, "top"),
        ({"end": START}, "to"),
    ],
)
def test_a_query_it_cannot_answer_names_what_to_change(
    changes: dict[str, object], parameter: str
) -> None:
    from telemetry.analytics import plan

    query = _query(str(changes.pop("metric", "requests")), **changes)
    with pytest.raises(InvalidQuery) as refused:
        plan(query)
    assert refused.value.parameter == parameter
    assert str(refused.value)


async def test_percentiles_of_one_histogram_on_one_page_read_its_sums_once(
    history: History,
) -> None:
    from telemetry.analytics import SumsMemo

    memo: SumsMemo = {}
    p50 = await run_query(
        history.engine, _query("latency_p50", group_by=("model",)), scope=None, memo=memo
    )
    p95 = await run_query(
        history.engine, _query("latency_p95", group_by=("model",)), scope=None, memo=memo
    )
    assert len(memo) == 1
    alone = await run_query(history.engine, _query("latency_p95", group_by=("model",)), scope=None)
    assert [(s.group, s.total) for s in p95.series] == [(s.group, s.total) for s in alone.series]
    assert [s.total for s in p50.series] != [s.total for s in p95.series]
    await run_query(history.engine, _query("cost", group_by=("model",)), scope=None, memo=memo)
    assert len(memo) == 2


@pytest.fixture
async def named_history(migrated_database_url: str) -> AsyncIterator[History]:
    """Requests of several end users and tags (some of none), in two workspaces."""
    engine = create_engine(migrated_database_url)
    draw = random.Random(11)
    bundles = _bundles(seed=11)[:400]
    for bundle in bundles:
        bundle.trace.end_user = draw.choice([None, "ann", "bob", "bob", "cy", "dee", "eve", "eve"])
        bundle.trace.tags = draw.sample(["t1", "t2", "t2", "t3", "t4"], k=draw.randint(0, 3))
    writer = BatchWriter(engine)
    for start in range(0, len(bundles), 150):
        await writer.write(bundles[start : start + 150])
    yield History(engine, bundles)
    await engine.dispose()


def _names(bundle: TraceBundle, dimension: str) -> list[str]:
    if dimension == "end_user":
        return [bundle.trace.end_user] if bundle.trace.end_user else []
    return list(dict.fromkeys(bundle.trace.tags))


@pytest.mark.parametrize(
    ("dimension", "filters"),
    [
        ("end_user", {}),
        ("end_user", {"key": ("key-a",)}),
        ("end_user", {"end_user": ("bob", "cy", "eve")}),
        ("tag", {}),
        ("tag", {"key": ("key-b",)}),
        ("tag", {"tag": ("t1", "t2", "t4")}),
    ],
)
async def test_other_per_step_of_end_users_and_tags_is_the_rest_of_the_raw_requests(
    named_history: History, dimension: str, filters: dict[str, tuple[str, ...]]
) -> None:
    """The `(other)` group's points (read from the totals over every name, or, when the query
    picks names, from every name's rows) are the requests and cost of the names not kept."""
    for scope in (None, DEFAULT_WORKSPACE_ID):
        counts: dict[str, dict[int, int]] = {}
        costs: dict[str, dict[int, Decimal]] = {}
        for bundle in named_history.of(scope):
            if bundle.trace.api_key_id not in filters.get("key", (bundle.trace.api_key_id,)):
                continue
            hour = int((bundle.trace.started_at - START.timestamp()) // 3600)
            for name in _names(bundle, dimension):
                if name not in filters.get(dimension, (name,)):
                    continue
                counts.setdefault(name, {}).setdefault(hour, 0)
                counts[name][hour] += 1
                costs.setdefault(name, {}).setdefault(hour, Decimal(0))
                costs[name][hour] += _cost(bundle)
        ranked = sorted(counts, key=lambda name: (-sum(counts[name].values()), name))
        rest = ranked[2:]
        assert rest, "the history leaves names out of a top 2"
        for metric, sums in (("requests", counts), ("cost", costs)):
            query = _query(metric, group_by=(dimension,), top=2, step=3600, filters=filters)
            result = await run_query(named_history.engine, query, scope=scope)
            other = next(s for s in result.series if s.group[dimension] == "(other)")
            expected = [
                sum((sums[name].get(hour, 0) for name in rest), Decimal(0)) for hour in range(HOURS)
            ]
            assert [value for _, value in other.points] == expected, (metric, scope)

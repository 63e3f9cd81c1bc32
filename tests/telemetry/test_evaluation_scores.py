"""The score queries on SQLite and Postgres, against a planted history whose expected answers
the tests work out from the history itself: a trace's evaluations, series by model and
evaluator, the ranking with cost per point, A/B comparisons (models, tags, a rule), status
counts and judge spend, one workspace never seeing another's scores."""

from __future__ import annotations

import statistics
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.keys.store import KeyStore
from telemetry.db import create_engine
from telemetry.evaluation import scores
from telemetry.evaluation.scores import InvalidScoreQuery, Variant
from telemetry.schema import DEFAULT_WORKSPACE_ID
from tests.e2e.conftest import Database, backend_database
from tests.telemetry.evaluation_history import Judged, plant

__all__ = ["backend_database"]

START = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
END = START + timedelta(hours=1)
EVERY = timedelta(minutes=2, seconds=50)


def _history(other_workspace: str) -> list[Judged]:
    history: list[Judged] = []
    for n in range(20):
        at = START + EVERY * n
        history.append(
            Judged(
                at=at,
                model="big",
                scores={"accuracy": 80 + (n % 5) * 3, "helpfulness": 90},
                cost_usd=Decimal("0.004"),
                flags=["hallucination"] if n == 3 else [],
            )
        )
        history.append(
            Judged(
                at=at + timedelta(seconds=20),
                model="small",
                scores={"accuracy": 60 + (n % 5) * 4, "helpfulness": 70 - n % 2 * 10},
                cost_usd=Decimal("0.001"),
                tags=["beta"] if n % 2 == 0 else ["prod"],
                rules=["r-cheap"],
            )
        )
    for n in range(3):
        history.append(
            Judged(at=START + timedelta(minutes=5 + n), model="tiny", scores={"accuracy": 50})
        )
    for n in range(4):
        history.append(
            Judged(
                at=START + timedelta(minutes=40 + n),
                model="big",
                scores={"tone": 40 + n * 10},
                evaluator="tone-check",
            )
        )
    for status in ("failed", "failed", "no_content", "over_cap"):
        history.append(
            Judged(
                at=START + timedelta(minutes=30),
                model="big",
                status=status,
                judge_cost_usd=Decimal("0.0001") if status == "failed" else None,
            )
        )
    for n in range(12):
        history.append(
            Judged(
                at=START + timedelta(minutes=n),
                model="big",
                scores={"accuracy": 5},
                workspace_id=other_workspace,
                tags=["beta"],
            )
        )
    return history


class Planted:
    def __init__(self, engine: AsyncEngine, history: list[Judged], other: str) -> None:
        self.engine = engine
        self.history = history
        self.other = other

    def scored(self, workspace: str = DEFAULT_WORKSPACE_ID, **wanted: object) -> list[Judged]:
        return [
            j
            for j in self.history
            if j.workspace_id == workspace
            and j.status == "ok"
            and all(getattr(j, k) == v for k, v in wanted.items())
        ]


@pytest.fixture(scope="module")
async def planted(backend_database: Database) -> AsyncIterator[Planted]:
    engine = create_engine(backend_database.url)
    other = (await KeyStore(engine).create_workspace("scores-other", name="Other")).workspace_id
    history = _history(other)
    await plant(engine, history)
    yield Planted(engine, history, other)
    await engine.dispose()


def _means(history: list[Judged]) -> list[float]:
    return [j.mean for j in history if j.mean is not None]


async def test_a_trace_shows_its_evaluations_to_its_workspace_only(planted: Planted) -> None:
    flagged = next(j for j in planted.history if j.flags)
    rows = await scores.trace_evaluations(planted.engine, flagged.trace_id, scope=None)
    assert [(r.evaluator_name, r.score, r.flags) for r in rows] == [
        ("helpfulness-check", flagged.mean, ["hallucination"])
    ]
    assert rows[0].scores == {"accuracy": 89.0, "helpfulness": 90.0}
    assert rows[0].created_at == flagged.at
    assert (
        await scores.trace_evaluations(planted.engine, flagged.trace_id, scope=planted.other) == []
    )


async def test_series_by_model_holds_each_steps_mean(planted: Planted) -> None:
    step = 1800
    starts, series = await scores.score_series(
        planted.engine,
        scope=DEFAULT_WORKSPACE_ID,
        since=START,
        until=END,
        step=step,
        by="model",
        evaluator="helpfulness-check",
    )
    assert starts == [START, START + timedelta(seconds=step)]
    assert [s.name for s in series] == ["big", "small", "tiny"]
    for line in series:
        for index, begin in enumerate(starts):
            inside = [
                j
                for j in planted.scored(model=line.name, evaluator="helpfulness-check")
                if begin <= j.at < begin + timedelta(seconds=step)
            ]
            assert line.counts[index] == len(inside)
            expected = statistics.fmean(_means(inside)) if inside else None
            assert line.means[index] == pytest.approx(expected)


async def test_series_by_evaluator_of_one_criterion(planted: Planted) -> None:
    _, series = await scores.score_series(
        planted.engine,
        scope=None,
        since=START,
        until=END,
        step=3600,
        by="evaluator",
        criterion="accuracy",
    )
    by_name = {s.name: s for s in series}
    assert set(by_name) == {"helpfulness-check"}  # tone-check scored no accuracy
    everyone = [j for j in planted.history if j.status == "ok" and "accuracy" in j.scores]
    assert by_name["helpfulness-check"].counts == [len(everyone)]
    assert by_name["helpfulness-check"].means[0] == pytest.approx(
        statistics.fmean(j.scores["accuracy"] for j in everyone)
    )


async def test_models_ranked_by_score_with_cost_per_point(planted: Planted) -> None:
    ranked = await scores.model_ranking(
        planted.engine,
        scope=DEFAULT_WORKSPACE_ID,
        since=START,
        until=END,
        evaluator="helpfulness-check",
    )
    assert [r.model for r in ranked] == ["big", "small", "tiny"]
    big, small, _ = ranked
    big_mean = statistics.fmean(_means(planted.scored(model="big", evaluator="helpfulness-check")))
    assert big.samples == 20 and big.mean_score == pytest.approx(big_mean)
    assert big.cost_per_request_usd == Decimal("0.004")
    assert big.cost_per_point_usd == pytest.approx(
        Decimal("4") / Decimal(str(big_mean)), abs=Decimal("1e-6")
    )
    assert small.cost_per_request_usd == Decimal("0.001")
    assert small.cost_per_point_usd is not None and big.cost_per_point_usd is not None
    assert small.cost_per_point_usd < big.cost_per_point_usd
    cheapest = await scores.model_ranking(
        planted.engine,
        scope=DEFAULT_WORKSPACE_ID,
        since=START,
        until=END,
        evaluator="helpfulness-check",
        order="cost_per_point",
    )
    assert [r.model for r in cheapest] == ["small", "tiny", "big"]  # $1/67, $2/50, $4/87


def test_t_quantiles_match_the_tables() -> None:
    for df, exact in ((4, 2.776), (9, 2.262), (10, 2.228), (30, 2.042), (1000, 1.962)):
        assert scores._t_quantile_975(df) == pytest.approx(exact, abs=0.01)


async def test_two_models_compared_with_a_confidence_interval(planted: Planted) -> None:
    result = await scores.compare(
        planted.engine,
        scope=DEFAULT_WORKSPACE_ID,
        since=START,
        until=END,
        a=Variant("model", "big"),
        b=Variant("model", "small"),
        evaluator="helpfulness-check",
    )
    big = _means(planted.scored(model="big", evaluator="helpfulness-check"))
    small = _means(planted.scored(model="small"))
    assert (result.a.samples, result.b.samples) == (len(big), len(small))
    assert result.a.mean == pytest.approx(statistics.fmean(big))
    assert result.a.std_dev == pytest.approx(statistics.stdev(big))
    assert result.difference == pytest.approx(statistics.fmean(big) - statistics.fmean(small))
    assert result.low is not None and result.high is not None
    assert 0 < result.low < result.difference < result.high
    assert result.verdict.startswith("A scores higher than B by")


async def test_small_samples_say_so(planted: Planted) -> None:
    result = await scores.compare(
        planted.engine,
        scope=DEFAULT_WORKSPACE_ID,
        since=START,
        until=END,
        a=Variant("model", "tiny"),
        b=Variant("model", "small"),
    )
    assert (result.a.samples, result.b.samples) == (3, 20)
    assert result.difference is None and result.low is None
    assert result.verdict.startswith("Not enough samples")


async def test_equal_sides_show_no_clear_difference() -> None:
    same = scores.SideStats("a", 30, 70.0, 10.0)
    result = scores.welch(same, scores.SideStats("b", 30, 71.0, 10.0))
    assert result.low is not None and result.high is not None
    assert result.low < 0 < result.high
    assert result.verdict.startswith("No clear difference")


async def test_a_rule_against_the_rest_and_two_tags(planted: Planted) -> None:
    a, b = scores.sides_of("rule", "r-cheap", None)
    result = await scores.compare(
        planted.engine, scope=DEFAULT_WORKSPACE_ID, since=START, until=END, a=a, b=b
    )
    ruled = [j for j in planted.scored() if "r-cheap" in j.rules]
    rest = [j for j in planted.scored() if "r-cheap" not in j.rules]
    assert (result.a.samples, result.b.samples) == (len(ruled), len(rest))
    assert result.a.mean == pytest.approx(statistics.fmean(_means(ruled)))
    a, b = scores.sides_of("tag", "beta", "prod")
    tagged = await scores.compare(
        planted.engine, scope=DEFAULT_WORKSPACE_ID, since=START, until=END, a=a, b=b
    )
    assert (tagged.a.samples, tagged.b.samples) == (10, 10)  # not the other workspace's beta
    assert tagged.a.mean == pytest.approx(
        statistics.fmean(_means([j for j in planted.scored() if "beta" in j.tags]))
    )


async def test_statuses_and_judge_spend_per_evaluator(planted: Planted) -> None:
    found = await scores.status_summary(
        planted.engine, scope=DEFAULT_WORKSPACE_ID, since=START, until=END
    )
    assert [s.evaluator for s in found] == ["helpfulness-check", "tone-check"]
    main = found[0]
    assert main.counts == {"ok": 43, "failed": 2, "no_content": 1, "over_cap": 1}
    assert main.spend_usd == Decimal("0.0001") * 45
    assert main.prompt_tokens == 300 * 47


async def test_mean_score_for_alerts_is_scoped(planted: Planted) -> None:
    async with planted.engine.connect() as connection:
        mine = await scores.mean_score(
            connection,
            scope=DEFAULT_WORKSPACE_ID,
            since=START,
            until=END,
            evaluator="helpfulness-check",
            model="big",
            criterion="accuracy",
        )
        theirs = await scores.mean_score(
            connection, scope=planted.other, since=START, until=END, evaluator="helpfulness-check"
        )
        nothing = await scores.mean_score(
            connection,
            scope=DEFAULT_WORKSPACE_ID,
            since=END,
            until=END + timedelta(hours=1),
            evaluator="helpfulness-check",
        )
    big = planted.scored(model="big", evaluator="helpfulness-check")
    assert mine == (20, pytest.approx(statistics.fmean(j.scores["accuracy"] for j in big)))
    assert theirs == (12, 5.0)
    assert nothing == (0, None)


async def test_names_for_the_pickers(planted: Planted) -> None:
    evaluators, models = await scores.evaluation_names(
        planted.engine, scope=planted.other, since=START, until=END
    )
    assert (evaluators, models) == (["helpfulness-check"], ["big"])


async def test_bad_parameters_are_refused(planted: Planted) -> None:
    with pytest.raises(InvalidScoreQuery) as error:
        await scores.status_summary(planted.engine, scope=None, since=END, until=START)
    assert error.value.parameter == "until"
    with pytest.raises(InvalidScoreQuery) as error:
        await scores.score_series(
            planted.engine,
            scope=None,
            since=START,
            until=END + timedelta(days=30),
            step=60,
            by="model",
        )
    assert error.value.parameter == "step"
    with pytest.raises(InvalidScoreQuery):
        scores.sides_of("model", "big", None)
    with pytest.raises(InvalidScoreQuery):
        scores.sides_of("prompt", "a", "b")

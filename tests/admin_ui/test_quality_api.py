"""`/admin/api/quality/...` and the traces API's evaluation filters against a running gateway on
SQLite and Postgres, over evaluations planted in its database: the answers agree with the
planted history, one workspace's admin never sees another's scores, and bad parameters are 400s
naming the parameter."""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from gateway.keys.store import KeyStore
from telemetry.db import create_engine
from telemetry.schema import DEFAULT_WORKSPACE_ID
from tests.admin_ui.conftest import error_of
from tests.e2e.conftest import GatewayProcess
from tests.telemetry.evaluation_history import Judged, plant

START = datetime(2024, 6, 3, 8, 0, tzinfo=UTC)
END = START + timedelta(hours=2)
RANGE = {"from": START.isoformat(), "to": END.isoformat()}
MINE = {**RANGE, "workspace": DEFAULT_WORKSPACE_ID}
TRACE_RANGE = {"since": START.isoformat(), "until": END.isoformat()}


class Planted:
    def __init__(self, history: list[Judged], other_slug: str, other_admin: str) -> None:
        self.history = history
        self.other_slug = other_slug
        self.other_admin = other_admin


@pytest.fixture(scope="module")
def planted(gateway: GatewayProcess) -> Planted:
    async def write() -> Planted:
        engine = create_engine(gateway.database.url)
        try:
            store = KeyStore(engine)
            other = await store.create_workspace("quality-other", name="Quality other")
            admin = await store.create("q-admin", workspace_id=other.workspace_id, role="master")
            history = [
                Judged(
                    at=START + timedelta(minutes=5 * n + 1),
                    model="big" if n % 2 else "small",
                    scores={"accuracy": 90 - n % 2 * 0 - (0 if n % 2 else 30) + n % 3},
                    flags=["hallucination"] if n % 7 == 0 else [],
                    evaluator="helpful" if n < 20 else "tone",
                    rules=["r-cheap"] if n % 2 == 0 else [],
                )
                for n in range(24)
            ]
            history += [
                Judged(
                    at=START + timedelta(minutes=3),
                    model="big",
                    status="failed",
                    evaluator="helpful",
                ),
                Judged(
                    at=START + timedelta(minutes=4),
                    model="big",
                    scores={"accuracy": 10},
                    workspace_id=other.workspace_id,
                ),
            ]
            await plant(engine, history)
            return Planted(history, other.slug, admin.plaintext)
        finally:
            await engine.dispose()

    return asyncio.run(write())


@pytest.fixture(scope="module")
def http(gateway: GatewayProcess) -> Iterator[httpx.Client]:
    with gateway.http() as client:
        yield client


def _mine(planted: Planted) -> list[Judged]:
    return [j for j in planted.history if j.workspace_id != planted.history[-1].workspace_id]


def _trace_ids(http: httpx.Client, **params: Any) -> set[str]:
    """The traces found in the range (the master key's: in the default workspace)."""
    params = {"workspace": DEFAULT_WORKSPACE_ID, **params}
    answer = http.get("/admin/api/traces", params={**TRACE_RANGE, "limit": 200, **params})
    assert answer.status_code == 200, answer.text
    return {row["trace_id"] for row in answer.json()["data"]}


def test_the_traces_api_filters_on_evaluations(planted: Planted, http: httpx.Client) -> None:
    mine = _mine(planted)
    low = {j.trace_id for j in mine if j.mean is not None and j.mean <= 62}
    assert low and _trace_ids(http, max_score="62") == low
    high_tone = {
        j.trace_id for j in mine if j.evaluator == "tone" and j.mean is not None and j.mean >= 80
    }
    assert _trace_ids(http, evaluator="tone", min_score="80") == high_tone
    flagged = {j.trace_id for j in mine if "hallucination" in j.flags}
    assert len(flagged) == 4 and _trace_ids(http, eval_flag="hallucination") == flagged
    assert _trace_ids(http, evaluated="true") == {j.trace_id for j in mine}
    # the planted requests all have evaluations: none of them is "not evaluated"
    assert _trace_ids(http, evaluated="false") & {j.trace_id for j in mine} == set()
    error = error_of(http.get("/admin/api/traces", params={"min_score": "101"}), 400)
    assert error["param"] == "min_score"
    error = error_of(
        http.get("/admin/api/traces", params={"min_score": "70", "max_score": "60"}), 400
    )
    assert error["param"] == "max_score"


def _interaction_ids(http: httpx.Client, **params: Any) -> set[str]:
    params = {"workspace": DEFAULT_WORKSPACE_ID, **params}
    answer = http.get("/admin/api/interactions", params={**TRACE_RANGE, "limit": 200, **params})
    assert answer.status_code == 200, answer.text
    return {row["interaction_id"] for row in answer.json()["data"]}


def test_the_interactions_api_filters_on_evaluations(
    planted: Planted, http: httpx.Client, gateway: GatewayProcess
) -> None:
    mine = _mine(planted)
    low = {j.interaction_id for j in mine if j.mean is not None and j.mean <= 62}
    assert low and _interaction_ids(http, max_score="62") == low
    high_tone = {
        j.interaction_id
        for j in mine
        if j.evaluator == "tone" and j.mean is not None and j.mean >= 80
    }
    assert high_tone and _interaction_ids(http, evaluator="tone", min_score="80") == high_tone
    flagged = {j.interaction_id for j in mine if "hallucination" in j.flags}
    assert len(flagged) == 4 and _interaction_ids(http, eval_flag="hallucination") == flagged
    assert _interaction_ids(http, evaluated="true") == {j.interaction_id for j in mine}
    assert _interaction_ids(http, evaluated="false") & {j.interaction_id for j in mine} == set()
    theirs = planted.history[-1]
    with gateway.http(planted.other_admin) as other:
        assert _interaction_ids(other, max_score="50", workspace=planted.other_slug) == {
            theirs.interaction_id
        }
        assert _interaction_ids(other, evaluated="true", workspace=planted.other_slug) == {
            theirs.interaction_id
        }
    assert theirs.interaction_id not in _interaction_ids(http, max_score="50")
    for params, named in (
        ({"min_score": "-1"}, "min_score"),
        ({"max_score": "high"}, "max_score"),
        ({"min_score": "70", "max_score": "60"}, "max_score"),
        ({"evaluated": "perhaps"}, "evaluated"),
        ({"eval_flag": ""}, "eval_flag"),
        ({"evaluator": "x" * 300}, "evaluator"),
    ):
        error = error_of(http.get("/admin/api/interactions", params=params), 400)
        assert error["param"] == named, (params, error)


def test_summary_and_models(planted: Planted, http: httpx.Client) -> None:
    summary = http.get("/admin/api/quality/summary", params=RANGE)
    assert summary.status_code == 200, summary.text
    by_name = {row["evaluator"]: row for row in summary.json()["evaluators"]}
    assert by_name["helpful"]["counts"] == {"ok": 20, "failed": 1, "no_content": 0, "over_cap": 0}
    assert by_name["tone"]["total"] == 4
    assert Decimal(by_name["helpful"]["judge_spend_usd"]) == Decimal("0.0001") * 21
    models = http.get("/admin/api/quality/models", params={**RANGE, "evaluator": "helpful"})
    ranked = models.json()["models"]
    assert [row["model"] for row in ranked] == ["big", "small"]
    big = [
        j.mean for j in _mine(planted) if j.model == "big" and j.evaluator == "helpful" and j.mean
    ]
    assert ranked[0]["samples"] == len(big)
    assert ranked[0]["mean_score"] == pytest.approx(statistics.fmean(big))
    assert ranked[0]["cost_per_request_usd"] == "0.0020000000"


def test_scores_over_time_and_a_comparison(planted: Planted, http: httpx.Client) -> None:
    series = http.get(
        "/admin/api/quality/scores", params={**MINE, "step": "1h", "by": "evaluator"}
    ).json()
    assert series["step"] == 3600
    lines = {line["name"]: line for line in series["series"]}
    assert set(lines) == {"helpful", "tone"}
    assert sum(point[2] for point in lines["helpful"]["points"]) == 20
    compared = http.get(
        "/admin/api/quality/compare", params={**MINE, "compare": "rule", "a": "r-cheap"}
    )
    assert compared.status_code == 200, compared.text
    body = compared.json()
    assert body["a"]["samples"] == 12 and body["b"]["samples"] == 12
    assert body["difference"] < 0 and body["high"] < 0
    assert body["verdict"].startswith("B scores higher than A")
    error = error_of(http.get("/admin/api/quality/compare", params=RANGE), 400)
    assert error["param"] == "a"
    error = error_of(http.get("/admin/api/quality/scores", params={**MINE, "by": "key"}), 400)
    assert error["param"] == "by"
    error = error_of(http.get("/admin/api/quality/models", params={"last": "2y"}), 400)
    assert error["param"] == "last"
    quoted = {**MINE, "criterion": 'acc"uracy'}
    error = error_of(http.get("/admin/api/quality/scores", params=quoted), 400)
    assert error["param"] == "criterion"
    accuracy = http.get("/admin/api/quality/models", params={**MINE, "criterion": "accuracy"})
    assert accuracy.status_code == 200 and accuracy.json()["models"]


def test_a_workspace_sees_its_own_scores_only(
    planted: Planted, gateway: GatewayProcess, http: httpx.Client
) -> None:
    theirs = planted.history[-1]
    mine = planted.history[0]
    with gateway.http(planted.other_admin) as other:
        summary = other.get("/admin/api/quality/summary", params=RANGE).json()
        assert [row["total"] for row in summary["evaluators"]] == [1]
        assert (
            other.get(f"/admin/api/quality/traces/{theirs.trace_id}").json()["data"][0]["score"]
            == 10
        )
        error_of(other.get(f"/admin/api/quality/traces/{mine.trace_id}"), 404)
        assert _trace_ids(other, max_score="50", workspace=planted.other_slug) == {theirs.trace_id}
    one = http.get(f"/admin/api/quality/traces/{mine.trace_id}").json()["data"]
    assert [(row["evaluator_name"], row["score"]) for row in one] == [("helpful", mine.mean)]
    scoped = http.get(
        "/admin/api/quality/summary", params={**RANGE, "workspace": planted.other_slug}
    ).json()
    assert [row["total"] for row in scoped["evaluators"]] == [1]

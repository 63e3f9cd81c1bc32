"""Comparisons end to end: recorded requests replayed to two models of the mock provider and
judged by the fake Gemini (through google-genai), through the admin API, on SQLite and Postgres."""

from __future__ import annotations

import math
import secrets
import statistics
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Database, GatewayProcess, MockProcess, mock_config
from tests.fake_gemini import FakeGemini

QUESTIONS = [f"Question number {n}: name a colour." for n in range(5)]
SYSTEM = "Answer in one word."
T_975_DF4 = 2.7764451051977987


@pytest.fixture(scope="module")
def gemini() -> Iterator[FakeGemini]:
    with FakeGemini(api_key="gk-compare-secret", default_score=70) as server:
        yield server


@pytest.fixture(scope="module")
def comparing(
    backend_database: Database,
    mock_provider: MockProcess,
    gemini: FakeGemini,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GatewayProcess]:
    config = mock_config(mock_provider)
    config["models"]["mock-gpt-large"] = [{"provider": "mock", "model": "mock-gpt-large"}]
    config["providers"]["google"] = {
        "type": "gemini",
        "base_url": gemini.base_url,
        "api_key": "gk-compare-secret",
    }
    config["models"]["judge"] = [{"provider": "google", "model": "gemini-2.5-flash"}]
    config["evaluation"] = {"run_in_serve": False, "concurrency": 2}
    process = GatewayProcess(
        backend_database,
        config,
        tmp_path_factory.mktemp("comparing"),
        master_key="sk-master-" + secrets.token_hex(8),
    )
    try:
        yield process
    finally:
        log = process.stop()
        assert "gk-compare-secret" not in log


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return dict(body["error"])


@pytest.fixture(scope="module")
def recorded(comparing: GatewayProcess) -> list[str]:
    client = comparing.client()
    traces = []
    for question in QUESTIONS:
        raw = client.chat.completions.with_raw_response.create(
            model="mock-gpt",
            messages=[
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": question},
            ],
            extra_headers={"x-steerway-tags": "compare-set"},
        )
        traces.append(str(raw.headers["x-steerway-trace-id"]))
    # Written by the recorder: wait until all five are stored.
    comparing.database.wait_rows(
        "SELECT trace_id FROM ai_interactions WHERE purpose = 'request' AND prompt IS NOT NULL"
        " AND trace_id IN (:a, :b, :c, :d, :e)",
        count=5,
        timeout=30.0,
        a=traces[0],
        b=traces[1],
        c=traces[2],
        d=traces[3],
        e=traces[4],
    )
    return traces


@pytest.fixture(scope="module")
def evaluator_id(comparing: GatewayProcess) -> str:
    with comparing.http() as admin:
        made = admin.post(
            "/admin/api/evaluators",
            json={
                "name": "compare-judge",
                "judge": "judge",
                "criteria": ["accuracy", "helpfulness"],
                "sampling_rate": 0,
            },
        )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def body(evaluator_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "evaluator_id": evaluator_id,
        "filter": {"tag": "compare-set"},
        "variants": {
            "a": {"model": "mock-gpt"},
            "b": {"model": "mock-gpt-large", "system_prompt": SYSTEM},
        },
        **extra,
    }


def cost(tokens_in: int, tokens_out: int, input_per_m: str, output_per_m: str) -> Decimal:
    return (
        Decimal(tokens_in) * Decimal(input_per_m) + Decimal(tokens_out) * Decimal(output_per_m)
    ) / Decimal(1_000_000)


def test_the_estimate_follows_the_prices_and_runs_nothing(
    comparing: GatewayProcess, recorded: list[str], evaluator_id: str, mock_provider: MockProcess
) -> None:
    before = mock_provider.stats()["requests_by_model"]
    stored = comparing.database.rows("SELECT comparison_id FROM comparisons")
    with comparing.http() as admin:
        answer = admin.post("/admin/api/comparisons", json=body(evaluator_id))
    assert answer.status_code == 200, answer.text
    estimate = answer.json()
    assert estimate["requests"] == 5
    rows = comparing.database.rows(
        "SELECT prompt_tokens, completion_tokens, length(CAST(prompt AS TEXT)) AS p,"
        " length(CAST(response AS TEXT)) AS r FROM ai_interactions"
        " WHERE purpose = 'request' AND trace_id IN (:a, :b, :c, :d, :e)",
        a=recorded[0],
        b=recorded[1],
        c=recorded[2],
        d=recorded[3],
        e=recorded[4],
    )
    prompt = sum(r["prompt_tokens"] for r in rows)
    answers = sum(r["completion_tokens"] for r in rows)
    system_tokens = math.ceil(len(SYSTEM) / 4)
    a, b = estimate["variants"]["a"], estimate["variants"]["b"]
    assert (a["prompt_tokens"], a["completion_tokens"]) == (prompt, answers)
    assert (b["prompt_tokens"], b["completion_tokens"]) == (prompt + 5 * system_tokens, answers)
    assert Decimal(a["cost_usd"]) == cost(prompt, answers, "0.10", "0.40")
    assert Decimal(b["cost_usd"]) == cost(prompt + 5 * system_tokens, answers, "1.00", "4.00")
    # The judge reads each answer twice over (both variants): its instructions (300 tokens),
    # each criterion's rubric, the conversation and an answer the size of the recorded one.
    with comparing.http() as admin:
        criteria = admin.get(f"/admin/api/evaluators/{evaluator_id}").json()["criteria"]
    rubrics = sum(math.ceil(len(c["rubric"]) / 4) if c.get("rubric") else 60 for c in criteria)
    per_judgement = 300 + rubrics
    judge_in = 2 * sum(
        math.ceil((r["p"] + 4 * r["completion_tokens"]) / 4) + per_judgement for r in rows
    )
    judge_out = 2 * 5 * (60 + 40 * 2)
    judge = estimate["judge"]
    assert (judge["prompt_tokens"], judge["completion_tokens"]) == (judge_in, judge_out)
    assert Decimal(judge["cost_usd"]) == cost(judge_in, judge_out, "0.30", "2.50")
    total = Decimal(a["cost_usd"]) + Decimal(b["cost_usd"]) + Decimal(judge["cost_usd"])
    assert Decimal(estimate["total_cost_usd"]) == total
    # Nothing ran, nothing was stored.
    assert mock_provider.stats()["requests_by_model"] == before
    assert comparing.database.rows("SELECT comparison_id FROM comparisons") == stored


def test_a_confirmed_comparison_replays_judges_and_summarises(
    comparing: GatewayProcess,
    recorded: list[str],
    evaluator_id: str,
    mock_provider: MockProcess,
    gemini: FakeGemini,
) -> None:
    before = mock_provider.stats()["requests_by_model"]
    scores = [55, 60, 65, 70, 75, 80, 85, 90, 95, 50]
    for score in scores:
        gemini.then_scores({"accuracy": score, "helpfulness": score})
    with comparing.http() as admin:
        started = admin.post(
            "/admin/api/comparisons", json=body(evaluator_id, confirm=True, name="large vs small")
        )
        assert started.status_code == 202, started.text
        comparison_id = started.json()["id"]
        assert started.json()["name"] == "large vs small"
        comparing.database.wait_rows(
            "SELECT status FROM comparisons WHERE comparison_id = :c AND status = 'done'",
            timeout=60.0,
            c=comparison_id,
        )
        found = admin.get(f"/admin/api/comparisons/{comparison_id}").json()
    after = mock_provider.stats()["requests_by_model"]
    assert after.get("mock-gpt", 0) - before.get("mock-gpt", 0) == 5
    assert after.get("mock-gpt-large", 0) - before.get("mock-gpt-large", 0) == 5
    assert found["progress"] == {"total": 5, "completed": 5, "failed": 0}
    results = found["results"]
    assert sorted(r["trace_id"] for r in results) == sorted(recorded)
    stored = sorted(r[side]["score"] for r in results for side in ("a", "b"))
    assert stored == sorted(float(s) for s in scores)
    # Both variants' calls are recorded traces, out of the users' explorer.
    replays = [r[side]["trace_id"] for r in results for side in ("a", "b")]
    rows = comparing.database.wait_rows(
        "SELECT t.source, t.route, i.purpose, i.requested_model, i.prompt FROM traces t"
        " JOIN ai_interactions i ON i.trace_id = t.trace_id WHERE t.route = 'comparison'",
        count=10,
        timeout=30.0,
    )
    assert {(r["source"], r["purpose"]) for r in rows} == {("evaluation", "comparison")}
    assert sorted(r["requested_model"] for r in rows) == ["mock-gpt"] * 5 + ["mock-gpt-large"] * 5
    large_prompts = [r["prompt"] for r in rows if r["requested_model"] == "mock-gpt-large"]
    assert all(SYSTEM in str(p) and "You are terse." not in str(p) for p in large_prompts)
    with comparing.http() as admin:
        listed = {t["trace_id"] for t in admin.get("/admin/api/traces").json()["data"]}
    assert not listed & set(replays)
    # The summary: per variant, and B minus A paired over the five requests.
    a = [r["a"]["score"] for r in results]
    b = [r["b"]["score"] for r in results]
    summary = found["summary"]
    assert summary["a"]["mean_score"] == pytest.approx(statistics.mean(a), abs=1e-3)
    assert summary["b"]["scored"] == 5
    differences = [y - x for x, y in zip(a, b, strict=True)]
    mean = statistics.mean(differences)
    margin = T_975_DF4 * statistics.stdev(differences) / math.sqrt(5)
    difference = summary["difference"]
    assert difference["method"] == "paired" and difference["pairs"] == 5
    assert difference["b_minus_a"] == pytest.approx(mean, abs=1e-3)
    assert difference["low"] == pytest.approx(mean - margin, abs=0.01)
    assert difference["high"] == pytest.approx(mean + margin, abs=0.01)
    costs = [Decimal(r[side]["cost_usd"]) for r in results for side in ("a", "b")]
    judged = [Decimal(r[side]["judge_cost_usd"]) for r in results for side in ("a", "b")]
    assert Decimal(found["actual_cost_usd"]) == sum(costs) + sum(judged)
    assert summary["a"]["latency_p50_ms"] > 0
    # Asking to cancel a finished comparison is refused.
    with comparing.http() as admin:
        ended = admin.post(f"/admin/api/comparisons/{comparison_id}/cancel")
        assert error_of(ended, 409)["code"] == "comparison_ended"
        assert comparison_id in {
            c["id"] for c in admin.get("/admin/api/comparisons").json()["data"]
        }


def test_bad_input_is_a_400(comparing: GatewayProcess, evaluator_id: str) -> None:
    with comparing.http() as admin:
        for wrong, param in [
            ({**body(evaluator_id), "variants": {"a": {"model": "mock-gpt"}}}, "variants"),
            (
                {**body(evaluator_id), "variants": {"a": {"model": "nope"}, "b": {"model": "x"}}},
                "variants.a.model",
            ),
            (
                {
                    **body(evaluator_id),
                    "variants": {"a": {"model": "mock-gpt"}, "b": {"model": "mock-gpt"}},
                },
                "variants",
            ),
            ({**body(evaluator_id), "confirm": "yes"}, "confirm"),
            ({**body(evaluator_id), "filter": "tag=x"}, "filter"),
            ({**body(evaluator_id), "evaluator_id": "zz"}, "evaluator_id"),
            ({**body(evaluator_id), "filter": {"tag": "no-such-tag"}, "confirm": True}, "filter"),
        ]:
            assert error_of(admin.post("/admin/api/comparisons", json=wrong), 400)["param"] == (
                param
            ), wrong
        assert error_of(admin.post("/admin/api/comparisons", content=b"[1"), 400)
        assert error_of(admin.get("/admin/api/comparisons/not-an-id"), 400)
        assert error_of(admin.get("/admin/api/comparisons?limit=0"), 400)["param"] == "limit"
        missing = admin.get("/admin/api/comparisons/" + "0" * 32)
        assert error_of(missing, 404)["code"] == "comparison_not_found"


def test_another_workspace_sees_none_of_it(
    comparing: GatewayProcess, recorded: list[str], evaluator_id: str
) -> None:
    with comparing.http() as admin:
        made = admin.post("/admin/api/comparisons", json=body(evaluator_id, confirm=True))
        assert made.status_code == 202, made.text
        admin.post("/admin/api/workspaces", json={"slug": "compare-other"})
        key = admin.post(
            "/admin/api/keys",
            json={"name": "compare-other-admin", "workspace": "compare-other", "role": "master"},
        ).json()["key"]
        ours = admin.get("/admin/api/comparisons").json()["data"]
    assert made.json()["id"] in {c["id"] for c in ours}
    with comparing.http(key) as other:
        assert other.get("/admin/api/comparisons").json()["data"] == []
        theirs = other.get(f"/admin/api/comparisons/{ours[0]['id']}")
        assert error_of(theirs, 404)["code"] == "comparison_not_found"
        assert error_of(other.post(f"/admin/api/comparisons/{ours[0]['id']}/cancel"), 404)
        asked = other.post("/admin/api/comparisons", json=body(evaluator_id))
        assert error_of(asked, 404)["code"] == "evaluator_not_found"

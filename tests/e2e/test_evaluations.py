"""Evaluations end to end: a gateway with evaluators in its config file, requests through the
official openai SDK, a Gemini judge served by the fake (called through google-genai), on
SQLite and Postgres; and the evaluators' admin API."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import copy_sqlite
from tests.e2e.conftest import STEERWAY, Database, GatewayProcess, MockProcess, mock_config, stop
from tests.fake_gemini import FakeGemini

HELLO = [{"role": "user", "content": "Name a prime number."}]
EVALUATORS = [
    {
        "name": "answers",
        "condition": {"tags": "good"},
        "sampling_rate": 1.0,
        "judge": "judge",
        "criteria": ["accuracy", "helpfulness"],
    },
    {
        "name": "strict",
        "condition": {"tags": "bad"},
        "judge": "judge",
        "criteria": ["accuracy"],
        "max_attempts": 2,
    },
    {
        "name": "capped",
        "condition": {"tags": "capped"},
        "judge": "judge",
        "criteria": ["tone"],
        "daily_cap_usd": "0.0001",
    },
]


@pytest.fixture(scope="module")
def gemini() -> Iterator[FakeGemini]:
    with FakeGemini(api_key="gk-e2e-secret", default_score=80) as server:
        yield server


@pytest.fixture(scope="module")
def judged(
    backend_database: Database,
    mock_provider: MockProcess,
    gemini: FakeGemini,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GatewayProcess]:
    config = mock_config(mock_provider)
    config["providers"]["google"] = {
        "type": "gemini",
        "base_url": gemini.base_url,
        "api_key": "gk-e2e-secret",
    }
    config["models"]["judge"] = [{"provider": "google", "model": "gemini-2.5-flash"}]
    config["evaluators"] = EVALUATORS
    config["evaluation"] = {
        "concurrency": 1,
        "poll_interval": 0.1,
        "backoff": 0.1,
        "refresh_interval": 0.2,
    }
    process = GatewayProcess(
        backend_database,
        config,
        tmp_path_factory.mktemp("judged"),
        master_key="sk-master-" + secrets.token_hex(8),
    )
    try:
        yield process
    finally:
        log = process.stop()
        assert "gk-e2e-secret" not in log


def ask(gateway: GatewayProcess, tag: str) -> str:
    raw = gateway.client().chat.completions.with_raw_response.create(
        model="mock-gpt", messages=HELLO, extra_headers={"x-steerway-tags": tag}
    )
    return str(raw.headers["x-steerway-trace-id"])


def evaluations_of(database: Database, name: str, count: int) -> list[dict[str, Any]]:
    return database.wait_rows(
        "SELECT * FROM evaluations WHERE evaluator_name = :name ORDER BY evaluation_id",
        count=count,
        timeout=30.0,
        name=name,
    )


def as_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def test_sampled_requests_are_scored_by_the_gemini_judge(
    judged: GatewayProcess, gemini: FakeGemini
) -> None:
    traces = [ask(judged, "good"), ask(judged, "good")]
    ask(judged, "neither")
    found = evaluations_of(judged.database, "answers", 2)
    assert sorted(r["trace_id"] for r in found) == sorted(traces)
    for row in found:
        assert row["status"] == "ok"
        assert as_json(row["scores"]) == {"accuracy": 80, "helpfulness": 80}
        assert row["score"] == 80.0
        assert row["requested_model"] == "mock-gpt"
        assert row["judge_model"] == "judge"
    judge_traces = [r["judge_trace_id"] for r in found]
    sources = judged.database.wait_rows(
        "SELECT source, requested_model FROM traces WHERE trace_id IN (:a, :b)",
        count=2,
        a=judge_traces[0],
        b=judge_traces[1],
    )
    assert sources == [{"source": "evaluation", "requested_model": "judge"}] * 2
    purposes = judged.database.rows(
        "SELECT purpose FROM ai_interactions WHERE trace_id IN (:a, :b)",
        a=judge_traces[0],
        b=judge_traces[1],
    )
    assert purposes == [{"purpose": "evaluation"}] * 2
    judged.database.fold()
    counted = judged.database.rows("SELECT DISTINCT model, source FROM usage_rollups")
    assert {"model": "judge", "source": "evaluation"} not in counted
    assert all(row["model"] != "judge" for row in counted)
    with judged.http() as http:
        listed = http.get("/admin/api/traces").json()["data"]
        assert not {t["trace_id"] for t in listed} & set(judge_traces)
        asked = http.get("/admin/api/traces", params={"source": "evaluation"}).json()["data"]
        assert set(judge_traces) <= {t["trace_id"] for t in asked}
        metrics = http.get("/metrics").text
    assert 'steerway_eval_score_count{criterion="accuracy",evaluator="answers"}' in metrics
    assert 'steerway_evaluations_total{evaluator="answers",status="ok"}' in metrics
    assert all(r.api_key == "gk-e2e-secret" for r in gemini.received)


def test_bad_judge_output_is_retried_then_failed(
    judged: GatewayProcess, gemini: FakeGemini
) -> None:
    judged_before = len(judged.database.rows("SELECT 1 FROM evaluations WHERE status = 'ok'"))
    gemini.then_text("I think the answer is fine.").then_text('{"verdict": "good"}')
    trace_id = ask(judged, "bad")
    [row] = evaluations_of(judged.database, "strict", 1)
    assert (row["trace_id"], row["status"], row["attempts"]) == (trace_id, "failed", 2)
    assert row["error"].startswith("wrong_shape")
    # The pool carries on after bad output.
    later = ask(judged, "good")
    [after] = judged.database.wait_rows(
        "SELECT status FROM evaluations WHERE trace_id = :t", t=later, timeout=30.0
    )
    assert after == {"status": "ok"}
    ok = judged.database.rows("SELECT 1 FROM evaluations WHERE status = 'ok'")
    assert len(ok) == judged_before + 1


def test_the_daily_cap_holds(judged: GatewayProcess) -> None:
    for _ in range(3):
        ask(judged, "capped")
    found = evaluations_of(judged.database, "capped", 3)
    # One call costs $0.000136, over the $0.0001 cap: one judged, then none.
    assert [r["status"] for r in found] == ["ok", "over_cap", "over_cap"]
    with judged.http() as http:
        listed = http.get("/admin/api/evaluators").json()["data"]
    capped = next(e for e in listed if e["name"] == "capped")
    assert capped["state"]["today"]["over_cap"] == 2
    assert capped["state"]["spent_today_usd"] == "0.000136"
    assert capped["daily_cap_usd"] == "0.0001"


def test_no_content_is_counted(
    judged: GatewayProcess,
    mock_provider: MockProcess,
    gemini: FakeGemini,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A gateway that stores no content, on the same database: its picks cannot be judged."""
    config = mock_config(mock_provider)
    config["providers"]["google"] = {"type": "gemini", "base_url": gemini.base_url}
    config["models"]["judge"] = [{"provider": "google", "model": "gemini-2.5-flash"}]
    config["evaluators"] = EVALUATORS
    tmp = tmp_path_factory.mktemp("no-content")
    config["telemetry"] = {"store_content": "none", "spill_dir": str(tmp / "spill")}
    config["evaluation"] = {"run_in_serve": False, "refresh_interval": 0.2}
    blind = GatewayProcess(judged.database, config, tmp, master_key=judged.master_key)
    try:
        trace_id = ask(blind, "good")
    finally:
        blind.stop()
    rows = judged.database.wait_rows(
        "SELECT status FROM evaluations WHERE trace_id = :t", t=trace_id, timeout=20.0
    )
    assert rows == [{"status": "no_content"}]
    with judged.http() as http:
        listed = http.get("/admin/api/evaluators").json()["data"]
    answers = next(e for e in listed if e["name"] == "answers")
    assert answers["state"]["today"]["no_content"] >= 1


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return dict(body["error"])


def test_the_evaluators_api(judged: GatewayProcess) -> None:
    with judged.http() as admin:
        listed = admin.get("/admin/api/evaluators").json()["data"]
        assert {e["name"]: e["origin"] for e in listed} == {
            "answers": "config",
            "strict": "config",
            "capped": "config",
        }
        from_file = listed[0]
        refused = admin.put(f"/admin/api/evaluators/{from_file['id']}", json=from_file)
        assert error_of(refused, 409)["code"] == "evaluator_managed_by_config"

        body = {
            "name": "tone-check",
            "judge": {"model": "judge", "timeout_s": 15},
            "criteria": ["tone", {"name": "brevity", "rubric": "Short and complete."}],
            "sampling_rate": 0.5,
            "daily_cap_usd": 1.25,
        }
        made = admin.post("/admin/api/evaluators", json=body)
        assert made.status_code == 201, made.text
        created = made.json()
        assert created["origin"] == "api"
        assert created["daily_cap_usd"] == "1.25"
        assert created["criteria"][1] == {"name": "brevity", "rubric": "Short and complete."}
        again = admin.post("/admin/api/evaluators", json=body)
        assert error_of(again, 409)["param"] == "name"

        for bad, param in [
            ({**body, "name": "x", "judge": "nope"}, "judge.model"),
            ({**body, "name": "x", "sampling_rate": 3}, "sampling_rate"),
            ({**body, "name": "x", "criteria": ["wit"]}, "criteria[0].rubric"),
            ({**body, "name": "x", "condition": {"modle": "a"}}, "condition"),
            ({**body, "name": "x", "colour": "blue"}, "colour"),
            ({**body, "name": ""}, "name"),
        ]:
            error = error_of(admin.post("/admin/api/evaluators", json=bad), 400)
            assert error["param"] is not None and error["param"].startswith(param), error
        assert error_of(admin.post("/admin/api/evaluators", content=b"[1"), 400)

        path = f"/admin/api/evaluators/{created['id']}"
        assert admin.get(path).json()["name"] == "tone-check"
        changed = admin.put(path, json={**body, "enabled": False, "sampling_rate": 0.1})
        assert changed.status_code == 200, changed.text
        assert (changed.json()["enabled"], changed.json()["sampling_rate"]) == (False, 0.1)

        workspace = admin.post("/admin/api/workspaces", json={"slug": "eval-other"}).json()
        key = admin.post(
            "/admin/api/keys",
            json={"name": "eval-other-admin", "workspace": "eval-other", "role": "master"},
        ).json()["key"]
    with judged.http(key) as other:
        assert other.get("/admin/api/evaluators").json()["data"] == []
        assert error_of(other.get(path), 404)["code"] == "evaluator_not_found"
        assert error_of(other.delete(path), 404)
        # A workspace's admin key reads its evaluators; changing them needs `settings.write`.
        assert error_of(other.post("/admin/api/evaluators", json=body), 403)
    with judged.http() as admin:
        theirs = admin.post("/admin/api/evaluators", json={**body, "workspace": "eval-other"})
        assert theirs.status_code == 201, theirs.text
        assert theirs.json()["workspace_id"] == workspace["id"]
    with judged.http(key) as other:
        assert [e["id"] for e in other.get("/admin/api/evaluators").json()["data"]] == [
            theirs.json()["id"]
        ]
    with judged.http() as admin:
        assert admin.delete(path).status_code == 204
        assert error_of(admin.get(path), 404)
        assert error_of(admin.get("/admin/api/evaluators/not-an-id"), 404)
        spec = admin.get("/admin/api/openapi.json").json()
        assert "/admin/api/evaluators" in spec["paths"]


def test_a_worker_judges_for_a_gateway_that_does_not(
    mock_provider: MockProcess,
    gemini: FakeGemini,
    sqlite_template: Path,
    tmp_path: Path,
    start_gateway: Callable[..., GatewayProcess],
) -> None:
    path = tmp_path / "worker.db"
    copy_sqlite(sqlite_template, path)
    database = Database(f"sqlite:///{path}")
    config = mock_config(mock_provider)
    config["providers"]["google"] = {
        "type": "gemini",
        "base_url": gemini.base_url,
        "api_key": "gk-e2e-secret",
    }
    config["models"]["judge"] = [{"provider": "google", "model": "gemini-2.5-flash"}]
    config["evaluators"] = EVALUATORS
    config["evaluation"] = {"run_in_serve": False, "poll_interval": 0.1, "refresh_interval": 0.2}
    gateway = start_gateway(database, config, master_key="sk-master-" + secrets.token_hex(8))
    trace_id = ask(gateway, "good")
    queued = database.wait_rows(
        "SELECT status FROM evaluation_queue WHERE trace_id = :t", t=trace_id
    )
    time.sleep(1.0)  # ten of the pool's polls, had the gateway one
    assert database.rows("SELECT status FROM evaluation_queue") == queued == [{"status": "pending"}]

    environ = {
        **{k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")},
        "STEERWAY_DATABASE_URL": database.url,
        "STEERWAY_CONFIG": str(tmp_path / f"steerway-{gateway.port}.yaml"),  # the gateway's
    }
    worker = subprocess.Popen(
        [STEERWAY, "worker", "--log-level", "info"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=environ,
    )
    try:
        [row] = database.wait_rows(
            "SELECT status, judge_trace_id FROM evaluations WHERE trace_id = :t",
            t=trace_id,
            timeout=30.0,
        )
    finally:
        output = stop(worker)
    assert row["status"] == "ok", output
    assert "judging evaluations with 2 workers" in output
    assert "gk-e2e-secret" not in output
    # The worker's own recorder wrote the judge's call before it stopped.
    assert database.rows(
        "SELECT source FROM traces WHERE trace_id = :t", t=row["judge_trace_id"]
    ) == [{"source": "evaluation"}]


def test_an_on_demand_evaluation_is_judged_by_the_pool(judged: GatewayProcess) -> None:
    trace_id = ask(judged, "neither")  # no evaluator picks it
    judged.database.wait_rows("SELECT trace_id FROM traces WHERE trace_id = :t", t=trace_id)
    with judged.http() as admin:
        listed = admin.get("/admin/api/evaluators").json()["data"]
        answers = next(e for e in listed if e["name"] == "answers")
        queued = admin.post(
            "/admin/api/evaluations/queue",
            json={"evaluator_id": answers["id"], "trace_id": trace_id},
        )
        assert queued.status_code == 202, queued.text
    [row] = judged.database.wait_rows(
        "SELECT status, evaluator_name FROM evaluations WHERE trace_id = :t",
        t=trace_id,
        timeout=30.0,
    )
    assert row == {"status": "ok", "evaluator_name": "answers"}
    assert judged.database.rows(
        "SELECT reason, status FROM evaluation_queue WHERE trace_id = :t", t=trace_id
    ) == [{"reason": "on_demand", "status": "done"}]


def test_two_serving_workers_apply_the_file_once(
    mock_provider: MockProcess,
    gemini: FakeGemini,
    sqlite_template: Path,
    tmp_path: Path,
    start_gateway: Callable[..., GatewayProcess],
) -> None:
    path = tmp_path / "two.db"
    copy_sqlite(sqlite_template, path)
    database = Database(f"sqlite:///{path}")
    config = mock_config(mock_provider)
    config["providers"]["google"] = {"type": "gemini", "base_url": gemini.base_url}
    config["models"]["judge"] = [{"provider": "google", "model": "gemini-2.5-flash"}]
    config["evaluators"] = EVALUATORS
    gateway = start_gateway(database, config, workers=2)
    assert gateway.process.poll() is None
    stored = database.rows("SELECT name, origin FROM evaluators ORDER BY name")
    assert stored == [
        {"name": "answers", "origin": "config"},
        {"name": "capped", "origin": "config"},
        {"name": "strict", "origin": "config"},
    ]

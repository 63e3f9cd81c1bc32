"""A comparison whose gateway is killed (SIGKILL, no cleanup) mid-way is resumed by another
process, a gateway or `steerway worker`, once its lease has run out: it ends `done` with every
request once, and the mock provider sees only the requests not yet done replayed again. On
SQLite and Postgres."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import STEERWAY, Database, GatewayProcess, MockProcess, mock_config, stop
from tests.fake_gemini import FakeGemini

REQUESTS = 5
LEASE_S = 2
MODELS = ("mock-gpt", "mock-gpt-large")


@pytest.fixture(scope="module")
def slow_mock() -> Iterator[MockProcess]:
    """A mock provider of its own, slow enough for the gateway to die between two requests."""
    mock = MockProcess("--latency-ms", "150")
    try:
        yield mock
    finally:
        stop(mock.process)


@pytest.fixture(scope="module")
def gemini() -> Iterator[FakeGemini]:
    with FakeGemini(api_key="gk-resume-secret", default_score=75) as server:
        yield server


def config_for(mock: MockProcess, gemini: FakeGemini) -> dict[str, Any]:
    config = mock_config(mock)
    config["models"]["mock-gpt-large"] = [{"provider": "mock", "model": "mock-gpt-large"}]
    config["providers"]["google"] = {
        "type": "gemini",
        "base_url": gemini.base_url,
        "api_key": "gk-resume-secret",
    }
    config["models"]["judge"] = [{"provider": "google", "model": "gemini-2.5-flash"}]
    config["evaluation"] = {"run_in_serve": False, "concurrency": 1, "lease": LEASE_S}
    return config


def start_comparison(gateway: GatewayProcess, tag: str) -> str:
    client = gateway.client()
    traces = []
    for n in range(REQUESTS):
        raw = client.chat.completions.with_raw_response.create(
            model="mock-gpt",
            messages=[{"role": "user", "content": f"Question {n} of {tag}: a colour?"}],
            extra_headers={"x-steerway-tags": tag},
        )
        traces.append(str(raw.headers["x-steerway-trace-id"]))
    names = {f"t{n}": trace for n, trace in enumerate(traces)}
    stored = gateway.database.wait_rows(
        "SELECT trace_id FROM ai_interactions WHERE purpose = 'request' AND prompt IS NOT NULL"
        f" AND trace_id IN ({', '.join(':' + name for name in names)})",
        count=REQUESTS,
        timeout=30.0,
        **names,
    )
    assert len(stored) == REQUESTS
    with gateway.http() as admin:
        made = admin.post(
            "/admin/api/evaluators",
            json={
                "name": f"judge-{tag}",
                "judge": "judge",
                "criteria": ["accuracy"],
                "sampling_rate": 0,
            },
        )
        assert made.status_code == 201, made.text
        started = admin.post(
            "/admin/api/comparisons",
            json={
                "evaluator_id": made.json()["id"],
                "filter": {"tag": tag},
                "variants": {"a": {"model": "mock-gpt"}, "b": {"model": "mock-gpt-large"}},
                "confirm": True,
            },
        )
    assert started.status_code == 202, started.text
    return str(started.json()["id"])


def progress(database: Database, comparison_id: str) -> dict[str, Any]:
    [row] = database.rows(
        "SELECT status, completed, failed, results FROM comparisons WHERE comparison_id = :c",
        c=comparison_id,
    )
    return row


def kill_mid_way(gateway: GatewayProcess, comparison_id: str) -> None:
    deadline = time.monotonic() + 30
    while progress(gateway.database, comparison_id)["completed"] < 2:
        assert time.monotonic() < deadline, "the comparison made no progress"
        time.sleep(0.05)
    gateway.process.kill()
    gateway.process.wait(timeout=10)
    gateway.stop()
    time.sleep(0.5)  # a call already on its way reaches the mock provider before it is counted


def replayed(mock: MockProcess) -> dict[str, int]:
    counts = mock.stats()["requests_by_model"]
    return {model: int(counts.get(model, 0)) for model in MODELS}


@pytest.mark.parametrize("resumer", ["serve", "worker"])
def test_a_killed_gateways_comparison_is_resumed_and_done_once(
    resumer: str,
    backend_database: Database,
    slow_mock: MockProcess,
    gemini: FakeGemini,
    tmp_path: Path,
) -> None:
    config = config_for(slow_mock, gemini)
    master = "sk-master-" + secrets.token_hex(8)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    dying = GatewayProcess(backend_database, config, tmp_path / "a", master_key=master)
    comparison_id = start_comparison(dying, f"resume-{resumer}")
    kill_mid_way(dying, comparison_id)

    stranded = progress(backend_database, comparison_id)
    assert stranded["status"] == "running"
    done_before = stranded["completed"]
    assert 2 <= done_before < REQUESTS
    at_death = replayed(slow_mock)

    if resumer == "serve":
        other = GatewayProcess(backend_database, config, tmp_path / "b", master_key=master)
        process = other.process
    else:
        path = tmp_path / "b" / "steerway.yaml"
        path.write_text((tmp_path / "a" / f"steerway-{dying.port}.yaml").read_text())
        environ = {
            **{k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")},
            "STEERWAY_DATABASE_URL": backend_database.url,
            "STEERWAY_CONFIG": str(path),
        }
        process = subprocess.Popen(
            [STEERWAY, "worker", "--log-level", "info"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=environ,
        )
    try:
        ended = backend_database.wait_rows(
            "SELECT status FROM comparisons WHERE comparison_id = :c AND status <> 'running'",
            timeout=60.0,
            c=comparison_id,
        )
    finally:
        output = stop(process)
    assert ended == [{"status": "done"}], output
    if resumer == "worker":  # `steerway serve` logs only warnings of its own
        assert f"resuming comparison {comparison_id}" in output
    assert "gk-resume-secret" not in output

    final = progress(backend_database, comparison_id)
    assert (final["completed"], final["failed"]) == (REQUESTS, 0)
    results = final["results"]
    if isinstance(results, str):
        results = json.loads(results)
    interactions = [r["interaction_id"] for r in results]
    assert len(interactions) == len(set(interactions)) == REQUESTS
    assert all(r["a"]["score"] == 75.0 and r["b"]["score"] == 75.0 for r in results)
    # Each model got exactly the requests without a saved result, once: none saved was replayed.
    after = replayed(slow_mock)
    left = REQUESTS - done_before
    assert {m: after[m] - at_death[m] for m in MODELS} == {m: left for m in MODELS}

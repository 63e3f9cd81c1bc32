"""Trace sampling through the running gateway (`telemetry.sampling`, ratio 0, every "always
keep" on): plain requests leave their trace rows and figures only, the requests sampling must
keep are stored whole, and roll-ups, analytics, budgets and /metrics count every request."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import Database, GatewayProcess, MockProcess, mock_config
from tests.e2e.test_keys import create_key

SLOW_MS = 300
COUNTED = "counted"
"""A model only the counting test asks for, so its figures are its own."""


@pytest.fixture(scope="module")
def sampled(
    backend_database: Database,
    mock_provider: MockProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GatewayProcess]:
    tmp = tmp_path_factory.mktemp("sampled")
    config = mock_config(
        mock_provider,
        telemetry={
            "spill_dir": str(tmp / "spill"),
            "sampling": {"ratio": 0, "slow_ms": SLOW_MS},
        },
        cache={"enabled": False},
        guardrails={
            "definitions": {
                "words-block": {"kind": "deny_list", "words": ["project falcon"], "action": "block"}
            }
        },
        rules=[
            {
                "id": "deny-banned",
                "when": {"metadata.team": "banned"},
                "then": {"deny": {"status": 403, "message": "Team 'banned' may not."}},
            },
            {
                "id": "guard-words",
                "when": {"tags": "words-block"},
                "then": {"guardrails": ["words-block"]},
            },
        ],
    )
    config["models"][COUNTED] = [
        {
            "provider": "mock",
            "model": "mock-gpt",
            "price": {"input_per_million": 1000, "output_per_million": 1000},
        }
    ]
    process = GatewayProcess(
        backend_database, config, tmp, master_key="sk-master-" + secrets.token_hex(8)
    )
    try:
        yield process
    finally:
        process.stop()


def _chat(
    gateway: GatewayProcess,
    text: str,
    model: str = "mock-gpt",
    api_key: str | None = None,
    **extra: Any,
) -> str:
    """Send one chat; the trace id, whatever the answer."""
    raw = gateway.client(api_key).chat.completions.with_raw_response
    try:
        response = raw.create(model=model, messages=[{"role": "user", "content": text}], **extra)
        return str(response.headers["x-steerway-trace-id"])
    except openai.APIStatusError as error:
        return str(error.response.headers["x-steerway-trace-id"])


def _stored(database: Database, trace_id: str) -> dict[str, Any]:
    (trace,) = database.wait_rows("SELECT * FROM traces WHERE trace_id = :t", t=trace_id)
    return {
        "trace": trace,
        **{
            table: database.rows(f"SELECT * FROM {table} WHERE trace_id = :t", t=trace_id)
            for table in ("spans", "decisions", "ai_interactions", "guardrail_violations")
        },
    }


def _metric(gateway: GatewayProcess, name: str, **labels: str) -> float:
    exposition = httpx.get(f"{gateway.url}/metrics").text
    total = 0.0
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def _analytics_requests(gateway: GatewayProcess, model: str) -> int:
    with gateway.http() as http:
        answer = http.get("/admin/api/analytics/requests", params={"last": "1h", "model": model})
    assert answer.status_code == 200, answer.text
    return int(answer.json()["total"])


def _assert_kept_whole(stored: dict[str, Any]) -> None:
    assert not stored["trace"]["sampled_out"]
    assert stored["spans"], "a kept trace has its spans"
    assert stored["decisions"], "a kept trace has its decisions"


def test_plain_requests_leave_their_figures_without_spans_decisions_or_content(
    sampled: GatewayProcess,
) -> None:
    database = sampled.database
    prompts = [f"plain prompt {uuid.uuid4().hex}" for _ in range(5)]
    sampled_before = _metric(sampled, "steerway_traces_sampled_out_total")
    key = create_key(sampled, f"sampled-{uuid.uuid4().hex[:6]}", "--budget", "100/total")
    trace_ids = [_chat(sampled, prompt, model=COUNTED, api_key=key.plaintext) for prompt in prompts]

    for trace_id, prompt in zip(trace_ids, prompts, strict=True):
        stored = _stored(database, trace_id)
        trace = stored["trace"]
        assert trace["sampled_out"] and trace["status"] == "ok" and trace["http_status"] == 200
        assert trace["requested_model"] == COUNTED and trace["total_tokens"] > 0
        assert stored["spans"] == [] and stored["decisions"] == []
        (interaction,) = stored["ai_interactions"]
        assert interaction["prompt"] is None and interaction["response"] is None
        assert interaction["prompt_tokens"] > 0 and interaction["completion_tokens"] > 0
        assert prompt not in json.dumps(stored, default=str)

    # The budget is charged for every request: $1000 per million tokens is 1000 micro-dollars
    # a token.
    tokens = sum(
        row["total_tokens"]
        for row in database.rows(
            "SELECT total_tokens FROM traces WHERE api_key_id = :k", k=key.key_id
        )
    )
    assert tokens > 0
    spent = database.wait_rows(
        "SELECT spent_micros FROM budget_spend WHERE subject = :k AND spent_micros = :micros",
        k=key.key_id,
        micros=tokens * 1000,
    )
    assert [row["spent_micros"] for row in spent] == [tokens * 1000]

    assert _analytics_requests(sampled, COUNTED) == len(prompts)
    minute_rows = database.rows(
        "SELECT SUM(requests) AS n FROM usage_rollups WHERE grain = 'minute' AND model = :m",
        m=COUNTED,
    )
    assert int(minute_rows[0]["n"]) == len(prompts)
    assert _metric(sampled, "steerway_requests_total", model=COUNTED, status_code="200") == len(
        prompts
    )
    deadline = time.monotonic() + 10
    while (
        _metric(sampled, "steerway_traces_sampled_out_total") - sampled_before < len(prompts)
        and time.monotonic() < deadline
    ):
        time.sleep(0.1)
    assert _metric(sampled, "steerway_traces_sampled_out_total") - sampled_before == len(prompts)


def test_an_upstream_error_is_kept_whole(sampled: GatewayProcess) -> None:
    trace_id = _chat(sampled, "fail, please", extra_body={"mock": {"error": 500}})
    stored = _stored(sampled.database, trace_id)
    assert stored["trace"]["http_status"] >= 500
    _assert_kept_whole(stored)
    assert stored["ai_interactions"]
    assert all(i["status"] == "error" for i in stored["ai_interactions"])


def test_a_slow_request_is_kept_whole_and_a_quick_one_is_not(sampled: GatewayProcess) -> None:
    slow = _chat(sampled, "take your time", extra_body={"mock": {"latency_ms": SLOW_MS + 200}})
    quick = _chat(sampled, "be quick")
    slow_stored = _stored(sampled.database, slow)
    assert slow_stored["trace"]["duration_ms"] > SLOW_MS
    _assert_kept_whole(slow_stored)
    (interaction,) = slow_stored["ai_interactions"]
    assert "take your time" in json.dumps(interaction["prompt"], default=str)
    quick_stored = _stored(sampled.database, quick)
    assert quick_stored["trace"]["sampled_out"] and quick_stored["spans"] == []


def test_a_guardrail_block_is_kept_whole(sampled: GatewayProcess) -> None:
    trace_id = _chat(
        sampled,
        "tell me about Project Falcon",
        extra_headers={"x-steerway-tags": "words-block"},
    )
    stored = _stored(sampled.database, trace_id)
    assert stored["trace"]["guardrail_action"] == "block"
    _assert_kept_whole(stored)
    (violation,) = stored["guardrail_violations"]
    assert violation["action"] == "block"


def test_a_rule_denial_is_kept_whole(sampled: GatewayProcess) -> None:
    trace_id = _chat(
        sampled, "let me in", extra_headers={"x-steerway-metadata": '{"team": "banned"}'}
    )
    stored = _stored(sampled.database, trace_id)
    assert stored["trace"]["status"] == "denied" and stored["trace"]["http_status"] == 403
    _assert_kept_whole(stored)
    assert any(d["rule_id"] == "deny-banned" for d in stored["decisions"])

"""`GET /admin/api/traces/{trace_id}` against a running gateway, on SQLite and Postgres."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
from openai.types.chat import ChatCompletionMessageParam

from telemetry.db import is_postgres
from telemetry.schema import money_from_sql
from tests.admin_ui.conftest import create_key, error_of
from tests.e2e.conftest import GatewayProcess

HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello there"}]


def recorded_trace(gateway: GatewayProcess, **headers: str) -> str:
    raw = gateway.client().chat.completions.with_raw_response.create(
        model="mock-gpt",
        messages=HELLO,
        extra_headers=headers,
    )
    trace_id = raw.headers["x-steerway-trace-id"]
    for table in ("traces", "ai_interactions"):
        rows = gateway.database.wait_rows(f"SELECT 1 FROM {table} WHERE trace_id = :t", t=trace_id)
        assert rows, f"the recorder wrote no {table} row"
    return trace_id


def utc_time(text: str) -> datetime:
    assert text.endswith("Z"), text
    parsed = datetime.fromisoformat(text)
    assert parsed.utcoffset() == UTC.utcoffset(None)
    return parsed


def test_a_trace_comes_back_with_its_spans_decisions_and_interactions(
    gateway: GatewayProcess,
) -> None:
    trace_id = recorded_trace(gateway, **{"x-steerway-tags": "admin-test"})
    with gateway.http() as http:
        response = http.get(f"/admin/api/traces/{trace_id}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"trace", "spans", "decisions", "interactions", "guardrail_violations"}

    trace = body["trace"]
    assert trace["trace_id"] == trace_id
    assert (trace["requested_model"], trace["http_status"], trace["status"]) == (
        "mock-gpt",
        200,
        "ok",
    )
    assert "admin-test" in trace["tags"]
    assert utc_time(trace["started_at"]) <= utc_time(trace["ended_at"])

    spans = body["spans"]
    assert {"gateway.request", "auth", "provider.chat", "response"} <= {s["name"] for s in spans}
    assert all(s["trace_id"] == trace_id for s in spans)
    starts = [utc_time(s["started_at"]) for s in spans]
    assert starts == sorted(starts)
    root = next(s for s in spans if s["name"] == "gateway.request")
    assert all(s["parent_span_id"] == root["span_id"] for s in spans if s is not root)

    sequences = [d["sequence"] for d in body["decisions"]]
    assert sequences == sorted(sequences) and sequences
    assert "model_selection" in {d["type"] for d in body["decisions"]}

    (interaction,) = body["interactions"]
    assert (interaction["provider"], interaction["attempt"]) == ("mock", 1)
    assert interaction["prompt_tokens"] > 0
    cost = interaction["cost_usd"]
    assert isinstance(cost, str) and "e" not in cost.lower()
    (stored,) = gateway.database.rows(
        "SELECT cost_usd FROM ai_interactions WHERE trace_id = :t", t=trace_id
    )
    dialect = "postgresql" if is_postgres(gateway.database.url) else "sqlite"
    assert Decimal(cost) > 0
    assert Decimal(cost) == money_from_sql(stored["cost_usd"], dialect)


def test_a_key_with_the_master_role_may_read_traces(gateway: GatewayProcess) -> None:
    trace_id = recorded_trace(gateway)
    admin = create_key(gateway.database, "trace-reader", role="master")
    with gateway.http(admin) as http:
        response = http.get(f"/admin/api/traces/{trace_id}")
    assert response.status_code == 200, response.text
    assert response.json()["trace"]["trace_id"] == trace_id


def test_an_unknown_trace_is_a_404(gateway: GatewayProcess) -> None:
    with gateway.http() as http:
        response = http.get(f"/admin/api/traces/{'0' * 32}")
    error = error_of(response, 404)
    assert error["code"] == "trace_not_found"
    assert "0" * 32 in error["message"]


@pytest.mark.parametrize(
    ("authorization", "code"),
    [(None, "missing_api_key"), ("Bearer sk-not-a-key", "invalid_api_key")],
)
def test_without_a_valid_key_the_answer_is_401(
    gateway: GatewayProcess, authorization: str | None, code: str
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    with httpx.Client(base_url=gateway.url, timeout=30) as http:
        response = http.get(f"/admin/api/traces/{'0' * 32}", headers=headers)
    error = error_of(response, 401)
    assert error["code"] == code
    assert "sk-not-a-key" not in response.text


def test_a_user_key_is_refused_with_403(gateway: GatewayProcess) -> None:
    trace_id = recorded_trace(gateway)
    user = create_key(gateway.database, "plain-user")
    with gateway.http(user) as http:
        response = http.get(f"/admin/api/traces/{trace_id}")
        assert http.get("/v1/models").status_code == 200  # the key itself works
    error = error_of(response, 403)
    assert error["code"] == "admin_key_required"
    assert trace_id not in response.text

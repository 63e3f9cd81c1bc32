"""NUL characters in what clients send (and providers answer) cost no record and no budget
spend, on SQLite and Postgres, through the official openai SDK.

The client always gets its answer as the provider gave it; what is stored holds each NUL as the
six characters `\\u0000`, and the request's trace says so (`escaped`).
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import openai
import pytest
import redis

from telemetry.schema import DEFAULT_WORKSPACE_ID, money_from_sql
from tests.conftest import REDIS_URL
from tests.e2e.conftest import Database, GatewayProcess, MockProcess, mock_config
from tests.e2e.test_keys import NewKey, create_key
from tests.e2e.test_limits import REQUEST_COST, _config, backend

__all__ = ["backend"]  # a fixture

NUL = "\x00"
ESCAPED = "\\u0000"


@pytest.fixture(scope="module")
def key(gateway: GatewayProcess) -> NewKey:
    return create_key(gateway, f"nul-{uuid.uuid4().hex[:6]}")


def _trace(gateway: GatewayProcess, trace_id: str) -> dict[str, Any]:
    rows = gateway.database.wait_rows("SELECT * FROM traces WHERE trace_id = :t", t=trace_id)
    assert len(rows) == 1, f"the trace of {trace_id} was not recorded"
    return rows[0]


def _interaction(gateway: GatewayProcess, trace_id: str) -> dict[str, Any]:
    rows = gateway.database.wait_rows(
        "SELECT * FROM ai_interactions WHERE trace_id = :t", t=trace_id
    )
    assert len(rows) == 1, f"the interaction of {trace_id} was not recorded"
    return rows[0]


def _json(value: Any) -> Any:
    """A JSON column as read with plain SQL: text on SQLite, decoded already on Postgres."""
    return json.loads(value) if isinstance(value, str) else value


def _chat(client: openai.OpenAI, marker: str, **params: Any) -> tuple[str, Any]:
    params.setdefault("messages", [{"role": "user", "content": f"plain {marker}"}])
    raw = client.chat.completions.with_raw_response.create(model="mock-gpt", **params)
    return raw.headers["x-steerway-trace-id"], raw.parse()


def test_nul_in_content_user_metadata_and_tool_calls_is_recorded_escaped(
    gateway: GatewayProcess,
) -> None:
    key = create_key(gateway, f"nul-rollups-{uuid.uuid4().hex[:6]}")  # its roll-ups: this test's
    client = gateway.client(key.plaintext)
    traces: dict[str, str] = {}

    traces["content"], answer = _chat(
        client, "c", messages=[{"role": "user", "content": f"nul-content-marker{NUL}end"}]
    )
    assert f"nul-content-marker{NUL}end" in answer.choices[0].message.content  # unaltered
    traces["user"], _ = _chat(client, "u", user=f"nul-user-marker{NUL}end")
    traces["metadata"], _ = _chat(
        client,
        "m",
        extra_headers={"x-steerway-metadata": json.dumps({f"k{NUL}": f"nul-meta-marker{NUL}"})},
    )
    traces["tools"], _ = _chat(
        client,
        "t",
        messages=[
            {"role": "user", "content": "call it"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "f", "arguments": '{"a": "nul-arg\\u0000"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": f"nul-tool-result{NUL}"},
        ],
    )
    traces["answer"], answer = _chat(
        client, "r", extra_body={"mock": {"content": f"nul-answer-marker{NUL}end"}}
    )
    assert answer.choices[0].message.content == f"nul-answer-marker{NUL}end"
    stream = client.chat.completions.with_raw_response.create(
        model="mock-gpt",
        messages=[{"role": "user", "content": f"nul-stream-marker{NUL}end"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    traces["stream"] = stream.headers["x-steerway-trace-id"]
    streamed = "".join(
        chunk.choices[0].delta.content or "" for chunk in stream.parse() if chunk.choices
    )
    assert f"nul-stream-marker{NUL}end" in streamed

    rows = {name: _trace(gateway, trace_id) for name, trace_id in traces.items()}
    assert {name: row["escaped"] for name, row in rows.items()} == dict.fromkeys(traces, True)
    assert rows["user"]["end_user"] == f"nul-user-marker{ESCAPED}end"
    assert _json(rows["metadata"]["metadata"]) == {f"k{ESCAPED}": f"nul-meta-marker{ESCAPED}"}

    prompt = _json(_interaction(gateway, traces["content"])["prompt"])
    assert prompt == [{"role": "user", "content": f"nul-content-marker{ESCAPED}end"}]
    tools = _json(_interaction(gateway, traces["tools"])["prompt"])
    assert tools[1]["tool_calls"][0]["function"]["arguments"] == f'{{"a": "nul-arg{ESCAPED}"}}'
    assert tools[2]["content"] == f"nul-tool-result{ESCAPED}"
    response = _json(_interaction(gateway, traces["answer"])["response"])
    assert response[0]["content"] == f"nul-answer-marker{ESCAPED}end"
    streamed_prompt = _json(_interaction(gateway, traces["stream"])["prompt"])
    assert streamed_prompt == [{"role": "user", "content": f"nul-stream-marker{ESCAPED}end"}]

    # Every request's cost is in its interaction and in the roll-ups.
    dialect = "sqlite" if gateway.database.url.startswith("sqlite") else "postgresql"
    costs = [
        money_from_sql(_interaction(gateway, trace_id)["cost_usd"], dialect) or Decimal(0)
        for trace_id in traces.values()
    ]
    assert all(cost > 0 for cost in costs)
    gateway.database.fold()
    for grain in ("minute", "hour", "day"):
        rollups = gateway.database.rows(
            "SELECT requests, cost_usd FROM usage_rollups WHERE api_key_id = :k AND grain = :g",
            k=key.key_id,
            g=grain,
        )
        assert sum(row["requests"] for row in rollups) == len(traces), grain
        assert sum(
            money_from_sql(row["cost_usd"], dialect) or Decimal(0) for row in rollups
        ) == sum(costs, Decimal(0)), grain


def test_nul_in_a_model_name_and_an_upstream_error_is_recorded_escaped(
    gateway: GatewayProcess, key: NewKey
) -> None:
    client = gateway.client(key.plaintext)
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(
            model=f"nul-model-marker{NUL}", messages=[{"role": "user", "content": "x"}]
        )
    row = _trace(gateway, missing.value.response.headers["x-steerway-trace-id"])
    assert (bool(row["escaped"]), row["http_status"]) == (True, 404)
    assert row["requested_model"] == f"nul-model-marker{ESCAPED}"

    with pytest.raises(openai.APIStatusError) as failed:
        client.chat.completions.create(
            model="mock-gpt",
            messages=[{"role": "user", "content": "x"}],
            extra_body={"mock": {"error": 400, "error_message": f"nul-upstream-marker{NUL}"}},
        )
    trace_id = failed.value.response.headers["x-steerway-trace-id"]
    assert bool(_trace(gateway, trace_id)["escaped"]) is True
    interaction = _interaction(gateway, trace_id)
    assert interaction["status"] == "error"
    assert NUL not in (interaction["error_message"] or "")


def test_a_url_path_with_nul_is_recorded_escaped_when_sampled(
    backend_database: Database,
    mock_provider: MockProcess,
    start_gateway: Callable[..., GatewayProcess],
) -> None:
    """Unknown paths are refused before a key is accepted: counted, and stored only as the
    configured sample, whose error message holds the path (escaped)."""
    sampled = start_gateway(
        backend_database,
        mock_config(mock_provider, telemetry={"unauthenticated_traces_per_minute": 60}),
        master_key="sk-master-" + secrets.token_hex(8),
    )
    with sampled.http() as http:
        response = http.post("/v1/chat%00nul-path-marker/completions", json={})
    assert response.status_code == 404
    row = _trace(sampled, response.headers["x-steerway-trace-id"])
    assert bool(row["escaped"]) is True
    assert row["route"] == "unmatched"
    assert f"/v1/chat{ESCAPED}nul-path-marker/completions" in row["error_message"]


def _spend(database: Database, subject: str) -> list[int]:
    rows = database.rows(
        "SELECT spent_micros FROM budget_spend WHERE scope = 'end_user' AND subject = :s",
        s=f"{DEFAULT_WORKSPACE_ID}/{subject}",
    )
    return [int(row["spent_micros"]) for row in rows]


def _wait_for_spend(database: Database, subject: str, micros: int) -> list[int]:
    rows = database.wait_rows(
        "SELECT spent_micros FROM budget_spend WHERE scope = 'end_user' AND subject = :s "
        "AND spent_micros = :m",
        s=f"{DEFAULT_WORKSPACE_ID}/{subject}",
        m=micros,
    )
    return [int(row["spent_micros"]) for row in rows]


def test_an_end_user_with_nul_is_charged_and_stays_charged_across_a_restart(
    backend: dict[str, str],
    backend_database: Database,
    mock_provider: MockProcess,
    start_gateway: Callable[..., GatewayProcess],
) -> None:
    config = _config(
        mock_provider,
        budgets={"end_user": {"limit_usd": str(REQUEST_COST), "window": "daily"}},
    )
    master_key = "sk-master-" + secrets.token_hex(8)
    marker = uuid.uuid4().hex[:8]
    eve, alice, bob, carol = (
        f"{name}-{marker}" for name in ("eve\x00nul", "alice", "bob", "carol")
    )
    micros = int(REQUEST_COST * 1_000_000)

    def chat(gateway: GatewayProcess, user: str) -> Any:
        return gateway.client(master_key).chat.completions.create(
            model="metered",
            max_tokens=5,
            messages=[{"role": "user", "content": "hello"}],
            user=user,
        )

    first = start_gateway(backend_database, config, master_key=master_key, env=backend)
    chat(first, eve)
    chat(first, alice)
    escaped_eve = eve.replace(NUL, ESCAPED)
    assert _wait_for_spend(backend_database, escaped_eve, micros) == [micros]
    assert _wait_for_spend(backend_database, alice, micros) == [micros]
    chat(first, bob)  # written by the same worker's later flushes
    assert _wait_for_spend(backend_database, bob, micros) == [micros]
    with pytest.raises(openai.RateLimitError):
        chat(first, eve)
    first.stop()

    if backend:
        redis.Redis.from_url(REDIS_URL).flushdb()  # Redis lost everything: rebuilt from the DB
    second = start_gateway(backend_database, config, master_key=master_key, env=backend)
    with pytest.raises(openai.RateLimitError) as refused:
        chat(second, eve)
    assert refused.value.code == "insufficient_quota"
    chat(second, carol)
    second.stop()
    assert _spend(backend_database, escaped_eve) == [micros]
    assert _spend(backend_database, carol) == [micros]

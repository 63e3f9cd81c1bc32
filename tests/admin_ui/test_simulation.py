"""`/admin/api/rules/simulate` and `/admin/api/rules/replay` against a running gateway, on SQLite
and Postgres: requests go through the proxy to the mock provider, the recorder writes them, and
replay reads them back."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import msgspec
import pytest
from openai.types.chat import ChatCompletionMessageParam

from providers.pricing import PriceTable
from telemetry.db import is_postgres
from telemetry.schema import money_from_sql
from tests.admin_ui.conftest import create_key, error_of
from tests.e2e.conftest import Database, GatewayProcess, MockProcess, mock_config

FILE_RULE: dict[str, Any] = {
    "id": "file-tagger",
    "name": "Tags tagged traffic",
    "priority": 50,
    "when": {"tags": {"contains": "from-file"}},
    "then": {"tag": ["file"]},
}
PRICES = PriceTable.shipped()
LARGE = PRICES.lookup("mock-gpt-large")


@pytest.fixture(scope="module")
def sim_gateway(
    backend_database: Database,
    mock_provider: MockProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GatewayProcess]:
    config = mock_config(mock_provider, rules=[FILE_RULE])
    config["models"]["mock-large"] = [{"provider": "mock", "model": "mock-gpt-large"}]
    process = GatewayProcess(
        backend_database,
        config,
        tmp_path_factory.mktemp("simulation-gateway"),
        master_key="sk-master-" + secrets.token_hex(8),
    )
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def api(sim_gateway: GatewayProcess) -> Iterator[httpx.Client]:
    with sim_gateway.http() as http:
        http.base_url = httpx.URL(f"{sim_gateway.url}/admin/api/rules")
        yield http


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def chat(gateway: GatewayProcess, text: str, **headers: str) -> str:
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": text}]
    raw = gateway.client().chat.completions.with_raw_response.create(
        model="mock-gpt", messages=messages, extra_headers=headers
    )
    return raw.headers["x-steerway-trace-id"]


def embed(gateway: GatewayProcess, text: str) -> str:
    raw = gateway.client().embeddings.with_raw_response.create(model="mock-embedding", input=text)
    return raw.headers["x-steerway-trace-id"]


def wait_recorded(gateway: GatewayProcess, trace_ids: list[str]) -> None:
    for trace_id in trace_ids:
        rows = gateway.database.wait_rows(
            "SELECT 1 FROM ai_interactions WHERE trace_id = :t", t=trace_id
        )
        assert rows, f"the recorder wrote nothing for {trace_id}"


def interaction(gateway: GatewayProcess, trace_id: str) -> dict[str, Any]:
    (row,) = gateway.database.rows(
        "SELECT prompt_tokens, completion_tokens, cached_tokens, cost_usd "
        "FROM ai_interactions WHERE trace_id = :t",
        t=trace_id,
    )
    dialect = "postgresql" if is_postgres(gateway.database.url) else "sqlite"
    row["cost_usd"] = money_from_sql(row["cost_usd"], dialect)
    return row


def large_cost(row: dict[str, Any]) -> Decimal:
    """What the recorded tokens cost at the large model's price."""
    assert LARGE is not None
    cost = LARGE.cost(row["prompt_tokens"], row["completion_tokens"], row["cached_tokens"])
    assert cost is not None
    return cost


def requests_seen(mock: MockProcess) -> int:
    return int(mock.stats()["requests_total"])


def names(entries: list[dict[str, Any]]) -> dict[str, float]:
    return {entry["name"]: entry["requests"] for entry in entries}


# --- replay -------------------------------------------------------------------------------------


def test_replay_reports_matches_model_mix_and_the_cost_difference(
    sim_gateway: GatewayProcess, api: httpx.Client, mock_provider: MockProcess
) -> None:
    since = now_iso()
    time.sleep(0.01)
    run = secrets.token_hex(4)
    premium = [
        chat(
            sim_gateway,
            f"premium question {n}, about a refund" if n == 0 else f"premium question {n}",
            **{"x-steerway-tags": f"premium,{run}", "x-steerway-metadata": '{"tier": "gold"}'},
        )
        for n in range(3)
    ]
    plain = [chat(sim_gateway, f"plain question {n}", **{"x-steerway-tags": run}) for n in range(2)]
    embedded = [embed(sim_gateway, "some text to embed")]
    wait_recorded(sim_gateway, premium + plain + embedded)

    candidate = {
        "id": "premium-to-large",
        "name": "Premium traffic to the large model",
        "priority": 10,
        "when": {"all": [{"tags": {"contains": "premium"}}, {"metadata.tier": "gold"}]},
        "then": {"route": "mock-large"},
    }
    seen = requests_seen(mock_provider)
    report = ok(api.post("/replay", json={"rules": [candidate], "merge": True, "since": since}))
    assert requests_seen(mock_provider) == seen, "replay must not call a provider"

    assert (report["object"], report["rule_set"]) == ("rules.replay", "merged")
    assert report["requests"] == 6
    assert report["window"]["since"] is not None and report["window"]["truncated"] is False
    rules = {entry["rule_id"]: entry for entry in report["rules"]}
    assert set(rules) == {"premium-to-large", "file-tagger"}
    assert (rules["premium-to-large"]["matched"], rules["premium-to-large"]["routed"]) == (3, 3)
    assert rules["premium-to-large"]["source"] == "candidate"
    assert rules["premium-to-large"]["matched_recorded"] == 0
    assert rules["file-tagger"]["source"] == "config"
    assert report["recorded_evaluations"] == 6, "the config rule makes every request evaluated"

    assert names(report["model_mix"]["before"]) == {"mock-gpt": 5, "mock-embedding": 1}
    assert names(report["model_mix"]["after"]) == {
        "mock-large": 3,
        "mock-gpt": 2,
        "mock-embedding": 1,
    }
    assert names(report["deployment_mix"]["after"]) == {
        "mock/mock-gpt-large": 3,
        "mock/mock-gpt": 2,
        "mock/mock-embedding": 1,
    }
    assert report["changes"] == [{"from": "mock-gpt", "to": "mock-large", "requests": 3}]
    assert (report["denied"]["before"], report["denied"]["after"]) == (0, 0)

    recorded = {trace_id: interaction(sim_gateway, trace_id) for trace_id in premium}
    before = sum((row["cost_usd"] for row in recorded.values()), Decimal(0))
    after = sum((large_cost(row) for row in recorded.values()), Decimal(0))
    cost = report["cost"]
    assert Decimal(cost["difference_usd"]) == after - before
    assert Decimal(cost["difference_usd"]) > 0
    assert cost["compared_requests"] == 6
    assert (cost["unknown_before"], cost["unknown_after"]) == (0, 0)
    everything = sum(
        (interaction(sim_gateway, t)["cost_usd"] for t in premium + plain + embedded), Decimal(0)
    )
    assert Decimal(cost["before_usd"]) == everything
    assert Decimal(cost["after_usd"]) == everything - before + after

    last_two = ok(api.post("/replay", json={"rules": [candidate], "last": 2}))
    assert last_two["requests"] == 2 and last_two["rule_set"] == "candidate"
    assert last_two["window"]["newest"] is not None


def test_replay_reads_stored_prompts_and_owns_up_to_headers(
    sim_gateway: GatewayProcess, api: httpx.Client
) -> None:
    since = now_iso()
    time.sleep(0.01)
    traces = [
        chat(sim_gateway, "I would like a refund please"),
        chat(sim_gateway, "What is the weather?"),
    ]
    wait_recorded(sim_gateway, traces)
    candidates = [
        {"id": "refunds", "when": {"prompt": {"contains": "refund"}}, "then": {"tag": ["r"]}},
        {
            "id": "by-team",
            "priority": 200,
            "when": {"headers.x-team": "support"},
            "then": {"route": "mock-large"},
        },
    ]
    report = ok(api.post("/replay", json={"rules": candidates, "since": since}))
    rules = {entry["rule_id"]: entry for entry in report["rules"]}
    assert report["requests"] == 2
    assert (rules["refunds"]["matched"], rules["refunds"]["unavailable"]) == (1, 0)
    assert rules["by-team"]["unavailable_fields"] == {"headers.x-team": 2}
    assert rules["by-team"]["reads"] == ["headers.x-team"]
    assert report["unavailable"] == {"requests": 1, "fields": {"headers.x-team": 1}}
    assert report["changes"] == []


def test_replay_of_an_empty_window_reports_nothing(api: httpx.Client) -> None:
    report = ok(api.post("/replay", json={"since": "2001-01-01T00:00:00Z", "until": 978307300}))
    assert report["requests"] == 0 and report["rule_set"] == "current"
    assert report["window"]["oldest"] is None
    assert report["cost"]["difference_usd"] == "0"
    assert report["model_mix"] == {"before": [], "after": []}


# --- simulate -----------------------------------------------------------------------------------


HELLO = {"model": "mock-gpt", "messages": [{"role": "user", "content": "hello there"}]}


def test_simulate_with_the_current_rules_calls_no_provider(
    api: httpx.Client, mock_provider: MockProcess
) -> None:
    seen = requests_seen(mock_provider)
    result = ok(
        api.post(
            "/simulate",
            json={
                "request": {**HELLO, "user": "alice", "temperature": 0.7},
                "tags": ["from-file"],
                "metadata": {"tier": "gold"},
                "key": "key-1",
                "time": "2024-06-01T10:00:00Z",
            },
        )
    )
    assert requests_seen(mock_provider) == seen
    assert (result["object"], result["rule_set"]) == ("rules.simulation", "current")
    assert [m["rule_id"] for m in result["matched"]] == ["file-tagger"]
    assert result["matched"][0]["source"] == "config"
    assert result["matched"][0]["evidence"] == ['tags contains "from-file"']
    assert result["tags"] == ["from-file", "file"]
    assert result["denied"] is None
    assert result["effects"] == {"tags": ["file"]}
    assert result["request"] == {**HELLO, "user": "alice", "temperature": 0.7}
    route = result["route"]
    assert (route["requested_model"], route["name"], route["routed_by"]) == (
        "mock-gpt",
        "mock-gpt",
        None,
    )
    assert route["exists"] is True
    assert route["deployments"] == [
        {"provider": "mock", "model": "mock-gpt", "weight": 1.0, "priced": True}
    ]
    assert result["rules_evaluated"] == result["rules_active"] >= 1
    assert isinstance(result["evaluation_us"], float)


def test_simulate_sees_database_rules_in_the_current_set(api: httpx.Client) -> None:
    rule_id = f"db-{secrets.token_hex(4)}"
    created = api.post(
        "",
        json={
            "id": rule_id,
            "priority": 5,
            "when": {"tags": {"contains": rule_id}},
            "then": {"route": "mock-large", "cap": {"max_tokens": 64}},
        },
    )
    assert created.status_code == 201, created.text
    try:
        result = ok(api.post("/simulate", json={"request": HELLO, "tags": [rule_id]}))
        assert [m["rule_id"] for m in result["matched"]] == [rule_id]
        assert result["matched"][0]["source"] == "database"
        assert result["route"]["name"] == "mock-large"
        assert result["route"]["routed_by"] == rule_id
        assert result["request"]["max_tokens"] == 64
        assert result["parameters_changed"] == {"max_tokens": {"from": None, "to": 64}}
    finally:
        assert api.delete(f"/{rule_id}").status_code == 204


def test_simulate_with_candidate_rules(api: httpx.Client, mock_provider: MockProcess) -> None:
    seen = requests_seen(mock_provider)
    deny = {
        "id": "gold-only-on-weekdays",
        "when": {"all": [{"metadata.tier": "gold"}, {"time.weekday": {"in": ["sat", "sun"]}}]},
        "then": {"deny": {"status": 403, "message": "Not on weekends."}},
    }
    saturday = ok(
        api.post(
            "/simulate",
            json={
                "request": HELLO,
                "metadata": {"tier": "gold"},
                "time": "2024-06-01T10:00:00Z",
                "rules": [deny],
            },
        )
    )
    assert saturday["rule_set"] == "candidate"
    assert saturday["denied"] == {
        "status": 403,
        "message": "Not on weekends.",
        "code": "request_denied",
        "rule_id": "gold-only-on-weekdays",
    }
    assert saturday["route"] is None
    assert saturday["rules_total"] == 1, "candidates alone replace the current rules"

    monday = ok(
        api.post(
            "/simulate",
            json={
                "request": HELLO,
                "metadata": {"tier": "gold"},
                "time": 1717408800,  # Monday 2024-06-03 10:00 UTC
                "rules": [deny],
            },
        )
    )
    assert monday["denied"] is None and monday["matched"] == []

    merged = ok(
        api.post(
            "/simulate",
            json={
                "request": HELLO,
                "tags": ["from-file"],
                "rules": [
                    {
                        "id": "file-tagger",
                        "when": {"tags": {"contains": "from-file"}},
                        "then": {"route": {"provider": "mock", "model": "mock-gpt-large"}},
                    },
                    {"when": {}, "then": {"tag": ["extra"]}, "priority": 500},
                ],
                "merge": True,
            },
        )
    )
    assert merged["rule_set"] == "merged"
    assert [m["rule_id"] for m in merged["matched"]] == ["file-tagger"]
    assert merged["matched"][0]["source"] == "candidate"
    assert merged["route"]["name"] == "mock/mock-gpt-large"
    assert merged["route"]["provider"] == "mock"
    assert merged["rules_total"] == 2, "the candidate replaced the config rule of its id"
    assert requests_seen(mock_provider) == seen


def test_simulate_an_embeddings_request(api: httpx.Client) -> None:
    result = ok(
        api.post(
            "/simulate",
            json={
                "request": {"model": "mock-embedding", "input": "text"},
                "rules": [
                    {"id": "emb", "when": {"model": "mock-embedding"}, "then": {"tag": ["e"]}}
                ],
            },
        )
    )
    assert result["tags"] == ["e"]
    assert result["route"]["deployments"][0]["model"] == "mock-embedding"


# --- errors -------------------------------------------------------------------------------------


def test_invalid_candidate_rules_are_a_400_with_every_problem_and_its_path(
    api: httpx.Client,
) -> None:
    rules = [
        {"id": "fine", "when": {}, "then": {"tag": ["x"]}},
        {"id": "bad", "when": {"tagz": "x"}, "then": {"route": "no-such-model"}},
    ]
    for path in ("/simulate", "/replay"):
        body: dict[str, Any] = {"rules": rules}
        if path == "/simulate":
            body["request"] = HELLO
        error = error_of(api.post(path, json=body), 400)
        assert error["code"] == "invalid_rule"
        assert "rules[1].when.tagz: unknown field 'tagz'" in error["message"]
        assert "rules[1].then.route.model: unknown model 'no-such-model'" in error["message"]
        assert error["param"] == "rules[1].when.tagz"


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/simulate", {}, "request"),
        ("/simulate", {"request": "hello"}, "request"),
        ("/simulate", {"request": {"model": "mock-gpt"}}, "request.messages"),
        ("/simulate", {"request": {"messages": []}}, "request.model"),
        ("/simulate", {"request": HELLO, "operation": "images"}, "operation"),
        ("/simulate", {"request": HELLO, "time": "yesterday"}, "time"),
        ("/simulate", {"request": HELLO, "tags": [1]}, "tags"),
        ("/simulate", {"request": HELLO, "metadata": [1]}, "metadata"),
        ("/simulate", {"request": HELLO, "headers": {"x": 1}}, "headers"),
        ("/simulate", {"request": HELLO, "budget": {"key_pct": 1}}, "budget.key_pct"),
        ("/simulate", {"request": HELLO, "key": 7}, "key"),
        ("/simulate", {"request": HELLO, "rules": {"id": "x"}}, "rules"),
        ("/simulate", {"request": HELLO, "merge": "yes"}, "merge"),
        ("/simulate", {"request": HELLO, "reqest": {}}, "reqest"),
        ("/replay", {"last": 0}, "last"),
        ("/replay", {"last": 10_001}, "last"),
        ("/replay", {"last": "10"}, "last"),
        ("/replay", {"since": "not a time"}, "since"),
        ("/replay", {"since": 2_000_000_000, "until": 1_000_000_000}, "since"),
        ("/replay", {"rules": [], "lats": 5}, "lats"),
    ],
)
def test_a_bad_body_is_a_400_naming_the_field(
    api: httpx.Client, path: str, body: dict[str, Any], param: str
) -> None:
    assert error_of(api.post(path, json=body), 400)["param"] == param


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"x"', b""])
def test_a_body_that_is_not_a_json_object_is_a_400(api: httpx.Client, raw: bytes) -> None:
    for path in ("/simulate", "/replay"):
        response = api.post(path, content=raw, headers={"Content-Type": "application/json"})
        error_of(response, 400)


def test_an_empty_candidate_list_replays_no_rules(api: httpx.Client) -> None:
    report = ok(api.post("/replay", json={"rules": [], "last": 5}))
    assert report["rule_set"] == "candidate" and report["rules"] == []


def test_the_endpoints_need_an_admin_key(
    sim_gateway: GatewayProcess, backend_database: Database
) -> None:
    user_key = create_key(backend_database, "not-an-admin")
    for path in ("simulate", "replay"):
        url = f"{sim_gateway.url}/admin/api/rules/{path}"
        body = msgspec.json.encode({"request": HELLO} if path == "simulate" else {})
        assert error_of(httpx.post(url, content=body), 401)["code"] == "missing_api_key"
        denied = httpx.post(url, content=body, headers={"Authorization": f"Bearer {user_key}"})
        assert error_of(denied, 403)["code"] == "admin_key_required"

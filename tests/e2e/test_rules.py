"""Steering rules through the running gateway: routing, deny, parameters, splits, records."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import Database, GatewayProcess, MockProcess

RULES: list[dict[str, Any]] = [
    {
        "id": "deny-banned-team",
        "priority": 1,
        "when": {"metadata.team": "banned"},
        "then": {
            "deny": {
                "status": 403,
                "message": "Team 'banned' may not use the gateway.",
                "code": "team_blocked",
            },
            "tag": "denied",
        },
    },
    {
        "id": "premium",
        "name": "Premium traffic to the large model",
        "priority": 10,
        "continue": True,
        "when": {"all": [{"tags": {"contains": "premium"}}, {"not": {"metadata.tier": "free"}}]},
        "then": {"route": "large", "tag": ["routed-premium"]},
    },
    {
        "id": "free-tier-limits",
        "priority": 20,
        "when": {"metadata.tier": {"eq": "free"}},
        "then": {"cap": {"max_tokens": 16}, "set": {"temperature": 0}},
    },
    {
        "id": "direct-route",
        "priority": 30,
        "when": {"headers.x-route": "direct"},
        "then": {"route": {"provider": "mock", "model": "mock-direct-model"}},
    },
    {
        "id": "ab-split",
        "priority": 40,
        "when": {"model": "ab-test"},
        "then": {
            "route": {
                "targets": [{"model": "mock-gpt", "weight": 1}, {"model": "large", "weight": 1}],
                "sticky": True,
            }
        },
    },
    {
        "id": "auto-short",
        "priority": 50,
        "when": {"model": "auto", "estimated_input_tokens": {"lt": 200}},
        "then": {"route": "mock-gpt"},
    },
    {
        "id": "auto-long",
        "priority": 51,
        "when": {"model": "auto"},
        "then": {"route": "large", "fallbacks": ["mock-gpt"]},
    },
    {
        "id": "disabled-rule",
        "enabled": False,
        "when": {},
        "then": {"deny": True},
    },
]


@pytest.fixture(scope="module")
def steered(
    backend_database: Database,
    mock_provider: MockProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GatewayProcess]:
    config = {
        "providers": {"mock": {"type": "openai", "base_url": mock_provider.base_url}},
        "models": {
            "mock-gpt": [{"provider": "mock", "model": "mock-gpt"}],
            "large": [{"provider": "mock", "model": "mock-gpt-large"}],
            "mock-embedding": [{"provider": "mock", "model": "mock-embedding"}],
        },
        "rules": RULES,
        # Rules force temperature 0 here: answers would be cached and hide what the mock got.
        "cache": {"enabled": False},
    }
    process = GatewayProcess(
        backend_database,
        config,
        tmp_path_factory.mktemp("steered"),
        master_key="sk-master-" + secrets.token_hex(8),
    )
    try:
        yield process
    finally:
        process.stop()


def _chat(
    gateway: GatewayProcess,
    *,
    model: str = "mock-gpt",
    tags: str | None = None,
    metadata: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    **params: Any,
) -> Any:
    extra = dict(headers or {})
    if tags:
        extra["x-steerway-tags"] = tags
    if metadata is not None:
        extra["x-steerway-metadata"] = json.dumps(metadata)
    return gateway.client().chat.completions.with_raw_response.create(
        model=model,
        messages=[{"role": "user", "content": params.pop("content", "Hello")}],
        extra_headers=extra,
        **params,
    )


def _decisions(gateway: GatewayProcess, trace_id: str, count: int) -> list[dict[str, Any]]:
    return gateway.database.wait_rows(
        "SELECT type, rule_id, rule_name, input, output, reasoning, evaluation_us "
        "FROM decisions WHERE trace_id = :trace_id ORDER BY sequence",
        count=count,
        trace_id=trace_id,
    )


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def test_a_tag_routes_to_another_model_and_says_why(steered: GatewayProcess) -> None:
    raw = _chat(steered, tags="premium")
    assert raw.headers["x-steerway-model"] == "mock-gpt-large"
    assert raw.headers["x-steerway-rules"] == "premium"
    assert raw.parse().choices[0].message.content

    trace_id = raw.headers["x-steerway-trace-id"]
    decisions = _decisions(steered, trace_id, 3)
    summary, premium = decisions[0], decisions[1]
    assert summary["type"] == "rule_evaluation" and summary["rule_id"] is None
    summary_input = _json(summary["input"])
    # 7 enabled rules; evaluation continued past 'premium' (continue: true) to the end.
    assert summary_input["rules_evaluated"] == 7
    assert summary_input["rules_matched"] == 1
    assert summary_input["rules_not_matched"] == 6
    assert _json(summary["output"])["route"] == "large"
    assert summary["evaluation_us"] > 0
    assert premium["rule_id"] == "premium"
    assert premium["rule_name"] == "Premium traffic to the large model"
    evidence = _json(premium["input"])["matched_on"]
    assert 'tags contains "premium"' in evidence
    assert any(e.startswith("not metadata.tier eq") for e in evidence)
    selection = next(d for d in decisions if d["type"] == "model_selection")
    assert _json(selection["input"])["routed_by"] == "premium"
    assert _json(selection["input"])["route"] == "large"
    assert _json(selection["output"])["model"] == "mock-gpt-large"

    trace = steered.database.wait_rows(
        "SELECT requested_model, provider_model, tags FROM traces WHERE trace_id = :trace_id",
        trace_id=trace_id,
    )[0]
    assert trace["requested_model"] == "mock-gpt"
    assert trace["provider_model"] == "mock-gpt-large"
    assert _json(trace["tags"]) == ["premium", "routed-premium"]


def test_no_match_records_one_summary_and_no_header(steered: GatewayProcess) -> None:
    raw = _chat(steered)
    assert "x-steerway-rules" not in raw.headers
    assert raw.headers["x-steerway-model"] == "mock-gpt"
    decisions = _decisions(steered, raw.headers["x-steerway-trace-id"], 2)
    rule_rows = [d for d in decisions if d["type"] == "rule_evaluation"]
    assert len(rule_rows) == 1
    assert rule_rows[0]["reasoning"] == "none of 7 rules matched"


def test_deny_answers_with_the_rules_status_and_calls_no_provider(
    steered: GatewayProcess, mock_provider: MockProcess
) -> None:
    before = mock_provider.stats()["requests_total"]
    with pytest.raises(openai.PermissionDeniedError) as caught:
        _chat(steered, metadata={"team": "banned"}, tags="premium")
    error = caught.value
    assert error.status_code == 403
    assert error.code == "team_blocked"
    assert "Team 'banned' may not use the gateway." in error.message
    assert error.response.headers["x-steerway-rules"] == "deny-banned-team"
    assert mock_provider.stats()["requests_total"] == before
    trace_id = error.response.headers["x-steerway-trace-id"]
    trace = steered.database.wait_rows(
        "SELECT http_status, error_type, tags FROM traces WHERE trace_id = :trace_id",
        trace_id=trace_id,
    )[0]
    assert trace["http_status"] == 403
    assert trace["error_type"] == "team_blocked"
    assert _json(trace["tags"]) == ["premium", "denied"]
    decisions = _decisions(steered, trace_id, 2)
    assert _json(decisions[0]["output"])["deny"]["status"] == 403
    assert decisions[1]["rule_id"] == "deny-banned-team"
    assert not [d for d in decisions if d["type"] == "model_selection"]


def test_cap_and_set_change_what_the_provider_receives(
    steered: GatewayProcess, mock_provider: MockProcess
) -> None:
    raw = _chat(steered, metadata={"tier": "free"}, max_tokens=500, temperature=0.9)
    assert raw.headers["x-steerway-rules"] == "free-tier-limits"
    sent = mock_provider.last_request()["body"]
    assert sent["max_tokens"] == 16
    assert sent["temperature"] == 0
    decisions = _decisions(steered, raw.headers["x-steerway-trace-id"], 2)
    changes = _json(decisions[0]["output"])["parameters_changed"]
    assert changes == {
        "temperature": {"from": 0.9, "to": 0},
        "max_tokens": {"from": 500, "to": 16},
    }


def test_a_cap_sets_a_limit_the_request_did_not_give(
    steered: GatewayProcess, mock_provider: MockProcess
) -> None:
    _chat(steered, metadata={"tier": "free"}, max_tokens=8)
    assert mock_provider.last_request()["body"]["max_tokens"] == 8  # already under the cap
    _chat(steered, metadata={"tier": "free"})
    assert mock_provider.last_request()["body"]["max_tokens"] == 16


def test_a_header_routes_to_a_provider_model_directly(
    steered: GatewayProcess, mock_provider: MockProcess
) -> None:
    raw = _chat(steered, headers={"x-route": "direct"})
    assert raw.headers["x-steerway-model"] == "mock-direct-model"
    assert raw.headers["x-steerway-rules"] == "direct-route"
    assert mock_provider.last_request()["body"]["model"] == "mock-direct-model"


def test_sticky_split_keeps_each_user_on_one_side(steered: GatewayProcess) -> None:
    seen: dict[str, set[str]] = {}
    for index in range(24):
        user = f"user-{index}"
        for _ in range(2):
            raw = _chat(steered, model="ab-test", user=user)
            assert raw.headers["x-steerway-rules"] == "ab-split"
            seen.setdefault(user, set()).add(raw.headers["x-steerway-model"])
    assert all(len(models) == 1 for models in seen.values())
    sides = {model for models in seen.values() for model in models}
    assert sides == {"mock-gpt", "mock-gpt-large"}


def test_a_model_name_only_rules_know_is_routed(steered: GatewayProcess) -> None:
    short = _chat(steered, model="auto")
    assert short.headers["x-steerway-rules"] == "auto-short"
    assert short.headers["x-steerway-model"] == "mock-gpt"
    long = _chat(steered, model="auto", content="word " * 400)
    assert long.headers["x-steerway-rules"] == "auto-long"
    assert long.headers["x-steerway-model"] == "mock-gpt-large"


def test_an_unknown_model_no_rule_routes_is_still_not_found(steered: GatewayProcess) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        _chat(steered, model="no-such-model")
    assert caught.value.code == "model_not_found"


def test_streaming_is_steered_too(steered: GatewayProcess) -> None:
    with steered.client().chat.completions.with_streaming_response.create(
        model="mock-gpt",
        messages=[{"role": "user", "content": "Hello"}],
        stream=True,
        extra_headers={"x-steerway-tags": "premium"},
    ) as response:
        assert response.headers["x-steerway-rules"] == "premium"
        assert response.headers["x-steerway-model"] == "mock-gpt-large"
        chunks = list(response.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_embeddings_are_steered(steered: GatewayProcess) -> None:
    with pytest.raises(openai.PermissionDeniedError):
        steered.client().embeddings.create(
            model="mock-embedding",
            input="hello",
            extra_headers={"x-steerway-metadata": json.dumps({"team": "banned"})},
        )
    result = steered.client().embeddings.create(model="mock-embedding", input="hello")
    assert result.data


def test_rule_metrics(steered: GatewayProcess) -> None:
    _chat(steered, tags="premium")
    with pytest.raises(openai.PermissionDeniedError):
        _chat(steered, metadata={"team": "banned"})
    body = httpx.get(f"{steered.url}/metrics").text
    assert _sample(body, "steerway_rule_matches_total", rule="premium") >= 1
    assert _sample(body, "steerway_rules_denied_total", rule="deny-banned-team") >= 1
    assert _sample(body, "steerway_rule_evaluation_seconds_count") >= 2
    assert _sample(body, "steerway_rules_loaded") == 7


def test_the_trace_endpoint_shows_the_decisions(steered: GatewayProcess) -> None:
    raw = _chat(steered, tags="premium")
    trace_id = raw.headers["x-steerway-trace-id"]
    _decisions(steered, trace_id, 3)
    with steered.http() as http:
        answer = http.get(f"/admin/api/traces/{trace_id}")
    assert answer.status_code == 200
    body = answer.json()
    assert [d["rule_id"] for d in body["decisions"] if d["type"] == "rule_evaluation"] == [
        None,
        "premium",
    ]


def _sample(exposition: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    raise AssertionError(f"{name} {labels} not in /metrics")

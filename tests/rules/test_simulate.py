"""Simulation: one request through real compiled rules, as the proxy would steer it."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from providers.pricing import PriceTable
from rules.compiler import RuleError, compile_rules
from rules.context import routing_features
from rules.engine import RuleSet
from rules.simulate import (
    CatalogDeployment,
    CatalogModel,
    RouteCatalog,
    candidate_rules,
    parse_time,
    shares,
    simulate,
)

MODELS = ("small", "big", "split", "embed")
PROVIDERS = ("mock", "other")
PRICES = PriceTable.shipped()
CATALOG = RouteCatalog(
    {
        "small": CatalogModel(
            deployments=(
                CatalogDeployment(
                    provider="mock", model="mock-gpt", price=PRICES.lookup("mock-gpt")
                ),
            ),
            fallbacks=("big",),
        ),
        "big": CatalogModel(
            deployments=(
                CatalogDeployment(
                    provider="mock", model="mock-gpt-large", price=PRICES.lookup("mock-gpt-large")
                ),
            )
        ),
        "embed": CatalogModel(
            deployments=(
                CatalogDeployment(
                    provider="mock", model="mock-embedding", price=PRICES.lookup("mock-embedding")
                ),
            )
        ),
    },
    PRICES,
)
HELLO: dict[str, Any] = {"model": "small", "messages": [{"role": "user", "content": "hello"}]}
# Saturday 2024-06-01 10:00 UTC.
SATURDAY = datetime(2024, 6, 1, 10, 0, tzinfo=UTC).timestamp()


def rules(*documents: dict[str, Any]) -> RuleSet:
    return compile_rules(list(documents), models=MODELS, providers=PROVIDERS)


def rule(rule_id: str, when: Any, then: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": rule_id, "when": when, "then": then, **extra}


def body(**changes: Any) -> dict[str, Any]:
    return {**HELLO, **changes}


# --- the context is the proxy's -----------------------------------------------------------------


def test_features_come_from_the_body_as_the_proxy_builds_them() -> None:
    payload = body(
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "a" * 400},
        ],
        tools=[{"type": "function", "function": {"name": "f"}}],
        temperature=0.5,
        max_tokens=300,
    )
    size = len(msgspec.json.encode(payload))
    expected_tokens = routing_features(payload, "small", size)["estimated_input_tokens"]
    ruleset = rules(
        rule(
            "shape",
            {
                "all": [
                    {"message_count": 2},
                    {"has_tools": True},
                    {"temperature": {"gt": 0.4}},
                    {"max_tokens": 300},
                    {"estimated_input_tokens": {"eq": expected_tokens}},
                    {"prompt": {"regex": "^a+$"}},
                ]
            },
            {"tag": ["shaped"]},
        )
    )
    result = simulate(ruleset, payload)
    assert [m.rule_id for m in result.matched] == ["shape"]
    assert result.tags == ["shaped"]
    assert result.rules_evaluated == 1


def test_a_given_body_size_is_what_the_token_estimate_uses() -> None:
    ruleset = rules(rule("large", {"estimated_input_tokens": {"gte": 1000}}, {"tag": ["large"]}))
    assert not simulate(ruleset, HELLO).matched
    assert simulate(ruleset, HELLO, body_size=4000).matched


def test_tags_metadata_key_workspace_and_budget_reach_the_rules() -> None:
    ruleset = rules(
        rule(
            "everything",
            {
                "all": [
                    {"tags": {"contains": "premium"}},
                    {"metadata.tier": {"in": ["gold", "platinum"]}},
                    {"metadata.org.size": {"gt": 10}},
                    {"key": "key-1"},
                    {"key_name": "batch jobs"},
                    {"workspace": "ws-1"},
                    {"budget.key_percent": {"gte": 80}},
                    {"headers.x-team": "search"},
                ]
            },
            {"tag": ["all-seen"]},
        )
    )
    given: dict[str, Any] = {
        "tags": ["premium"],
        "metadata": {"tier": "gold", "org": {"size": 12}},
        "key": "key-1",
        "key_name": "batch jobs",
        "workspace": "ws-1",
        "budget": {"key_percent": 85.0},
        "headers": {"X-Team": "search"},
    }
    assert simulate(ruleset, HELLO, **given).tags == ["premium", "all-seen"]
    for name, other in [
        ("metadata", {"tier": "silver", "org": {"size": 12}}),
        ("key", "key-2"),
        ("workspace", "ws-2"),
        ("budget", {"key_percent": 50.0}),
        ("headers", {"x-team": "ads"}),
    ]:
        assert not simulate(ruleset, HELLO, **{**given, name: other}).matched, name


def test_the_end_user_defaults_to_the_body_user_and_can_be_overridden() -> None:
    ruleset = rules(rule("alice", {"user": "alice"}, {"tag": ["alice"]}))
    assert simulate(ruleset, body(user="alice")).matched
    assert not simulate(ruleset, body(user="alice"), end_user="bob").matched
    assert simulate(ruleset, body(user="bob"), end_user="alice").matched


def test_time_conditions_use_the_given_time() -> None:
    ruleset = rules(
        rule(
            "weekend-mornings",
            {"all": [{"time.weekday": {"in": ["sat", "sun"]}}, {"time.hour": {"lt": 12}}]},
            {"tag": ["weekend"]},
        )
    )
    assert simulate(ruleset, HELLO, at=SATURDAY).matched
    assert not simulate(ruleset, HELLO, at=SATURDAY + 3 * 3600).matched
    assert not simulate(ruleset, HELLO, at=SATURDAY + 2 * 86400).matched


def test_times_are_iso_8601_or_epoch_seconds() -> None:
    assert parse_time("2024-06-01T10:00:00Z") == SATURDAY
    assert parse_time("2024-06-01T10:00:00") == SATURDAY
    assert parse_time("2024-06-01T12:00:00+02:00") == SATURDAY
    assert parse_time(SATURDAY) == SATURDAY
    assert parse_time(int(SATURDAY)) == SATURDAY
    bad_times: list[Any] = ["yesterday", "", True, None, [], -1, float("nan"), float("inf"), 10**30]
    for bad in bad_times:
        with pytest.raises(ValueError):
            parse_time(bad)


# --- what the rules do --------------------------------------------------------------------------


def test_set_and_cap_change_a_copy_of_the_body() -> None:
    ruleset = rules(
        rule(
            "tame",
            {},
            {"set": {"temperature": 0}, "cap": {"max_tokens": 256}},
        )
    )
    original = body(temperature=0.9, max_completion_tokens=1000)
    result = simulate(ruleset, original)
    assert result.request["temperature"] == 0
    assert result.request["max_completion_tokens"] == 256
    assert "max_tokens" not in result.request
    assert result.parameters_changed == {
        "temperature": {"from": 0.9, "to": 0},
        "max_completion_tokens": {"from": 1000, "to": 256},
    }
    assert original == body(temperature=0.9, max_completion_tokens=1000)
    assert result.effects == {"set": {"temperature": 0}, "cap": {"max_tokens": 256}}


def test_a_denied_request_keeps_its_body_and_has_no_route() -> None:
    ruleset = rules(
        rule(
            "no-internal",
            {"metadata.env": "internal"},
            {"deny": {"status": 429, "message": "Not today.", "code": "not_today"}, "tag": ["x"]},
        ),
        rule("tame", {}, {"set": {"temperature": 0}}, priority=200),
    )
    result = simulate(ruleset, HELLO, metadata={"env": "internal"})
    assert result.denied is not None
    assert (result.denied.status, result.denied.message, result.denied.code) == (
        429,
        "Not today.",
        "not_today",
    )
    assert result.denied.rule_id == "no-internal"
    assert result.route is None
    assert result.request == HELLO
    assert result.parameters_changed == {}
    assert result.tags == ["x"]
    assert result.rules_evaluated == 1

    allowed = simulate(ruleset, HELLO, metadata={"env": "prod"})
    assert allowed.denied is None
    assert allowed.route is not None and allowed.route.name == "small"
    assert allowed.request["temperature"] == 0


def test_without_a_routing_rule_the_request_keeps_its_model_and_its_fallbacks() -> None:
    result = simulate(rules(), HELLO, catalog=CATALOG)
    route = result.route
    assert route is not None
    assert (route.requested_model, route.name, route.routed_by) == ("small", "small", None)
    assert route.exists
    assert [(d.provider, d.model, d.priced) for d in route.deployments] == [
        ("mock", "mock-gpt", True)
    ]
    assert (route.fallbacks, route.fallbacks_from) == (["big"], "model")
    assert (result.rules_total, result.rules_active, result.rules_evaluated) == (0, 0, 0)


def test_a_routing_rule_picks_the_model_and_its_fallbacks_win() -> None:
    ruleset = rules(
        rule(
            "premium",
            {"tags": "premium"},
            {"route": "big", "fallbacks": ["small"]},
        )
    )
    result = simulate(ruleset, HELLO, tags=["premium"], catalog=CATALOG)
    route = result.route
    assert route is not None
    assert (route.requested_model, route.name, route.model, route.provider) == (
        "small",
        "big",
        "big",
        None,
    )
    assert route.routed_by == "premium"
    assert route.reason == "rule 'premium' routes to big"
    assert [d.model for d in route.deployments] == ["mock-gpt-large"]
    assert (route.fallbacks, route.fallbacks_from) == (["small"], "rule")
    assert result.effects == {"route": "big", "fallbacks": ["small"]}
    assert result.request["model"] == "small", "the proxy routes; it does not rewrite the body"


def test_a_direct_route_names_the_provider_and_is_priced_from_the_table() -> None:
    ruleset = rules(rule("direct", {}, {"route": {"provider": "other", "model": "mock-gpt-large"}}))
    route = simulate(ruleset, HELLO, catalog=CATALOG).route
    assert route is not None
    assert (route.name, route.model, route.provider) == (
        "other/mock-gpt-large",
        "mock-gpt-large",
        "other",
    )
    assert route.exists
    assert [(d.provider, d.model, d.priced) for d in route.deployments] == [
        ("other", "mock-gpt-large", True)
    ]
    assert (route.fallbacks, route.fallbacks_from) == ([], "none")


def test_a_model_the_gateway_does_not_have_is_flagged() -> None:
    route = simulate(rules(), body(model="nope"), catalog=CATALOG).route
    assert route is not None
    assert not route.exists
    assert route.deployments == []


def test_a_sticky_split_sends_one_end_user_to_the_same_side() -> None:
    ruleset = rules(
        rule(
            "ab",
            {},
            {
                "route": {
                    "targets": [{"model": "small", "weight": 50}, {"model": "big", "weight": 50}],
                    "sticky": True,
                }
            },
        )
    )
    for user in ("alice", "bob", "carol", "dave"):
        point = zlib.crc32(f"ab\x00{user}".encode()) / 0x1_0000_0000
        expected = "small" if point < 0.5 else "big"
        for _ in range(3):
            route = simulate(ruleset, body(user=user), catalog=CATALOG).route
            assert route is not None
            assert route.name == expected
            assert route.split is not None
            assert [(t.model, t.weight) for t in route.split] == [("small", 50), ("big", 50)]
            assert "sticky" in (route.reason or "")


def test_embeddings_have_no_prompt_and_no_message_features() -> None:
    ruleset = rules(
        rule("chatty", {"message_count": {"exists": True}}, {"tag": ["chat"]}),
        rule("no-prompt", {"prompt": {"exists": False}}, {"tag": ["no-prompt"]}, priority=200),
    )
    result = simulate(ruleset, {"model": "embed", "input": "hello"}, operation="embeddings")
    assert [m.rule_id for m in result.matched] == ["no-prompt"]


def test_a_request_without_a_model_or_operation_is_refused() -> None:
    with pytest.raises(ValueError):
        simulate(rules(), {"messages": []})
    with pytest.raises(ValueError):
        simulate(rules(), HELLO, operation="images")


def test_evidence_never_shows_header_or_prompt_values() -> None:
    ruleset = rules(
        rule(
            "secretive",
            {"all": [{"headers.x-team": {"regex": "^s"}}, {"prompt": {"contains": "hello"}}]},
            {"tag": ["t"]},
        )
    )
    result = simulate(ruleset, HELLO, headers={"x-team": "search-team-secret"})
    (match,) = result.matched
    assert "search-team-secret" not in " ".join(match.evidence)
    assert match.evidence == ['headers.x-team regex "^s"', 'prompt contains "hello"']


# --- candidate rule sets ------------------------------------------------------------------------


CURRENT = [
    rule("keep", {"tags": "a"}, {"tag": ["kept"]}, priority=10),
    rule("change-me", {"tags": "b"}, {"tag": ["old"]}, priority=20),
]


def current() -> RuleSet:
    return compile_rules(CURRENT, models=MODELS, providers=PROVIDERS)


def test_candidates_alone_replace_the_current_rules() -> None:
    ruleset = candidate_rules(
        current(),
        [rule("new", {}, {"tag": ["new"]})],
        models=MODELS,
        providers=PROVIDERS,
    )
    assert [r.rule_id for r in ruleset.rules] == ["new"]
    assert ruleset.rules[0].source == "candidate"


def test_merged_candidates_replace_rules_of_the_same_id_and_keep_the_others() -> None:
    ruleset = candidate_rules(
        current(),
        [
            rule("change-me", {"tags": "b"}, {"tag": ["new"]}, priority=20),
            rule("later", {"tags": "b"}, {"tag": ["later"]}, priority=20, **{"continue": True}),
        ],
        merge=True,
        models=MODELS,
        providers=PROVIDERS,
    )
    assert [(r.rule_id, r.source) for r in ruleset.rules] == [
        ("keep", "config"),
        ("change-me", "candidate"),
        ("later", "candidate"),
    ]
    assert simulate(ruleset, HELLO, tags=["b"]).tags == ["b", "new"]
    assert simulate(ruleset, HELLO, tags=["a"]).tags == ["a", "kept"]


def test_merged_candidates_come_after_current_rules_of_the_same_priority() -> None:
    ruleset = candidate_rules(
        current(),
        [rule("same-priority", {"tags": "a"}, {"tag": ["candidate"]}, priority=10)],
        merge=True,
        models=MODELS,
        providers=PROVIDERS,
    )
    assert [r.rule_id for r in ruleset.rules] == ["keep", "same-priority", "change-me"]
    assert simulate(ruleset, HELLO, tags=["a"]).tags == ["a", "kept"]


def test_invalid_candidates_report_every_problem_with_its_path() -> None:
    with pytest.raises(RuleError) as raised:
        candidate_rules(
            current(),
            [
                rule("ok", {}, {"tag": ["fine"]}),
                rule("bad", {"tagz": "x"}, {"route": "nonexistent"}),
                rule("ok", {}, {"tag": ["again"]}),
            ],
            merge=True,
            models=MODELS,
            providers=PROVIDERS,
        )
    problems = raised.value.problems
    assert any(p.startswith("rules[1].when.tagz: unknown field 'tagz'") for p in problems)
    assert any(
        p.startswith("rules[1].then.route.model: unknown model 'nonexistent'") for p in problems
    )
    assert any(p.startswith("rules[2].id: duplicate rule id 'ok'") for p in problems)


def test_shares_are_exact_fractions_of_the_weights() -> None:
    assert [str(s) for s in shares([90, 10])] == ["0.9", "0.1"]
    assert sum(shares([1, 1, 1])) == pytest.approx(1)
    assert shares([]) == []

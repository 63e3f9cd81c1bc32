"""Evaluation order, how matches combine, splits, parameter changes, and the context helpers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest

from rules.compiler import compile_rules
from rules.context import RequestContext, routing_features
from rules.engine import Evaluation, RuleSet, apply_parameters

SUNDAY_NIGHT_UTC = datetime(2024, 6, 2, 23, 30, tzinfo=UTC)


def context(**fields: Any) -> RequestContext:
    fields.setdefault("model", "gpt-4o")
    return RequestContext(**fields)


def tagging(rule_id: str, **fields: Any) -> dict[str, Any]:
    """A rule that always matches (unless given `when`) and tags the request with its id."""
    document: dict[str, Any] = {"id": rule_id, "then": {"tag": [rule_id]}}
    document.update(fields)
    return document


# --- order ------------------------------------------------------------------------------------


def test_lower_priority_runs_first_and_ties_keep_their_order() -> None:
    documents = [
        tagging("d"),
        tagging("b", priority=50, **{"continue": True}),
        tagging("a", priority=10, **{"continue": True}),
        tagging("c", priority=50, **{"continue": True}),
        tagging("z", priority=-5, **{"continue": True}),
    ]
    ruleset = compile_rules(documents)
    assert [r.rule_id for r in ruleset.rules] == ["z", "a", "b", "c", "d"]
    evaluation = ruleset.evaluate(context())
    assert evaluation.rule_ids == ["z", "a", "b", "c", "d"]
    assert evaluation.tags == ["z", "a", "b", "c", "d"]


def test_config_rules_run_before_database_rules_of_the_same_priority() -> None:
    documents = [
        tagging("db-first", priority=10, **{"continue": True}),
        tagging("config", priority=10, **{"continue": True}),
        tagging("db-urgent", priority=5, **{"continue": True}),
        tagging("db-second", priority=10, **{"continue": True}),
    ]
    ruleset = compile_rules(documents, sources=["database", "config", "database", "database"])
    evaluation = ruleset.evaluate(context())
    assert evaluation.rule_ids == ["db-urgent", "config", "db-first", "db-second"]
    assert [m.source for m in evaluation.matched] == ["database", "config", "database", "database"]


def test_rule_set_built_from_rules_of_two_compilations() -> None:
    config = compile_rules([tagging("c", priority=20, **{"continue": True})], source="config")
    database = compile_rules(
        [
            tagging("d1", priority=20, **{"continue": True}),
            tagging("d0", priority=1, **{"continue": True}),
        ],
        source="database",
    )
    merged = RuleSet([*database.rules, *config.rules])
    assert merged.evaluate(context()).rule_ids == ["d0", "c", "d1"]


def test_first_match_stops() -> None:
    ruleset = compile_rules(
        [
            tagging("miss", when={"model": "o1"}),
            tagging("first"),
            tagging("second"),
        ]
    )
    evaluation = ruleset.evaluate(context())
    assert evaluation.rule_ids == ["first"]
    assert evaluation.evaluated == 2
    assert evaluation.tags == ["first"]


def test_continue_goes_on_to_later_rules() -> None:
    ruleset = compile_rules(
        [
            tagging("first", **{"continue": True}),
            tagging("miss", when={"model": "o1"}),
            tagging("second"),
            tagging("third"),
        ]
    )
    evaluation = ruleset.evaluate(context())
    assert evaluation.rule_ids == ["first", "second"]
    assert evaluation.evaluated == 3


def test_deny_stops_even_with_continue() -> None:
    ruleset = compile_rules(
        [
            tagging("before", **{"continue": True}),
            {
                "id": "block",
                "continue": True,
                "then": {"deny": {"status": 429, "message": "slow down"}, "tag": ["blocked"]},
            },
            tagging("after", **{"continue": True}),
        ]
    )
    evaluation = ruleset.evaluate(context())
    assert evaluation.rule_ids == ["before", "block"]
    assert evaluation.evaluated == 2
    assert evaluation.deny is not None
    assert (evaluation.deny.status, evaluation.deny.message) == (429, "slow down")
    assert evaluation.deny_rule == "block"
    assert evaluation.tags == ["before", "blocked"]


def test_disabled_rules_are_skipped_and_not_counted() -> None:
    ruleset = compile_rules(
        [
            tagging("off", enabled=False),
            tagging("miss", when={"model": "o1"}),
            tagging("off-too", enabled=False, priority=200),
            tagging("hit"),
        ]
    )
    assert len(ruleset) == 4
    assert ruleset.active == 2
    evaluation = ruleset.evaluate(context())
    assert evaluation.rule_ids == ["hit"]
    assert evaluation.evaluated == 2


def test_no_match_leaves_everything_unset() -> None:
    ruleset = compile_rules(
        [tagging("a", when={"model": "o1"}), tagging("b", when={"stream": True})]
    )
    evaluation = ruleset.evaluate(context())
    assert evaluation.matched == []
    assert evaluation.evaluated == 2
    assert evaluation.route is None and evaluation.deny is None and evaluation.cache is None
    assert evaluation.effects() == {}
    assert evaluation.elapsed_us >= 0


def test_empty_rule_set() -> None:
    evaluation = RuleSet().evaluate(context())
    assert (evaluation.matched, evaluation.evaluated) == ([], 0)


def test_a_rule_without_actions_stops_later_rules() -> None:
    ruleset = compile_rules([{"id": "exempt", "when": {"user": "ops"}, "then": {}}, tagging("tag")])
    assert ruleset.evaluate(context(user="ops")).rule_ids == ["exempt"]
    assert ruleset.evaluate(context(user="ops")).tags == []
    assert ruleset.evaluate(context(user="dev")).rule_ids == ["tag"]


# --- combination ------------------------------------------------------------------------------

COMBINED = [
    {
        "id": "first",
        "continue": True,
        "then": {
            "route": "gpt-4o",
            "fallbacks": ["gpt-4o-mini"],
            "set": {"temperature": 0, "top_p": 1},
            "cap": {"max_tokens": 512, "n": 2},
            "tag": ["a", "shared"],
            "cache": "off",
            "guardrails": ["pii"],
            "budget": "first-bucket",
        },
    },
    {
        "id": "second",
        "continue": True,
        "then": {
            "route": {"provider": "anthropic", "model": "claude-3-5-haiku"},
            "fallbacks": ["claude-sonnet"],
            "set": {"temperature": 1, "seed": 7},
            "cap": {"max_tokens": 256, "presence_penalty": 1.5},
            "tag": ["shared", "b"],
            "cache": {"mode": "on", "ttl": 60},
            "guardrails": ["toxicity"],
            "budget": "second-bucket",
        },
    },
    {"id": "third", "then": {"cap": {"max_tokens": 1024, "n": 1}}},
]


def test_earlier_rules_win_caps_take_the_minimum_and_tags_add_up() -> None:
    evaluation = compile_rules(COMBINED).evaluate(context())
    assert evaluation.rule_ids == ["first", "second", "third"]
    assert evaluation.route is not None and evaluation.route.name == "gpt-4o"
    assert evaluation.route_rule == "first"
    assert evaluation.route_reason == "rule 'first' routes to gpt-4o"
    assert evaluation.fallbacks == ("gpt-4o-mini",)
    assert evaluation.set == {"temperature": 0, "top_p": 1, "seed": 7}
    assert evaluation.cap == {"max_tokens": 256, "n": 1, "presence_penalty": 1.5}
    assert evaluation.tags == ["a", "shared", "b"]
    assert evaluation.cache is not None and (evaluation.cache.mode, evaluation.cache.ttl) == (
        "off",
        None,
    )
    assert evaluation.guardrails == ("pii",)
    assert evaluation.budget == "first-bucket"
    assert evaluation.deny is None


def test_a_later_rule_fills_what_earlier_rules_left_unset() -> None:
    documents = [
        {"id": "tags-only", "continue": True, "then": {"tag": "t"}},
        COMBINED[1],
    ]
    evaluation = compile_rules(documents).evaluate(context())
    assert evaluation.route is not None and evaluation.route.name == "anthropic/claude-3-5-haiku"
    assert evaluation.route_rule == "second"
    assert evaluation.fallbacks == ("claude-sonnet",)
    assert evaluation.budget == "second-bucket"
    assert evaluation.cache is not None and evaluation.cache.ttl == 60
    assert evaluation.tags == ["t", "shared", "b"]


def test_effects_of_a_combination() -> None:
    effects = compile_rules(COMBINED).evaluate(context()).effects()
    assert effects == {
        "route": "gpt-4o",
        "fallbacks": ["gpt-4o-mini"],
        "guardrails": ["pii"],
        "budget": "first-bucket",
        "set": {"temperature": 0, "top_p": 1, "seed": 7},
        "cap": {"max_tokens": 256, "n": 1, "presence_penalty": 1.5},
        "tags": ["a", "shared", "b"],
        "cache": {"mode": "off", "ttl": None},
    }
    assert msgspec.json.decode(msgspec.json.encode(effects)) == effects


def test_effects_of_a_deny() -> None:
    ruleset = compile_rules([{"id": "no", "then": {"deny": "closed", "tag": "denied"}}])
    assert ruleset.evaluate(context()).effects() == {
        "deny": {"status": 403, "message": "closed", "code": "request_denied"},
        "tags": ["denied"],
    }


def test_effects_keep_an_empty_fallback_list() -> None:
    ruleset = compile_rules([{"id": "no-fallbacks", "then": {"fallbacks": []}}])
    evaluation = ruleset.evaluate(context())
    assert evaluation.fallbacks == ()
    assert evaluation.effects() == {"fallbacks": []}


def test_matches_record_rule_evidence_and_actions() -> None:
    ruleset = compile_rules(
        [
            {
                "id": "big",
                "name": "Big prompts",
                "when": {"estimated_input_tokens": {"gt": 1000}},
                "then": {"route": "gpt-4o-mini", "cache": "off"},
            }
        ],
        source="database",
    )
    (match,) = ruleset.evaluate(context(estimated_input_tokens=5000)).matched
    assert (match.rule_id, match.name, match.source) == ("big", "Big prompts", "database")
    assert match.evidence == ["estimated_input_tokens gt 1000 (value 5000)"]
    assert set(match.actions) == {"route", "cache"}
    assert match.actions["route"][0]["model"] == "gpt-4o-mini"
    assert match.actions["cache"]["mode"] == "off"


def test_match_actions_keep_an_empty_fallback_or_guardrail_list() -> None:
    ruleset = compile_rules([{"id": "bare", "then": {"fallbacks": [], "guardrails": []}}])
    (match,) = ruleset.evaluate(context()).matched
    assert set(match.actions) == {"fallbacks", "guardrails"}


# --- weighted splits --------------------------------------------------------------------------


def split(weights: Mapping[str, float], *, sticky: bool, rule_id: str = "split") -> RuleSet:
    targets = [{"model": model, "weight": weight} for model, weight in weights.items()]
    return compile_rules(
        [{"id": rule_id, "then": {"route": {"targets": targets, "sticky": sticky}}}]
    )


def chosen(ruleset: RuleSet, ctx: RequestContext) -> str:
    route = ruleset.evaluate(ctx).route
    assert route is not None
    return route.model


def test_sticky_split_sends_a_user_to_the_same_target_across_rule_sets() -> None:
    weights = {"big": 50, "small": 50}
    first, second = split(weights, sticky=True), split(weights, sticky=True)
    seen = set()
    for index in range(200):
        ctx = context(user=f"user-{index}")
        target = chosen(first, ctx)
        assert chosen(first, ctx) == target
        assert chosen(second, context(user=f"user-{index}")) == target
        seen.add(target)
    assert seen == {"big", "small"}


@pytest.mark.parametrize(
    ("weights", "user_format"),
    [
        ({"big": 90, "small": 10}, "user-{}"),
        ({"big": 90, "small": 10}, "{}@example.com"),
        ({"big": 0.9, "small": 0.1}, "u{:06d}"),
        ({"a": 50, "b": 30, "c": 20}, "user-{}"),
    ],
)
def test_sticky_split_shares_follow_the_weights(
    weights: dict[str, float], user_format: str
) -> None:
    ruleset = split(weights, sticky=True)
    users = 2000
    counts = Counter(chosen(ruleset, context(user=user_format.format(i))) for i in range(users))
    total = sum(weights.values())
    for model, weight in weights.items():
        share = 100 * counts[model] / users
        assert abs(share - 100 * weight / total) <= 4, (model, share)


def test_random_split_shares_follow_the_weights() -> None:
    ruleset = split({"big": 70, "small": 30}, sticky=False)
    draws = 10_000
    counts = Counter(chosen(ruleset, context(user="same-user")) for _ in range(draws))
    assert abs(100 * counts["big"] / draws - 70) <= 3
    assert counts["big"] + counts["small"] == draws


def test_sticky_split_without_a_user_is_random() -> None:
    ruleset = split({"big": 50, "small": 50}, sticky=True)
    counts = Counter(chosen(ruleset, context(user=None)) for _ in range(400))
    assert set(counts) == {"big", "small"}
    evaluation = ruleset.evaluate(context())
    assert evaluation.route_reason is not None and "(random)" in evaluation.route_reason


def test_split_reason_names_the_split_and_the_choice() -> None:
    ruleset = split({"big": 90, "small": 10}, sticky=True)
    evaluation = ruleset.evaluate(context(user="alice"))
    assert evaluation.route is not None
    assert evaluation.route_reason == (
        f"rule 'split' split big=90:small=10 (sticky for this end user) chose {evaluation.route.name}"
    )


def test_provider_targets_in_a_split() -> None:
    ruleset = compile_rules(
        [
            {
                "id": "mixed",
                "then": {
                    "route": {
                        "targets": [
                            {"provider": "openai", "model": "gpt-4o", "weight": 1},
                            {"provider": "anthropic", "model": "claude", "weight": 1},
                        ],
                        "sticky": True,
                    }
                },
            }
        ]
    )
    names = set()
    for index in range(100):
        route = ruleset.evaluate(context(user=f"u{index}")).route
        assert route is not None
        names.add(route.name)
    assert names == {"openai/gpt-4o", "anthropic/claude"}


# --- apply_parameters -------------------------------------------------------------------------


def evaluation_with(**actions: Any) -> Evaluation:
    return compile_rules([{"id": "p", "then": actions}]).evaluate(context())


def test_set_overwrites_and_reports_changes() -> None:
    payload: dict[str, Any] = {"model": "gpt-4o", "temperature": 0.9, "seed": 7, "extra": {"x": 1}}
    changes = apply_parameters(
        payload, evaluation_with(set={"temperature": 0, "seed": 7, "top_p": 0.5})
    )
    assert payload == {
        "model": "gpt-4o",
        "temperature": 0,
        "seed": 7,
        "extra": {"x": 1},
        "top_p": 0.5,
    }
    assert changes == {
        "temperature": {"from": 0.9, "to": 0},
        "top_p": {"from": None, "to": 0.5},
    }


def test_cap_lowers_and_leaves_lower_values_alone() -> None:
    payload: dict[str, Any] = {"max_tokens": 2000, "n": 1}
    changes = apply_parameters(payload, evaluation_with(cap={"max_tokens": 512, "n": 3}))
    assert payload == {"max_tokens": 512, "n": 1}
    assert changes == {"max_tokens": {"from": 2000, "to": 512}}


def test_cap_sets_an_absent_parameter() -> None:
    payload: dict[str, Any] = {"messages": []}
    changes = apply_parameters(
        payload, evaluation_with(cap={"max_tokens": 512.0, "temperature": 0.5})
    )
    assert payload == {"messages": [], "max_tokens": 512, "temperature": 0.5}
    assert isinstance(payload["max_tokens"], int)
    assert changes == {
        "max_tokens": {"from": None, "to": 512},
        "temperature": {"from": None, "to": 0.5},
    }


def test_cap_replaces_a_value_that_is_not_a_number() -> None:
    payload: dict[str, Any] = {"max_tokens": "lots", "n": True}
    apply_parameters(payload, evaluation_with(cap={"max_tokens": 100, "n": 1}))
    assert payload == {"max_tokens": 100, "n": 1}


def test_cap_on_max_tokens_goes_to_max_completion_tokens_when_only_that_is_sent() -> None:
    payload: dict[str, Any] = {"max_completion_tokens": 4096}
    changes = apply_parameters(payload, evaluation_with(cap={"max_tokens": 512}))
    assert payload == {"max_completion_tokens": 512}
    assert changes == {"max_completion_tokens": {"from": 4096, "to": 512}}

    lower: dict[str, Any] = {"max_completion_tokens": 100}
    assert apply_parameters(lower, evaluation_with(cap={"max_tokens": 512})) == {}
    assert lower == {"max_completion_tokens": 100}


def test_cap_on_max_tokens_stays_there_when_max_tokens_is_sent() -> None:
    payload: dict[str, Any] = {"max_tokens": 4096, "max_completion_tokens": 4096}
    apply_parameters(payload, evaluation_with(cap={"max_tokens": 512}))
    assert payload["max_tokens"] == 512


def test_no_rules_change_nothing() -> None:
    payload: dict[str, Any] = {"temperature": 1}
    assert apply_parameters(payload, Evaluation()) == {}
    assert payload == {"temperature": 1}


def test_combined_set_and_cap_apply_together() -> None:
    evaluation = compile_rules(COMBINED).evaluate(context())
    payload: dict[str, Any] = {"temperature": 0.3, "max_tokens": 300, "n": 4}
    changes = apply_parameters(payload, evaluation)
    assert payload == {
        "temperature": 0,
        "top_p": 1,
        "seed": 7,
        "max_tokens": 256,
        "n": 1,
        "presence_penalty": 1.5,
    }
    assert set(changes) == set(payload)


# --- context helpers --------------------------------------------------------------------------

FULL_PAYLOAD: dict[str, Any] = {
    "model": "gpt-4o",
    "messages": [
        {"role": "system", "content": "be brief"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ],
        },
    ],
    "tools": [{"type": "function", "function": {"name": "f"}}],
    "response_format": {"type": "json_object"},
    "max_tokens": 100,
    "max_completion_tokens": 80,
    "temperature": 0.2,
    "n": 2,
    "stream": True,
    "user": "end-user-1",
    "unknown_parameter": "kept out",
}


def test_routing_features_of_a_full_request() -> None:
    assert routing_features(FULL_PAYLOAD, "gpt-4o", 4000) == {
        "model": "gpt-4o",
        "stream": True,
        "estimated_input_tokens": 1000,
        "user": "end-user-1",
        "message_count": 2,
        "has_images": True,
        "has_tools": True,
        "has_response_format": True,
        "max_tokens": 100,
        "max_completion_tokens": 80,
        "temperature": 0.2,
        "n": 2,
    }


def test_routing_features_of_a_minimal_request() -> None:
    payload = {
        "messages": [{"role": "user", "content": "hi"}],
        "stream": "true",
        "user": 42,
        "tools": [],
    }
    assert routing_features(payload, "alias", 3) == {
        "model": "alias",
        "stream": False,
        "estimated_input_tokens": 1,
        "user": None,
        "message_count": 1,
        "has_images": False,
        "has_tools": False,
        "has_response_format": False,
    }
    assert routing_features({"input": "x"}, "embed", 40) == {
        "model": "embed",
        "stream": False,
        "estimated_input_tokens": 10,
        "user": None,
    }


def test_context_from_features() -> None:
    features = routing_features(FULL_PAYLOAD, "gpt-4o", 4000)
    ctx = RequestContext.from_features(
        features,
        tags=["t"],
        metadata={"tier": "gold"},
        headers={"x-team": "search"},
        key="key-1",
        key_name="ci",
        workspace="ws-1",
        now=SUNDAY_NIGHT_UTC.timestamp(),
        budget={"key_percent": 50.0},
        messages=FULL_PAYLOAD["messages"],
    )
    assert ctx.model == "gpt-4o"
    assert (ctx.estimated_input_tokens, ctx.message_count) == (1000, 2)
    assert (ctx.has_tools, ctx.has_images, ctx.has_response_format, ctx.stream) == (
        True,
        True,
        True,
        True,
    )
    assert ctx.max_tokens == 80  # max_completion_tokens wins
    assert ctx.temperature == 0.2
    assert ctx.user == "end-user-1"
    assert (ctx.key, ctx.key_name, ctx.workspace) == ("key-1", "ci", "ws-1")
    assert list(ctx.tags) == ["t"] and ctx.metadata == {"tier": "gold"}
    assert ctx.headers == {"x-team": "search"}
    assert ctx.budget == {"key_percent": 50.0}
    assert ctx.prompt == "what is this?"


def test_context_from_features_normalises_numbers() -> None:
    ctx = RequestContext.from_features({"max_tokens": 64, "temperature": 1})
    assert ctx.model == ""
    assert ctx.max_tokens == 64
    assert ctx.temperature == 1.0 and isinstance(ctx.temperature, float)
    odd = RequestContext.from_features({"max_tokens": "64", "temperature": True})
    assert (odd.max_tokens, odd.temperature) == (None, None)
    assert (odd.has_tools, odd.stream, odd.user, odd.prompt) == (False, False, None, None)


def trace_row(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "trace_id": "t" * 32,
        "workspace_id": "ws-1",
        "api_key_id": "key-1",
        "end_user": "end-user-1",
        "requested_model": "gpt-4o",
        "started_at": SUNDAY_NIGHT_UTC.replace(tzinfo=None),
        "tags": ["premium"],
        "metadata": {"tier": "gold"},
        "features": msgspec.json.decode(
            msgspec.json.encode(routing_features(FULL_PAYLOAD, "gpt-4o", 4000))
        ),
    }
    row.update(changes)
    return row


def test_context_from_a_trace_row() -> None:
    ctx = RequestContext.from_trace(trace_row())
    assert ctx.model == "gpt-4o"
    assert ctx.user == "end-user-1"
    assert (ctx.key, ctx.workspace, ctx.key_name) == ("key-1", "ws-1", None)
    assert list(ctx.tags) == ["premium"] and ctx.metadata == {"tier": "gold"}
    assert ctx.headers == {}
    assert ctx.now == SUNDAY_NIGHT_UTC.timestamp()
    assert ctx.prompt is None
    assert RequestContext.from_trace(trace_row(), prompt="hello").prompt == "hello"


@pytest.mark.parametrize(
    "started_at",
    [
        SUNDAY_NIGHT_UTC.replace(tzinfo=None),
        SUNDAY_NIGHT_UTC,
        SUNDAY_NIGHT_UTC.astimezone(timezone(timedelta(hours=9))),
        SUNDAY_NIGHT_UTC.timestamp(),
    ],
)
def test_trace_start_time_naive_is_utc_and_aware_is_kept(started_at: Any) -> None:
    ctx = RequestContext.from_trace(trace_row(started_at=started_at))
    assert ctx.now == SUNDAY_NIGHT_UTC.timestamp()
    ruleset = compile_rules(
        [
            {
                "id": "utc",
                "continue": True,
                "when": {"time.weekday": "sun", "time.hour": 23},
                "then": {"tag": "u"},
            },
            {
                "id": "tokyo",
                "timezone": "Asia/Tokyo",
                "when": {"time.time": "08:30"},
                "then": {"tag": "t"},
            },
        ]
    )
    assert ruleset.evaluate(ctx).rule_ids == ["utc", "tokyo"]


def test_trace_row_with_little_recorded() -> None:
    row = {
        "requested_model": "gpt-4o-mini",
        "features": None,
        "tags": None,
        "metadata": None,
        "started_at": None,
    }
    ctx = RequestContext.from_trace(row)
    assert ctx.model == "gpt-4o-mini"
    assert (list(ctx.tags), ctx.metadata, ctx.now) == ([], {}, None)
    assert ctx.estimated_input_tokens is None


def test_replayed_trace_matches_like_the_live_request() -> None:
    ruleset = compile_rules(
        [
            {
                "id": "vision",
                "continue": True,
                "when": {"has_images": True, "max_tokens": {"lte": 80}, "tags": "premium"},
                "then": {"tag": "v"},
            },
            {
                "id": "gold",
                "when": {"metadata.tier": "gold", "user": "end-user-1", "key": "key-1"},
                "then": {"tag": "g"},
            },
        ]
    )
    live = RequestContext.from_features(
        routing_features(FULL_PAYLOAD, "gpt-4o", 4000),
        tags=["premium"],
        metadata={"tier": "gold"},
        key="key-1",
        workspace="ws-1",
        now=SUNDAY_NIGHT_UTC.timestamp(),
    )
    replayed = RequestContext.from_trace(trace_row())
    assert ruleset.evaluate(live).effects() == ruleset.evaluate(replayed).effects()
    assert ruleset.evaluate(replayed).rule_ids == ["vision", "gold"]

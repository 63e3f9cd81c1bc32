"""The compiler: invalid rules rejected with their paths, normal form, YAML documents."""

from __future__ import annotations

import math
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
import yaml

from rules.compiler import RuleError, check_rules, compile_rules, normalise_rule
from rules.conditions import MAX_DEPTH
from rules.context import RequestContext
from rules.engine import RuleSet

MODELS = ("gpt-4o", "gpt-4o-mini", "claude-sonnet")
PROVIDERS = ("openai", "anthropic")


def problems_of(
    documents: Any,
    *,
    models: Collection[str] | None = None,
    providers: Collection[str] | None = None,
) -> list[str]:
    with pytest.raises(RuleError) as raised:
        compile_rules(documents, models=models, providers=providers)
    assert raised.value.problems, "a RuleError carries its problems"
    return raised.value.problems


def only_problem(document: dict[str, Any], **options: Any) -> str:
    problems = problems_of([document], **options)
    assert len(problems) == 1, problems
    return problems[0]


def rule(when: Any = None, then: Any = None, **fields: Any) -> dict[str, Any]:
    document: dict[str, Any] = {"id": "r1", "then": then if then is not None else {"tag": "x"}}
    if when is not None:
        document["when"] = when
    document.update(fields)
    return document


# --- conditions -------------------------------------------------------------------------------


def test_unknown_field_has_path_and_did_you_mean() -> None:
    problem = only_problem(rule({"all": [{"model": "x"}, {"tagz": {"contains": "premium"}}]}))
    assert problem.startswith("rules[0].when.all[1].tagz: unknown field 'tagz'")
    assert "(did you mean 'tags'?)" in problem


def test_unknown_field_suggests_a_close_field() -> None:
    problem = only_problem(rule({"estimated_tokens": {"lt": 10}}))
    assert problem.startswith("rules[0].when.estimated_tokens: unknown field")
    assert "did you mean 'estimated_input_tokens'" in problem


@pytest.mark.parametrize("name", ["metadata.", "headers.", "headers.a.b", "metadata.a..b", "time"])
def test_malformed_prefixed_fields_are_unknown(name: str) -> None:
    problem = only_problem(rule({name: "x"}))
    assert problem.startswith(f"rules[0].when.{name}: unknown field '{name}'")


def test_unknown_operator() -> None:
    problem = only_problem(rule({"model": {"eqq": "gpt-4o"}}))
    assert problem.startswith("rules[0].when.model.eqq: unknown operator 'eqq'")
    assert "did you mean 'eq'" in problem
    problem = only_problem(rule({"user": {"equals": "x"}}))
    assert problem.startswith("rules[0].when.user.equals: unknown operator 'equals'")


def test_bad_regex() -> None:
    problem = only_problem(rule({"prompt": {"regex": "(unclosed"}}))
    assert problem.startswith("rules[0].when.prompt.regex: invalid regular expression")


def test_regex_must_be_a_string_of_bounded_length() -> None:
    assert only_problem(rule({"model": {"regex": 5}})).startswith("rules[0].when.model.regex:")
    assert "longer than" in only_problem(rule({"model": {"regex": "a" * 1001}}))


@pytest.mark.parametrize(
    ("when", "path", "text"),
    [
        ({"estimated_input_tokens": {"lt": "4000"}}, "when.estimated_input_tokens.lt", "number"),
        ({"max_tokens": "512"}, "when.max_tokens", "number"),
        ({"temperature": {"in": [0, "1"]}}, "when.temperature.in", "value [1]"),
        ({"budget.key_percent": {"gte": True}}, "when.budget.key_percent.gte", "number"),
        ({"stream": 1}, "when.stream", "true or false"),
        ({"has_tools": {"eq": 0}}, "when.has_tools.eq", "true or false"),
        ({"has_images": {"ne": "yes"}}, "when.has_images.ne", "true or false"),
        ({"model": {"eq": 4}}, "when.model.eq", "string"),
        ({"tags": {"contains": 1}}, "when.tags.contains", "string"),
        ({"tags": {"in": ["a", 2]}}, "when.tags.in", "value [1]"),
        ({"time.weekday": "monday"}, "when.time.weekday", "weekdays are mon"),
        ({"time.weekday": {"in": ["sat", "Sun"]}}, "when.time.weekday.in", "weekdays are mon"),
        ({"time.time": {"gte": "9:00"}}, "when.time.time.gte", "HH:MM"),
        ({"time.time": "24:00"}, "when.time.time", "HH:MM"),
        ({"time.time": {"lt": "09:60"}}, "when.time.time.lt", "HH:MM"),
        ({"time.hour": "8"}, "when.time.hour", "number"),
        ({"metadata.x": {"eq": [1]}}, "when.metadata.x.eq", "got a list"),
        ({"metadata.x": {"gt": True}}, "when.metadata.x.gt", "number or a string"),
        ({"model": {"exists": "yes"}}, "when.model.exists", "true or false"),
    ],
)
def test_type_mismatch(when: dict[str, Any], path: str, text: str) -> None:
    problem = only_problem(rule(when))
    assert problem.startswith(f"rules[0].{path}: "), problem
    assert text in problem


@pytest.mark.parametrize(
    ("when", "path"),
    [
        ({"stream": {"gt": True}}, "when.stream.gt"),
        ({"has_tools": {"in": [True]}}, "when.has_tools.in"),
        ({"tags": {"eq": "x"}}, "when.tags.eq"),
        ({"tags": {"gt": "x"}}, "when.tags.gt"),
        ({"estimated_input_tokens": {"regex": "1"}}, "when.estimated_input_tokens.regex"),
        ({"max_tokens": {"contains": 1}}, "when.max_tokens.contains"),
    ],
)
def test_operator_not_applying_to_the_field_kind(when: dict[str, Any], path: str) -> None:
    problem = only_problem(rule(when))
    assert problem.startswith(f"rules[0].{path}: "), problem
    assert "does not apply" in problem


@pytest.mark.parametrize("key", ["all", "any"])
def test_empty_all_or_any(key: str) -> None:
    assert (
        only_problem(rule({key: []}))
        == f"rules[0].when.{key}: '{key}' takes a non-empty list of conditions"
    )
    assert only_problem(rule({key: {"model": "x"}})).startswith(f"rules[0].when.{key}:")


@pytest.mark.parametrize("op", ["in", "nin"])
def test_in_takes_a_non_empty_list(op: str) -> None:
    assert (
        only_problem(rule({"model": {op: "gpt-4o"}}))
        == f"rules[0].when.model.{op}: '{op}' takes a non-empty list"
    )
    assert only_problem(rule({"model": {op: []}})).startswith(f"rules[0].when.model.{op}:")


def test_field_without_operators_and_non_mapping_conditions() -> None:
    assert only_problem(rule({"model": {}})).startswith("rules[0].when.model: ")
    assert only_problem(rule(["model"])).startswith("rules[0].when: a condition is a mapping")
    assert only_problem(rule({"not": "x"})).startswith("rules[0].when.not: ")
    assert only_problem(rule({"all": [{"model": "x"}, "y"]})).startswith("rules[0].when.all[1]: ")


@pytest.mark.parametrize(
    "header",
    ["authorization", "Authorization", "x-api-key", "api-key", "cookie", "proxy-authorization"],
)
def test_credential_headers_cannot_be_matched(header: str) -> None:
    problem = only_problem(rule({"headers." + header: {"exists": True}}))
    assert problem.startswith(f"rules[0].when.headers.{header}: credential headers")


def test_nested_paths_are_reported_in_full() -> None:
    when = {"any": [{"model": "x"}, {"not": {"all": [{"user": "u"}, {"stream": "yes"}]}}]}
    assert only_problem(rule(when)).startswith("rules[0].when.any[1].not.all[1].stream: ")


def nested_condition(depth: int, combinator: str = "not") -> dict[str, Any]:
    """`depth` levels of conditions: `depth - 1` combinators around a leaf."""
    condition: dict[str, Any] = {"model": "gpt-4o"}
    for level in range(depth - 1):
        kind = ("not", "all", "any")[level % 3] if combinator == "mixed" else combinator
        condition = {"not": condition} if kind == "not" else {kind: [condition, {"stream": True}]}
    return condition


@pytest.mark.parametrize("combinator", ["not", "all", "any", "mixed"])
def test_conditions_nest_at_most_max_depth_levels(combinator: str) -> None:
    deepest = compile_rules([rule(nested_condition(MAX_DEPTH, combinator))])
    context = RequestContext(model="gpt-4o", stream=True)
    assert deepest.evaluate(context).evaluated == 1  # compiled, generated and run
    problem = only_problem(rule(nested_condition(MAX_DEPTH + 1, combinator)))
    path, _, message = problem.partition(": ")
    assert message == f"conditions nest deeper than {MAX_DEPTH} levels of 'all', 'any' and 'not'"
    assert path.startswith("rules[0].when.")
    assert path.count(".") == MAX_DEPTH + 1  # the path down to the level that is too deep


@pytest.mark.parametrize("depth", [500, 10_000])
def test_a_rule_nested_hundreds_deep_is_refused_not_a_recursion_error(depth: int) -> None:
    problems = check_rules([rule(nested_condition(depth)), rule(id="r2", then=None)])
    assert problems == [
        "rules[0].when"
        + ".not" * MAX_DEPTH
        + f": conditions nest deeper than {MAX_DEPTH} levels of 'all', 'any' and 'not'"
    ]


# --- rule fields ------------------------------------------------------------------------------


@pytest.mark.parametrize("bad_id", [None, "", "Premium", "has space", "-lead", "x" * 129, 7])
def test_missing_or_invalid_id(bad_id: Any) -> None:
    document = rule()
    if bad_id is None:
        del document["id"]
    else:
        document["id"] = bad_id
    assert only_problem(document).startswith("rules[0].id: ")


def test_valid_ids() -> None:
    for rule_id in ("a", "premium-to-gpt4o", "v1.2_x", "0" * 128):
        compile_rules([rule(id=rule_id)])


def test_duplicate_ids_name_both_places() -> None:
    problems = problems_of([rule(id="a"), rule(id="b"), rule(id="a")])
    assert problems == ["rules[2].id: duplicate rule id 'a' (also at rules[0])"]


def test_unknown_rule_field_with_did_you_mean() -> None:
    problem = only_problem(rule(priorty=5))
    assert problem == "rules[0].priorty: unknown rule field (did you mean 'priority'?)"
    assert only_problem(rule(action={})).startswith("rules[0].action: unknown rule field")


@pytest.mark.parametrize("priority", ["high", True, 1.5, None, 10**7])
def test_bad_priority(priority: Any) -> None:
    assert only_problem(rule(priority=priority)).startswith("rules[0].priority: ")


@pytest.mark.parametrize("field", ["enabled", "continue"])
@pytest.mark.parametrize("value", ["yes", 1, 0, None])
def test_bad_flags(field: str, value: Any) -> None:
    assert only_problem(rule(**{field: value})).startswith(f"rules[0].{field}: true or false")


@pytest.mark.parametrize("name", ["", 5, "n" * 257])
def test_bad_name(name: Any) -> None:
    assert only_problem(rule(name=name)).startswith("rules[0].name: ")


def test_bad_description() -> None:
    assert only_problem(rule(description=["x"])).startswith("rules[0].description: ")


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", 5, "../etc/passwd"])
def test_bad_timezone(zone: Any) -> None:
    assert only_problem(rule(timezone=zone)).startswith("rules[0].timezone: ")


def test_missing_then() -> None:
    document = rule()
    del document["then"]
    assert only_problem(document).startswith("rules[0]: missing 'then'")


def test_documents_that_are_not_rules() -> None:
    assert problems_of({"id": "a"}) == ["rules: expected a list of rules"]
    assert problems_of("rules") == ["rules: expected a list of rules"]
    assert problems_of([rule(), "x"])[0].startswith("rules[1]: a rule is a mapping")


def test_custom_path_prefix() -> None:
    with pytest.raises(RuleError) as raised:
        compile_rules([rule({"tagz": "x"})], path="config.rules")
    assert raised.value.problems[0].startswith("config.rules[0].when.tagz: ")


# --- actions ----------------------------------------------------------------------------------


def test_unknown_action_with_did_you_mean() -> None:
    problem = only_problem(rule(then={"routes": "gpt-4o"}))
    assert problem.startswith(
        "rules[0].then.routes: unknown action 'routes' (did you mean 'route'?)"
    )


def test_then_must_be_a_mapping() -> None:
    assert only_problem(rule(then=["route"])).startswith("rules[0].then: ")


def test_route_to_unknown_model_or_provider() -> None:
    options = {"models": MODELS, "providers": PROVIDERS}
    problem = only_problem(rule(then={"route": "gpt-4"}), **options)
    assert problem == "rules[0].then.route.model: unknown model 'gpt-4' (did you mean 'gpt-4o'?)"
    problem = only_problem(rule(then={"route": {"provider": "opnai", "model": "x"}}), **options)
    assert (
        problem == "rules[0].then.route.provider: unknown provider 'opnai' (did you mean 'openai'?)"
    )
    split = {"targets": [{"model": "gpt-4o", "weight": 1}, {"model": "llama", "weight": 1}]}
    problem = only_problem(rule(then={"route": split}), **options)
    assert problem.startswith("rules[0].then.route.targets[1].model: unknown model 'llama'")
    problem = only_problem(rule(then={"fallbacks": ["gpt-4o", "gpt4o-mini"]}), **options)
    assert problem.startswith("rules[0].then.fallbacks[1]: unknown model 'gpt4o-mini'")


def test_routes_are_accepted_when_models_are_not_given() -> None:
    compile_rules([rule(then={"route": "anything", "fallbacks": ["else"]})])
    compile_rules([rule(then={"route": {"provider": "any", "model": "x"}})])


def test_a_provider_route_names_a_provider_model_not_a_public_model() -> None:
    document = rule(then={"route": {"provider": "openai", "model": "gpt-4.1-nano"}})
    ruleset = compile_rules([document], models=MODELS, providers=PROVIDERS)
    assert ruleset.rules[0].actions.route[0].name == "openai/gpt-4.1-nano"


@pytest.mark.parametrize("weight", [0, -5, "50", True, None])
def test_bad_weights(weight: Any) -> None:
    split = {"targets": [{"model": "a", "weight": 50}, {"model": "b", "weight": weight}]}
    assert only_problem(rule(then={"route": split})).startswith(
        "rules[0].then.route.targets[1].weight: a positive number"
    )


@pytest.mark.parametrize(
    ("route", "path"),
    [
        ({"targets": []}, "then.route.targets"),
        ({"targets": "a"}, "then.route.targets"),
        ({"targets": [{"model": "a"}], "sticky": "yes"}, "then.route.sticky"),
        ({"targets": [{"model": "a"}], "stiky": True}, "then.route.stiky"),
        ({"targets": [{"weight": 1}]}, "then.route.targets[0].model"),
        ({"targets": [{"model": "a", "wieght": 1}]}, "then.route.targets[0].wieght"),
        ({"targets": [{"model": f"m{i}"} for i in range(21)]}, "then.route.targets"),
        (5, "then.route"),
        ({"model": ""}, "then.route.model"),
    ],
)
def test_bad_route_shapes(route: Any, path: str) -> None:
    assert only_problem(rule(then={"route": route})).startswith(f"rules[0].{path}: ")


@pytest.mark.parametrize("parameter", ["model", "messages", "stream", "input"])
@pytest.mark.parametrize("action", ["set", "cap"])
def test_protected_parameters(action: str, parameter: str) -> None:
    problem = only_problem(rule(then={action: {parameter: 1}}))
    assert problem.startswith(
        f"rules[0].then.{action}.{parameter}: '{parameter}' cannot be changed"
    )


def test_set_model_points_to_route() -> None:
    assert "(use 'route')" in only_problem(rule(then={"set": {"model": "gpt-4o"}}))


@pytest.mark.parametrize("limit", [-1, -0.5, "512", True, None])
def test_bad_cap_values(limit: Any) -> None:
    problem = only_problem(rule(then={"cap": {"temperature": limit}}))
    assert problem.startswith(
        "rules[0].then.cap.temperature: 'cap' takes a finite non-negative number"
    )


@pytest.mark.parametrize("value", [-5000, -1, 0, -0.0, 0.5, True, "512", None, 2**31, 10**30])
@pytest.mark.parametrize("parameter", ["max_tokens", "max_completion_tokens", "n"])
@pytest.mark.parametrize("action", ["set", "cap"])
def test_counted_parameters_take_whole_numbers_in_range(
    action: str, parameter: str, value: Any
) -> None:
    """Rate limits and budgets are reserved from these: a rule may not make them negative."""
    most = 128 if parameter == "n" else 2**31 - 1
    problem = only_problem(rule(then={action: {parameter: value}}))
    assert problem.startswith(
        f"rules[0].then.{action}.{parameter}: '{parameter}' is a whole number from 1 to {most}"
    )


@pytest.mark.parametrize("action", ["set", "cap"])
def test_counted_parameters_in_range_are_taken(action: str) -> None:
    compile_rules([rule(then={action: {"max_tokens": 1, "max_completion_tokens": 2**31 - 1}})])
    compile_rules([rule(then={action: {"n": 128}})])


def test_a_counted_parameter_is_set_as_an_integer_and_capped_by_a_whole_float() -> None:
    compile_rules([rule(then={"cap": {"max_tokens": 512.0}})])
    problem = only_problem(rule(then={"set": {"max_tokens": 512.0}}))
    assert problem.startswith("rules[0].then.set.max_tokens: 'max_tokens' is a whole number")


@pytest.mark.parametrize("limit", [math.nan, math.inf])
def test_non_finite_cap_is_rejected(limit: float) -> None:
    assert only_problem(rule(then={"cap": {"max_tokens": limit}})).startswith(
        "rules[0].then.cap.max_tokens: "
    )


@pytest.mark.parametrize("value", [{}, [], "temperature"])
@pytest.mark.parametrize("action", ["set", "cap"])
def test_set_and_cap_take_a_non_empty_mapping(action: str, value: Any) -> None:
    assert only_problem(rule(then={action: value})).startswith(f"rules[0].then.{action}: ")


def test_parameter_names_must_look_like_parameters() -> None:
    assert only_problem(rule(then={"set": {"Top P": 1}})).startswith("rules[0].then.set.Top P: ")


@pytest.mark.parametrize("status", [399, 500, 200, "403", True, 403.0])
def test_deny_status_outside_client_errors(status: Any) -> None:
    problem = only_problem(rule(then={"deny": {"status": status}}))
    assert problem.startswith("rules[0].then.deny.status: a client error status 400-499")


def test_deny_forms() -> None:
    ruleset = compile_rules(
        [
            rule(id="a", then={"deny": True}),
            rule(id="b", then={"deny": "not on weekends"}),
            rule(
                id="c", then={"deny": {"status": 429, "message": "slow down", "code": "slow_down"}}
            ),
            rule(id="d", then={"deny": {"status": 400}, "tag": ["denied"]}),
        ]
    )
    denies = [r.actions.deny for r in ruleset.rules]
    assert [d.status for d in denies if d] == [403, 403, 429, 400]
    assert denies[1] is not None and denies[1].message == "not on weekends"
    assert denies[2] is not None and denies[2].code == "slow_down"


@pytest.mark.parametrize(
    ("deny", "path"),
    [
        ({"message": ""}, "then.deny.message"),
        ({"code": "Not A Code"}, "then.deny.code"),
        ({"reason": "x"}, "then.deny.reason"),
        (403, "then.deny"),
    ],
)
def test_bad_deny_fields(deny: Any, path: str) -> None:
    assert only_problem(rule(then={"deny": deny})).startswith(f"rules[0].{path}: ")


@pytest.mark.parametrize(
    "other", ["route", "fallbacks", "set", "cap", "cache", "guardrails", "budget"]
)
def test_deny_cannot_go_with_other_actions(other: str) -> None:
    values: dict[str, Any] = {
        "route": "gpt-4o",
        "fallbacks": ["gpt-4o"],
        "set": {"temperature": 0},
        "cap": {"max_tokens": 5},
        "cache": "off",
        "guardrails": ["pii"],
        "budget": "b",
    }
    problem = only_problem(rule(then={"deny": True, other: values[other]}))
    assert problem == "rules[0].then: 'deny' refuses the request; only 'tag' may go with it"


@pytest.mark.parametrize("ttl", [0, -1, "300", 1.5, True])
def test_bad_cache_ttl(ttl: Any) -> None:
    problem = only_problem(rule(then={"cache": {"mode": "on", "ttl": ttl}}))
    assert problem.startswith("rules[0].then.cache.ttl: a positive number of seconds")


@pytest.mark.parametrize(
    ("cache", "path"),
    [
        ({"mode": "sometimes"}, "then.cache.mode"),
        ({"ttl": 5, "scope": "user"}, "then.cache.scope"),
        ("maybe", "then.cache"),
        (300, "then.cache"),
    ],
)
def test_bad_cache_shapes(cache: Any, path: str) -> None:
    assert only_problem(rule(then={"cache": cache})).startswith(f"rules[0].{path}: ")


@pytest.mark.parametrize(
    ("cache", "mode", "ttl"),
    [
        ({"mode": "on", "ttl": 300}, "on", 300),
        ({"mode": True}, "on", None),
        ({"mode": False}, "off", None),
        ({"ttl": 60}, "on", 60),
        ("off", "off", None),
        (True, "on", None),
        (False, "off", None),
    ],
)
def test_cache_forms(cache: Any, mode: str, ttl: int | None) -> None:
    policy = compile_rules([rule(then={"cache": cache})]).rules[0].actions.cache
    assert policy is not None
    assert (policy.mode, policy.ttl) == (mode, ttl)


@pytest.mark.parametrize(
    ("then", "path"),
    [
        ({"tag": ["ok", "bad tag"]}, "then.tag[1]"),
        ({"tag": 5}, "then.tag"),
        ({"guardrails": [""]}, "then.guardrails[0]"),
        ({"budget": ["a", "b"]}, "then.budget"),
        ({"fallbacks": "bad name!"}, "then.fallbacks[0]"),
    ],
)
def test_bad_names(then: dict[str, Any], path: str) -> None:
    assert only_problem(rule(then=then)).startswith(f"rules[0].{path}")


def test_every_problem_is_reported_in_one_error() -> None:
    documents = [
        {
            "id": "Bad Id",
            "priorty": 1,
            "enabled": "yes",
            "timezone": "Mars/Base",
            "when": {"all": [{"tagz": "x"}, {"model": {"eqq": "y"}}, {"prompt": {"regex": "("}}]},
            "then": {"route": "gpt-4", "cap": {"max_tokens": -1}, "cache": {"ttl": 0}},
        },
        {"id": "ok", "then": {"deny": {"status": 500}}},
        {
            "id": "ok",
            "when": {"headers.authorization": {"exists": True}},
            "then": {"set": {"model": "x"}},
        },
    ]
    problems = problems_of(documents, models=MODELS)
    paths = [problem.split(": ", 1)[0] for problem in problems]
    assert set(paths) == {
        "rules[0].id",
        "rules[0].priorty",
        "rules[0].enabled",
        "rules[0].timezone",
        "rules[0].when.all[0].tagz",
        "rules[0].when.all[1].model.eqq",
        "rules[0].when.all[2].prompt.regex",
        "rules[0].then.route.model",
        "rules[0].then.cap.max_tokens",
        "rules[0].then.cache.ttl",
        "rules[1].then.deny.status",
        "rules[2].id",
        "rules[2].when.headers.authorization",
        "rules[2].then.set.model",
    }
    assert len(problems) == len(paths)


def test_rule_error_message_lists_every_problem() -> None:
    with pytest.raises(RuleError) as raised:
        compile_rules([rule({"tagz": "x"}), rule(id="r2", priority="x")])
    assert str(raised.value) == "\n".join(raised.value.problems)
    assert isinstance(raised.value, ValueError)


def test_check_rules_returns_problems_instead_of_raising() -> None:
    assert check_rules([rule()]) == []
    assert check_rules([rule(then={"route": "nope"})], models=MODELS) == [
        "rules[0].then.route.model: unknown model 'nope'"
    ]


def test_valid_rules_compile_into_a_rule_set() -> None:
    ruleset = compile_rules([rule(id="a"), rule(id="b", enabled=False)], source="database")
    assert isinstance(ruleset, RuleSet)
    assert len(ruleset) == 2
    assert ruleset.active == 1
    first = ruleset.get("a")
    assert first is not None and first.source == "database" and first.name == "a"
    assert ruleset.get("missing") is None
    assert len(compile_rules([])) == 0


# --- normal form ------------------------------------------------------------------------------

FULL_RULE: dict[str, Any] = {
    "id": "premium-to-gpt4o",
    "name": "Premium tier to the big model",
    "priority": 10,
    "continue": True,
    "timezone": "Europe/Berlin",
    "when": {
        "all": [
            {"tags": {"contains": "premium"}},
            {"metadata.tier": {"in": ["gold", "platinum"]}},
            {"estimated_input_tokens": {"lt": 4000}},
            {"not": {"model": {"eq": "gpt-4o"}}},
            {"time.weekday": {"nin": ["sat", "sun"]}},
        ]
    },
    "then": {
        "route": {
            "targets": [{"model": "gpt-4o", "weight": 90}, {"model": "gpt-4o-mini", "weight": 10}],
            "sticky": True,
        },
        "fallbacks": ["gpt-4o-mini"],
        "set": {"temperature": 0},
        "cap": {"max_tokens": 512},
        "tag": ["premium"],
        "cache": {"mode": "on", "ttl": 300},
        "guardrails": ["pii"],
        "budget": "premium-bucket",
    },
}


def test_normalise_fills_defaults() -> None:
    assert normalise_rule({"id": "a", "then": {"tag": "x"}}) == {
        "id": "a",
        "name": "a",
        "description": "",
        "priority": 100,
        "enabled": True,
        "continue": False,
        "timezone": "UTC",
        "when": {},
        "then": {"tag": "x"},
    }


def test_normalise_keeps_given_values_in_one_key_order() -> None:
    normal = normalise_rule(FULL_RULE)
    assert list(normal) == [
        "id",
        "name",
        "description",
        "priority",
        "enabled",
        "continue",
        "timezone",
        "when",
        "then",
    ]
    assert normal["priority"] == 10
    assert normal["continue"] is True
    assert normal["timezone"] == "Europe/Berlin"
    assert normal["when"] == FULL_RULE["when"]
    assert normal["then"] == FULL_RULE["then"]


def test_normalise_round_trips_through_json() -> None:
    normal = normalise_rule(FULL_RULE)
    decoded = msgspec.json.decode(msgspec.json.encode(normal))
    assert decoded == normal
    assert normalise_rule(decoded) == normal


def _outcomes(ruleset: RuleSet, contexts: list[RequestContext]) -> list[tuple[Any, ...]]:
    results = []
    for ctx in contexts:
        evaluation = ruleset.evaluate(ctx)
        results.append(
            (
                evaluation.rule_ids,
                [m.evidence for m in evaluation.matched],
                [m.actions for m in evaluation.matched],
                evaluation.effects(),
            )
        )
    return results


def _contexts() -> list[RequestContext]:
    monday = datetime(2024, 6, 3, 12, 0, tzinfo=UTC).timestamp()
    saturday = datetime(2024, 6, 8, 12, 0, tzinfo=UTC).timestamp()
    return [
        RequestContext(
            model="gpt-4o-mini",
            tags=["premium"],
            metadata={"tier": "gold"},
            estimated_input_tokens=100,
            user=f"user-{i}",
            now=monday,
        )
        for i in range(20)
    ] + [
        RequestContext(
            model="gpt-4o-mini",
            tags=["premium"],
            metadata={"tier": "gold"},
            estimated_input_tokens=100,
            user="u",
            now=saturday,
        ),
        RequestContext(
            model="gpt-4o",
            tags=["premium"],
            metadata={"tier": "gold"},
            estimated_input_tokens=100,
            user="u",
            now=monday,
        ),
        RequestContext(model="gpt-4o-mini", tags=["free"], now=monday),
    ]


def test_normalised_json_rule_behaves_like_the_original() -> None:
    others = [{"id": "fallback", "priority": 200, "then": {"route": "claude-sonnet"}}]
    original = compile_rules([FULL_RULE, *others], models=MODELS)
    normal = [
        msgspec.json.decode(msgspec.json.encode(normalise_rule(d))) for d in [FULL_RULE, *others]
    ]
    assert normal[1]["name"] == "fallback"
    again = compile_rules(normal, models=MODELS)
    contexts = _contexts()
    outcomes = _outcomes(original, contexts)
    assert outcomes == _outcomes(again, contexts)
    assert outcomes[0][0] == ["premium-to-gpt4o", "fallback"]
    assert outcomes[-3][0] == ["fallback"]  # Saturday in Berlin
    assert outcomes[-1][0] == ["fallback"]


REALISTIC_YAML = """
- id: premium-to-gpt4o
  name: Premium tier to the big model
  priority: 10
  continue: yes
  timezone: Europe/Berlin
  when:
    all:
      - tags: {contains: premium}
      - metadata.tier: {in: [gold, platinum]}
      - estimated_input_tokens: {lt: 4000}
      - not: {model: {eq: gpt-4o}}
  then:
    route: gpt-4o
    fallbacks: [gpt-4o-mini]
    set: {temperature: 0}
    cap: {max_tokens: 512}
    tag: [premium]
    cache: {mode: on, ttl: 300}
    guardrails: [pii]
    budget: premium-bucket

- id: office-hours-split
  description: Try the small model on a tenth of weekday traffic.
  timezone: America/New_York
  when:
    time.weekday: [mon, tue, wed, thu, fri]
    time.time: {gte: "09:00", lt: "17:30"}
  then:
    route:
      targets:
        - {model: gpt-4o, weight: 90}
        - {provider: anthropic, model: claude-3-5-haiku, weight: 10}
      sticky: true
    cache: {mode: off}

- id: no-cache-for-tools
  priority: 50
  when:
    any:
      - has_tools: true
      - headers.x-no-cache: {exists: true}
  then:
    cache: off

- id: refund-bot
  enabled: false
  when:
    prompt: {regex: '(?i)\\brefund\\b'}
  then:
    deny: {status: 403, message: Refunds go through support.}
    tag: refund
"""


def test_yaml_rules_compile() -> None:
    documents = yaml.safe_load(REALISTIC_YAML)
    assert documents[0]["then"]["cache"]["mode"] is True  # YAML 1.1 reads `on` as a boolean
    assert documents[1]["then"]["cache"]["mode"] is False
    assert documents[2]["then"]["cache"] is False
    ruleset = compile_rules(documents, models=MODELS, providers=PROVIDERS)
    assert [r.rule_id for r in ruleset.rules] == [
        "premium-to-gpt4o",
        "no-cache-for-tools",
        "office-hours-split",
        "refund-bot",
    ]
    first, tools, split, refund = ruleset.rules
    assert first.keep_going is True
    assert first.actions.cache is not None and first.actions.cache.mode == "on"
    assert first.actions.cache.ttl == 300
    assert split.actions.cache is not None and split.actions.cache.mode == "off"
    assert tools.actions.cache is not None and tools.actions.cache.mode == "off"
    assert [t.name for t in split.actions.route] == ["gpt-4o", "anthropic/claude-3-5-haiku"]
    assert refund.enabled is False
    assert (
        refund.actions.deny is not None
        and refund.actions.deny.message == "Refunds go through support."
    )

    sunday_noon_utc = datetime(2026, 12, 6, 12, 0, tzinfo=UTC).timestamp()
    premium = RequestContext(
        model="gpt-4o-mini",
        tags=["premium"],
        metadata={"tier": "gold"},
        estimated_input_tokens=10,
        now=sunday_noon_utc,
    )
    evaluation = ruleset.evaluate(premium)
    assert evaluation.rule_ids == ["premium-to-gpt4o"]
    assert evaluation.route is not None and evaluation.route.model == "gpt-4o"
    assert evaluation.cache is not None and evaluation.cache.mode == "on"

    monday_ten_in_new_york = datetime(2026, 12, 7, 15, 0, tzinfo=UTC).timestamp()
    office_hours = RequestContext(
        model="gpt-4o-mini",
        tags=["premium"],
        metadata={"tier": "gold"},
        estimated_input_tokens=10,
        now=monday_ten_in_new_york,
    )
    assert ruleset.evaluate(office_hours).rule_ids == ["premium-to-gpt4o", "office-hours-split"]


def test_yaml_rules_normalise_and_compile_again() -> None:
    documents = yaml.safe_load(REALISTIC_YAML)
    normal = [msgspec.json.decode(msgspec.json.encode(normalise_rule(d))) for d in documents]
    again = compile_rules(normal, models=MODELS, providers=PROVIDERS)
    original = compile_rules(documents, models=MODELS, providers=PROVIDERS)
    ctx = RequestContext(model="gpt-4o-mini", has_tools=True)
    assert _outcomes(original, [ctx]) == _outcomes(again, [ctx])
    assert [r.rule_id for r in again.rules] == [r.rule_id for r in original.rules]


def test_unquoted_yaml_time_is_reported_not_crashed() -> None:
    """YAML 1.1 reads an unquoted 17:30 as the base-60 integer 1050."""
    documents = yaml.safe_load(
        "- id: late\n  when: {time.time: {gte: 17:30}}\n  then: {tag: late}\n"
    )
    assert documents[0]["when"]["time.time"]["gte"] == 1050
    problem = only_problem(documents[0])
    assert problem.startswith("rules[0].when.time.time.gte: ")


@pytest.mark.parametrize("hour", [-1, 24, 25])
def test_hours_outside_the_day_are_rejected(hour: int) -> None:
    assert only_problem(rule(when={"time.hour": {"gte": hour}})) == (
        f"rules[0].when.time.hour.gte: hours are 0 to 23, got {hour}"
    )


def test_an_unquoted_yaml_time_gets_a_hint() -> None:
    problem = only_problem(rule(when={"time.time": {"lt": 1050}}))
    assert problem.endswith("(quote times: YAML reads 17:30 as a number)")


@pytest.mark.parametrize("value", [[], ["a", "b"]])
def test_budget_names_exactly_one_bucket(value: list[str]) -> None:
    assert only_problem(rule(then={"budget": value})) == (
        "rules[0].then.budget: name the one budget bucket a request charges"
    )


def test_sources_must_match_the_documents() -> None:
    with pytest.raises(ValueError):
        compile_rules([rule()], sources=[])

"""The generated evaluator decides exactly as the conditions' closures do, on every operator."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from benchmarks.rules_workload import build_context, load_fixture, sample_requests
from rules.codegen import generate
from rules.compiler import compile_rules
from rules.context import RequestContext

ARGUMENTS: dict[str, list[Any]] = {
    "model": ["gpt-4o", ["gpt-4o", "mini"], "4o"],
    "estimated_input_tokens": [100, [100, 5000], 0],
    "temperature": [0.5, [0.0, 1.0], 0],
    "max_tokens": [256, [256, 1024], 1],
    "stream": [True, False],
    "user": ["alice", ["alice", "bob"], "^a"],
    "tags": ["premium", ["premium", "eu"], "^pre"],
    "metadata.tier": ["gold", ["gold", "free"], 1, True, [1, "1"], None, "^g"],
    "metadata.plan.level": ["pro", 2],
    "headers.x-team": ["search", ["search", "ads"], "^se"],
    "prompt": ["secret", "(?i)summari[sz]e"],
    "time.hour": [9, [9, 10]],
    "time.time": ["09:30"],
    "time.weekday": ["mon", ["sat", "sun"]],
    "budget.key_percent": [80, [50, 80]],
}
OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "regex", "contains", "exists")


def _valid_leaves() -> list[dict[str, Any]]:
    leaves = []
    for field, arguments in ARGUMENTS.items():
        for op, argument in itertools.product(OPERATORS, [*arguments, True, False]):
            when = {field: {op: argument}}
            try:
                compile_rules([{"id": "r", "when": when, "then": {"tag": "t"}}])
            except ValueError:
                continue
            leaves.append(when)
    return leaves


CONTEXTS = [
    RequestContext(model="gpt-4o"),
    RequestContext(
        model="gpt-4o-mini",
        estimated_input_tokens=100,
        temperature=0.0,
        max_tokens=256,
        stream=True,
        user="alice",
        tags=["premium", "eu"],
        metadata={"tier": "gold", "plan": {"level": "pro"}},
        headers={"x-team": "search"},
        messages=[{"role": "user", "content": "Please summarise this secret"}],
        now=1_700_000_000.0,
        budget={"key_percent": 80.0},
    ),
    RequestContext(
        model="claude",
        estimated_input_tokens=5000,
        temperature=1.0,
        max_tokens=1024,
        user="bob",
        tags=["free"],
        metadata={"tier": 1, "plan": {"level": 2}},
        headers={"x-team": "ads"},
        messages=[{"role": "user", "content": [{"type": "text", "text": "hello"}]}],
        now=1_700_040_000.0,
        budget={"key_percent": 50},
    ),
    RequestContext(
        model="x",
        tags=[],
        metadata={"tier": True, "plan": "flat"},
        now=1_700_300_000.0,
    ),
    RequestContext(model="y", metadata={"tier": "1", "plan": {}}, user="carol"),
    RequestContext(model="z", metadata={"tier": None}, tags=["premium"]),
    RequestContext(model="l", metadata={"tier": ["gold"], "plan": {"level": ["pro"]}}),
    RequestContext(model="o", metadata={"tier": {"gold": 1}, "plan": {"level": {"pro": 1}}}),
]


@pytest.mark.parametrize("when", _valid_leaves(), ids=str)
def test_each_leaf_decides_as_its_closure(when: dict[str, Any]) -> None:
    ruleset = compile_rules([{"id": "r", "when": when, "then": {"tag": "t"}}])
    (rule,) = ruleset.rules
    evaluate = generate([rule])
    for context in CONTEXTS:
        hits, _ = evaluate(context)
        assert bool(hits) == rule.test(context), (when, context.metadata)


def test_combinations_decide_as_their_closures() -> None:
    when = {
        "any": [
            {"all": [{"tags": "premium"}, {"not": {"metadata.tier": 1}}]},
            {"not": {"any": [{"user": "bob"}, {"stream": True}]}},
        ]
    }
    ruleset = compile_rules([{"id": "r", "when": when, "then": {"tag": "t"}}])
    (rule,) = ruleset.rules
    evaluate = generate([rule])
    assert [bool(evaluate(c)[0]) for c in CONTEXTS] == [rule.test(c) for c in CONTEXTS]


def test_the_benchmark_rule_set_decides_as_its_closures() -> None:
    ruleset = compile_rules(load_fixture())
    active = [rule for rule in ruleset.rules if rule.enabled]
    for sample in sample_requests():
        context = build_context(sample)
        expected = []
        for rule in active:
            if rule.test(context):
                expected.append(rule.rule_id)
                if not rule.keep_going or rule.actions.deny is not None:
                    break
        assert ruleset.evaluate(context).rule_ids == expected

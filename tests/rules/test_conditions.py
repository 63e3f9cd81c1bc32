"""Conditions: every operator on every field kind, absent values, nesting, time, evidence."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from rules.compiler import check_rules, compile_rules
from rules.context import RequestContext
from tests.text_search import contains_number

# Sunday 2024-06-02 23:30 in UTC is Monday 08:30 in Tokyo.
SUNDAY_NIGHT_UTC = datetime(2024, 6, 2, 23, 30, tzinfo=UTC).timestamp()


def context(**fields: Any) -> RequestContext:
    fields.setdefault("model", "gpt-4o")
    return RequestContext(**fields)


def _run(when: Any, ctx: RequestContext, timezone: str | None) -> list[list[str]]:
    document: dict[str, Any] = {"id": "probe", "when": when, "then": {"tag": ["hit"]}}
    if timezone is not None:
        document["timezone"] = timezone
    return [match.evidence for match in compile_rules([document]).evaluate(ctx).matched]


def evaluate(when: Any, ctx: RequestContext, *, timezone: str | None = None) -> list[str]:
    """The evidence of the one rule when it matches; empty when it does not."""
    found = _run(when, ctx, timezone)
    return found[0] if found else []


def matches(when: Any, ctx: RequestContext, *, timezone: str | None = None) -> bool:
    return bool(_run(when, ctx, timezone))


# --- string fields ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "arg", "expected"),
    [
        ("eq", "gpt-4o", True),
        ("eq", "gpt-4o-mini", False),
        ("eq", "GPT-4O", False),
        ("ne", "gpt-4o-mini", True),
        ("ne", "gpt-4o", False),
        ("gt", "gpt-4", True),
        ("gt", "gpt-4o", False),
        ("gte", "gpt-4o", True),
        ("gte", "gpt-5", False),
        ("lt", "gpt-5", True),
        ("lt", "gpt-4o", False),
        ("lte", "gpt-4o", True),
        ("lte", "gpt-4", False),
        ("in", ["gpt-4o", "o1"], True),
        ("in", ["gpt-4o-mini", "o1"], False),
        ("nin", ["gpt-4o-mini", "o1"], True),
        ("nin", ["gpt-4o", "o1"], False),
        ("regex", r"^gpt-4", True),
        ("regex", r"4o$", True),
        ("regex", r"^o\d", False),
        ("contains", "4o", True),
        ("contains", "mini", False),
        ("exists", True, True),
        ("exists", False, False),
    ],
)
def test_string_field_operators(op: str, arg: Any, expected: bool) -> None:
    assert matches({"model": {op: arg}}, context(model="gpt-4o")) is expected


@pytest.mark.parametrize("field", ["user", "key", "key_name", "workspace"])
def test_other_string_fields_read_the_context(field: str) -> None:
    ctx = context(**{field: "value-1"})
    assert matches({field: {"eq": "value-1"}}, ctx)
    assert matches({field: {"regex": r"-\d$"}}, ctx)
    assert not matches({field: {"eq": "value-2"}}, ctx)
    assert not matches({field: {"eq": "value-1"}}, context())


# --- number fields ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "arg", "expected"),
    [
        ("eq", 4000, True),
        ("eq", 4000.0, True),
        ("eq", 3999, False),
        ("ne", 3999, True),
        ("ne", 4000, False),
        ("gt", 3999, True),
        ("gt", 4000, False),
        ("gte", 4000, True),
        ("gte", 4000.5, False),
        ("lt", 4001, True),
        ("lt", 4000, False),
        ("lte", 4000, True),
        ("lte", 3999.9, False),
        ("in", [1, 4000], True),
        ("in", [1, 2], False),
        ("nin", [1, 2], True),
        ("nin", [4000], False),
        ("exists", True, True),
        ("exists", False, False),
    ],
)
def test_number_field_operators(op: str, arg: Any, expected: bool) -> None:
    ctx = context(estimated_input_tokens=4000)
    assert matches({"estimated_input_tokens": {op: arg}}, ctx) is expected


def test_number_fields_read_their_own_values() -> None:
    ctx = context(message_count=3, max_tokens=256, temperature=0.7)
    assert matches({"message_count": {"eq": 3}}, ctx)
    assert matches({"max_tokens": {"lte": 256}}, ctx)
    assert not matches({"max_tokens": {"lt": 256}}, ctx)
    assert matches({"temperature": {"gt": 0.5, "lt": 1}}, ctx)
    assert not matches({"temperature": {"gt": 0.7}}, ctx)


# --- boolean fields ---------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["has_tools", "has_images", "has_response_format", "stream"])
def test_boolean_field_operators(field: str) -> None:
    on, off = context(**{field: True}), context(**{field: False})
    assert matches({field: {"eq": True}}, on)
    assert not matches({field: {"eq": True}}, off)
    assert matches({field: {"eq": False}}, off)
    assert matches({field: {"ne": True}}, off)
    assert not matches({field: {"ne": True}}, on)
    assert matches({field: True}, on)
    assert not matches({field: True}, off)
    assert matches({field: {"exists": True}}, off)


# --- list field (tags) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "arg", "expected"),
    [
        ("contains", "premium", True),
        ("contains", "prem", False),
        ("in", ["batch", "premium"], True),
        ("in", ["batch", "free"], False),
        ("nin", ["batch", "free"], True),
        ("nin", ["free", "beta"], False),
        ("regex", r"^pre", True),
        ("regex", r"^free$", False),
        ("exists", True, True),
        ("exists", False, False),
    ],
)
def test_tags_operators(op: str, arg: Any, expected: bool) -> None:
    ctx = context(tags=["premium", "beta"])
    assert matches({"tags": {op: arg}}, ctx) is expected


def test_tags_shorthand_is_contains_and_a_list_is_any_of() -> None:
    ctx = context(tags=["premium", "beta"])
    assert matches({"tags": "premium"}, ctx)
    assert not matches({"tags": "free"}, ctx)
    assert matches({"tags": ["free", "beta"]}, ctx)
    assert not matches({"tags": ["free", "batch"]}, ctx)


def test_tags_exists_means_non_empty() -> None:
    assert not matches({"tags": {"exists": True}}, context(tags=[]))
    assert matches({"tags": {"exists": False}}, context(tags=()))


# --- any (metadata) ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "arg", "expected"),
    [
        ("eq", "gold", True),
        ("eq", "silver", False),
        ("ne", "silver", True),
        ("ne", "gold", False),
        ("gt", "bronze", True),
        ("gte", "gold", True),
        ("lt", "gold", False),
        ("lte", "gold", True),
        ("in", ["gold", "platinum"], True),
        ("in", ["silver"], False),
        ("nin", ["silver"], True),
        ("nin", ["gold"], False),
        ("regex", r"^go", True),
        ("regex", r"^si", False),
        ("contains", "ol", True),
        ("contains", "x", False),
        ("exists", True, True),
        ("exists", False, False),
    ],
)
def test_metadata_string_operators(op: str, arg: Any, expected: bool) -> None:
    ctx = context(metadata={"tier": "gold"})
    assert matches({"metadata.tier": {op: arg}}, ctx) is expected


@pytest.mark.parametrize(
    ("op", "arg", "expected"),
    [
        ("eq", 3, True),
        ("eq", 3.0, True),
        ("ne", 4, True),
        ("gt", 2, True),
        ("gt", 3, False),
        ("gte", 3, True),
        ("lt", 3.5, True),
        ("lte", 2, False),
        ("in", [1, 3], True),
        ("nin", [1, 3], False),
        ("regex", "3", False),
        ("contains", 3, False),
        # a number is never ordered against a string
        ("gt", "1", False),
        ("lt", "9", False),
    ],
)
def test_metadata_number_operators(op: str, arg: Any, expected: bool) -> None:
    ctx = context(metadata={"seats": 3})
    assert matches({"metadata.seats": {op: arg}}, ctx) is expected


@pytest.mark.parametrize(
    ("arg", "matching"),
    [(1, "number"), (True, "boolean"), ("1", "string")],
)
def test_metadata_comparison_is_type_strict(arg: Any, matching: str) -> None:
    values = {"number": 1, "boolean": True, "string": "1"}
    for kind, value in values.items():
        ctx = context(metadata={"flag": value})
        expected = kind == matching
        assert matches({"metadata.flag": {"eq": arg}}, ctx) is expected, (arg, value)
        assert matches({"metadata.flag": arg}, ctx) is expected, (arg, value)
        assert matches({"metadata.flag": {"ne": arg}}, ctx) is not expected, (arg, value)
        assert matches({"metadata.flag": {"in": [arg]}}, ctx) is expected, (arg, value)
        assert matches({"metadata.flag": {"nin": [arg]}}, ctx) is not expected, (arg, value)
        assert matches({"metadata.flag": [arg, "other"]}, ctx) is expected, (arg, value)


def test_metadata_booleans_are_not_ordered_as_numbers() -> None:
    ctx = context(metadata={"flag": True})
    assert not matches({"metadata.flag": {"gt": 0}}, ctx)
    assert not matches({"metadata.flag": {"gte": 1}}, ctx)
    assert not matches({"metadata.flag": {"lte": 1}}, ctx)


def test_metadata_contains_on_lists_objects_and_strings() -> None:
    ctx = context(metadata={"ids": [1, 2, "three"], "obj": {"k": 1}, "text": "hello world"})
    assert matches({"metadata.ids": {"contains": 2}}, ctx)
    assert matches({"metadata.ids": {"contains": "three"}}, ctx)
    assert not matches({"metadata.ids": {"contains": "2"}}, ctx)
    assert not matches({"metadata.ids": {"contains": True}}, context(metadata={"ids": [1]}))
    assert matches({"metadata.obj": {"contains": "k"}}, ctx)
    assert not matches({"metadata.obj": {"contains": "v"}}, ctx)
    assert matches({"metadata.text": {"contains": "lo wo"}}, ctx)
    assert not matches({"metadata.text": {"contains": 1}}, ctx)


def test_metadata_lists_and_objects_are_never_members() -> None:
    ctx = context(metadata={"ids": [1], "obj": {"k": 1}})
    assert not matches({"metadata.ids": {"in": [1]}}, ctx)
    assert matches({"metadata.ids": {"nin": [1]}}, ctx)
    assert not matches({"metadata.obj": {"in": ["k"]}}, ctx)
    assert not matches({"metadata.obj": {"eq": "k"}}, ctx)
    assert not matches({"metadata.ids": {"regex": "1"}}, ctx)


def test_metadata_nested_paths() -> None:
    ctx = context(metadata={"org": {"team": {"name": "search"}, "size": 12}, "flat": "x"})
    assert matches({"metadata.org.team.name": "search"}, ctx)
    assert matches({"metadata.org.size": {"gte": 10}}, ctx)
    assert not matches({"metadata.org.team.name": "ads"}, ctx)
    assert matches({"metadata.org.team": {"exists": True}}, ctx)
    # missing steps and steps through non-objects read as absent
    assert matches({"metadata.org.missing.name": {"exists": False}}, ctx)
    assert matches({"metadata.flat.deeper": {"exists": False}}, ctx)
    assert not matches({"metadata.flat.deeper": {"eq": "x"}}, ctx)
    assert not matches({"metadata.org.size.value": {"exists": True}}, ctx)


# --- absent values ----------------------------------------------------------------------------

ABSENT_CASES = [
    ("eq", "x", False),
    ("ne", "x", True),
    ("gt", "a", False),
    ("gte", "a", False),
    ("lt", "z", False),
    ("lte", "z", False),
    ("in", ["x", "y"], False),
    ("nin", ["x", "y"], True),
    ("regex", ".*", False),
    ("contains", "", False),
    ("exists", True, False),
    ("exists", False, True),
]


@pytest.mark.parametrize(("op", "arg", "expected"), ABSENT_CASES)
def test_absent_string_passes_only_ne_nin_and_not_exists(op: str, arg: Any, expected: bool) -> None:
    assert matches({"user": {op: arg}}, context(user=None)) is expected
    assert matches({"key_name": {op: arg}}, context()) is expected


@pytest.mark.parametrize(("op", "arg", "expected"), ABSENT_CASES)
def test_absent_metadata_passes_only_ne_nin_and_not_exists(
    op: str, arg: Any, expected: bool
) -> None:
    assert matches({"metadata.tier": {op: arg}}, context(metadata={})) is expected
    assert matches({"metadata.tier": {op: arg}}, context(metadata={"tier": None})) is expected
    assert matches({"metadata.tier": {op: arg}}, context(metadata=None)) is expected
    assert matches({"metadata.a.tier": {op: arg}}, context(metadata={"a": {}})) is expected


@pytest.mark.parametrize(
    ("op", "arg", "expected"),
    [
        ("eq", 5, False),
        ("ne", 5, True),
        ("gt", 0, False),
        ("gte", 0, False),
        ("lt", 10**9, False),
        ("lte", 10**9, False),
        ("in", [0, 5], False),
        ("nin", [0, 5], True),
        ("exists", True, False),
        ("exists", False, True),
    ],
)
def test_absent_number_passes_only_ne_nin_and_not_exists(op: str, arg: Any, expected: bool) -> None:
    ctx = context(max_tokens=None, estimated_input_tokens=None, temperature=None)
    for field in ("max_tokens", "estimated_input_tokens", "temperature", "budget.key_percent"):
        assert matches({field: {op: arg}}, ctx) is expected, field


@pytest.mark.parametrize(
    ("op", "arg", "expected"),
    [
        ("contains", "x", False),
        ("in", ["x"], False),
        ("nin", ["x"], True),
        ("regex", ".*", False),
        ("exists", True, False),
        ("exists", False, True),
    ],
)
def test_no_tags_passes_only_nin_and_not_exists(op: str, arg: Any, expected: bool) -> None:
    assert matches({"tags": {op: arg}}, context(tags=())) is expected


@pytest.mark.parametrize(("op", "arg", "expected"), ABSENT_CASES)
def test_absent_header_passes_only_ne_nin_and_not_exists(op: str, arg: Any, expected: bool) -> None:
    assert matches({"headers.x-team": {op: arg}}, context(headers={"x-other": "x"})) is expected


# --- combinators and shorthand ----------------------------------------------------------------


def test_all_any_not_nesting() -> None:
    when = {
        "all": [
            {"tags": {"contains": "premium"}},
            {"any": [{"metadata.tier": {"in": ["gold", "platinum"]}}, {"user": "vip"}]},
            {"not": {"model": {"eq": "gpt-4o"}}},
        ]
    }
    gold = context(model="gpt-4o-mini", tags=["premium"], metadata={"tier": "gold"})
    vip = context(model="gpt-4o-mini", tags=["premium"], user="vip")
    assert matches(when, gold)
    assert matches(when, vip)
    assert not matches(when, context(model="gpt-4o", tags=["premium"], user="vip"))
    assert not matches(when, context(model="gpt-4o-mini", tags=["free"], user="vip"))
    assert not matches(when, context(model="gpt-4o-mini", tags=["premium"], user="x"))


def test_deep_nesting_and_double_negation() -> None:
    when = {"not": {"not": {"any": [{"all": [{"stream": True}, {"has_tools": True}]}]}}}
    assert matches(when, context(stream=True, has_tools=True))
    assert not matches(when, context(stream=True, has_tools=False))


def test_several_keys_in_one_mapping_must_all_hold() -> None:
    when = {"model": "gpt-4o", "stream": True}
    assert matches(when, context(model="gpt-4o", stream=True))
    assert not matches(when, context(model="gpt-4o", stream=False))
    assert not matches(when, context(model="o1", stream=True))


def test_several_operators_on_one_field_must_all_hold() -> None:
    when = {"estimated_input_tokens": {"gte": 100, "lt": 200}}
    assert matches(when, context(estimated_input_tokens=100))
    assert matches(when, context(estimated_input_tokens=199))
    assert not matches(when, context(estimated_input_tokens=200))
    assert not matches(when, context(estimated_input_tokens=99))


def test_any_with_one_member_and_all_with_many() -> None:
    assert matches({"any": [{"model": "gpt-4o"}]}, context())
    assert not matches({"any": [{"model": "o1"}, {"user": "u"}]}, context())
    assert matches(
        {"all": [{"model": "gpt-4o"}, {"stream": False}, {"tags": {"exists": False}}]}, context()
    )
    assert not matches({"all": [{"model": "gpt-4o"}, {"stream": False}, {"user": "u"}]}, context())


def test_shorthand_scalar_is_eq_and_list_is_in() -> None:
    assert matches({"model": "gpt-4o"}, context())
    assert not matches({"model": "gpt-4"}, context())
    assert matches({"model": ["o1", "gpt-4o"]}, context())
    assert not matches({"model": ["o1", "gpt-4"]}, context())
    assert matches({"estimated_input_tokens": 10}, context(estimated_input_tokens=10))
    assert matches({"metadata.tier": ["gold", "silver"]}, context(metadata={"tier": "gold"}))


@pytest.mark.parametrize("when", [None, {}])
def test_absent_or_empty_condition_always_matches(when: Any) -> None:
    assert matches(when, context())


# --- time -------------------------------------------------------------------------------------


def test_time_fields_default_to_utc() -> None:
    ctx = context(now=SUNDAY_NIGHT_UTC)
    assert matches({"time.weekday": "sun"}, ctx)
    assert matches({"time.hour": 23}, ctx)
    assert matches({"time.time": "23:30"}, ctx)
    assert not matches({"time.weekday": "mon"}, ctx)


def test_time_fields_use_the_rule_time_zone() -> None:
    ctx = context(now=SUNDAY_NIGHT_UTC)
    tokyo = "Asia/Tokyo"
    assert matches({"time.weekday": "mon"}, ctx, timezone=tokyo)
    assert not matches({"time.weekday": "sun"}, ctx, timezone=tokyo)
    assert matches({"time.hour": 8}, ctx, timezone=tokyo)
    assert matches({"time.time": "08:30"}, ctx, timezone=tokyo)
    assert matches({"time.weekday": "sun"}, ctx, timezone="UTC")
    assert matches({"time.hour": 19}, ctx, timezone="America/New_York")


def test_time_operators() -> None:
    ctx = context(now=SUNDAY_NIGHT_UTC)
    tokyo = "Asia/Tokyo"
    working_hours = {"time.time": {"gte": "08:00", "lt": "18:00"}}
    assert matches(working_hours, ctx, timezone=tokyo)
    assert not matches(working_hours, ctx)
    weekday = {"time.weekday": {"in": ["mon", "tue", "wed", "thu", "fri"]}}
    assert matches(weekday, ctx, timezone=tokyo)
    assert not matches(weekday, ctx)
    assert matches({"time.weekday": ["sat", "sun"]}, ctx)
    assert matches({"time.hour": {"gte": 8, "lt": 9}}, ctx, timezone=tokyo)
    assert matches({"time.weekday": {"nin": ["sat", "sun"]}}, ctx, timezone=tokyo)


def test_weekday_ranges_follow_the_week_or_are_rejected() -> None:
    when = {"time.weekday": {"gte": "mon", "lte": "fri"}}
    problems = check_rules([{"id": "probe", "when": when, "then": {}}])
    if problems:
        assert problems[0].startswith("rules[0].when.time.weekday.")
        return
    day = 24 * 3600
    monday = SUNDAY_NIGHT_UTC + day
    assert matches(when, context(now=monday))
    assert matches(when, context(now=monday + 2 * day))
    assert not matches(when, context(now=monday + 5 * day))


def test_rules_in_different_zones_on_one_context() -> None:
    documents = [
        {"id": "utc", "continue": True, "when": {"time.weekday": "sun"}, "then": {"tag": ["u"]}},
        {
            "id": "tokyo",
            "continue": True,
            "timezone": "Asia/Tokyo",
            "when": {"time.weekday": "mon"},
            "then": {"tag": ["t"]},
        },
        {
            "id": "berlin",
            "timezone": "Europe/Berlin",
            "when": {"time.time": "01:30"},
            "then": {"tag": ["b"]},
        },
    ]
    evaluation = compile_rules(documents).evaluate(context(now=SUNDAY_NIGHT_UTC))
    assert evaluation.rule_ids == ["utc", "tokyo", "berlin"]


# --- budget and headers -----------------------------------------------------------------------


def test_budget_fields() -> None:
    ctx = context(budget={"key_percent": 85.0, "workspace_percent": 40})
    assert matches({"budget.key_percent": {"gte": 80}}, ctx)
    assert not matches({"budget.key_percent": {"gte": 90}}, ctx)
    assert matches({"budget.workspace_percent": {"lt": 50}}, ctx)
    assert matches({"budget.workspace_percent": 40}, ctx)
    assert not matches({"budget.key_percent": {"exists": True}}, context())
    assert matches({"budget.key_percent": {"exists": False}}, context(budget={"key_percent": None}))


@pytest.mark.parametrize("name", ["x-team", "X-Team", "X-TEAM"])
def test_header_names_are_case_insensitive(name: str) -> None:
    ctx = context(headers={"x-team": "search"})
    assert matches({f"headers.{name}": "search"}, ctx)
    assert matches({f"headers.{name}": {"regex": "^sea"}}, ctx)
    assert not matches({f"headers.{name}": "ads"}, ctx)


def test_header_operators() -> None:
    ctx = context(headers={"x-priority": "high", "x-client": "mobile-ios"})
    assert matches({"headers.x-priority": {"in": ["high", "urgent"]}}, ctx)
    assert matches({"headers.x-client": {"contains": "ios"}}, ctx)
    assert matches({"headers.x-client": {"ne": "web"}}, ctx)
    assert matches({"headers.x-client": {"exists": True}}, ctx)
    assert not matches({"headers.x-missing": {"exists": True}}, ctx)


# --- prompt -----------------------------------------------------------------------------------


def test_prompt_reads_the_last_user_message_with_string_content() -> None:
    messages = [
        {"role": "system", "content": "You are helpful. refund policy applies."},
        {"role": "user", "content": "I want a refund for order 12345"},
        {"role": "assistant", "content": "Sure"},
    ]
    ctx = context(messages=messages)
    assert matches({"prompt": {"regex": r"(?i)\brefund\b"}}, ctx)
    assert matches({"prompt": {"contains": "order"}}, ctx)
    assert not matches({"prompt": {"regex": "policy"}}, ctx)


def test_prompt_reads_list_of_parts_content() -> None:
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this picture?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                {"type": "text", "text": "Answer in French."},
            ],
        }
    ]
    ctx = context(messages=messages)
    assert matches({"prompt": {"regex": "picture"}}, ctx)
    assert matches({"prompt": {"regex": "French"}}, ctx)
    assert matches({"prompt": {"regex": r"picture\?\nAnswer"}}, ctx)
    assert not matches({"prompt": {"regex": "example.com"}}, ctx)


def test_prompt_ignores_earlier_user_messages() -> None:
    messages = [
        {"role": "user", "content": "I want a refund"},
        {"role": "assistant", "content": "Why?"},
        {"role": "user", "content": "never mind, hello"},
    ]
    ctx = context(messages=messages)
    assert not matches({"prompt": {"regex": "refund"}}, ctx)
    assert matches({"prompt": {"regex": "hello"}}, ctx)


def test_prompt_is_absent_without_a_user_message() -> None:
    assert not matches({"prompt": {"regex": ".*"}}, context(messages=None))
    assert not matches(
        {"prompt": {"exists": True}}, context(messages=[{"role": "system", "content": "x"}])
    )
    assert matches({"prompt": {"exists": False}}, context(messages=[]))
    tool_call = [{"role": "user", "content": None}]
    assert matches({"prompt": {"exists": False}}, context(messages=tool_call))


def test_prompt_given_directly_wins_over_messages() -> None:
    ctx = context(messages=[{"role": "user", "content": "hello"}], prompt="refund please")
    assert matches({"prompt": {"regex": "refund"}}, ctx)
    assert not matches({"prompt": {"regex": "hello"}}, ctx)


# --- evidence ---------------------------------------------------------------------------------


def test_evidence_names_field_operator_and_value() -> None:
    ctx = context(model="gpt-4o", estimated_input_tokens=4200, tags=["premium"])
    evidence = evaluate(
        {
            "all": [
                {"model": {"eq": "gpt-4o"}},
                {"estimated_input_tokens": {"gt": 4000}},
                {"tags": {"contains": "premium"}},
            ]
        },
        ctx,
    )
    assert evidence[0] == 'model eq "gpt-4o"'
    assert evidence[1].startswith("estimated_input_tokens gt 4000")
    assert "4200" in evidence[1]
    assert evidence[2] == 'tags contains "premium"'


def test_evidence_of_any_is_the_member_that_held() -> None:
    evidence = evaluate(
        {"any": [{"user": "a"}, {"metadata.tier": {"in": ["gold"]}}]},
        context(metadata={"tier": "gold"}),
    )
    assert len(evidence) == 1
    assert evidence[0].startswith('metadata.tier in ["gold"]')


def test_evidence_of_not_says_what_it_excluded() -> None:
    evidence = evaluate({"not": {"model": "o1"}}, context())
    assert evidence == ['not model eq "o1"']


def test_evidence_of_an_always_rule() -> None:
    assert evaluate(None, context()) == ["always"]


def test_evidence_never_contains_the_prompt() -> None:
    secret = "my card number is 4111 1111 1111 1111, refund it"
    ctx = context(messages=[{"role": "user", "content": secret}])
    for when in (
        {"prompt": {"regex": "refund"}},
        {"prompt": {"contains": "refund"}},
        {"prompt": {"ne": "hello"}},
        {"prompt": {"nin": ["hello"]}},
        {"prompt": {"gt": "a"}},
        {"prompt": {"exists": True}},
        {"any": [{"user": "x"}, {"prompt": {"regex": "card"}}]},
    ):
        evidence = evaluate(when, ctx)
        assert evidence, when
        text = " ".join(evidence)
        assert not contains_number(text, "4111 1111 1111 1111")
        assert "prompt" in text


def test_evidence_never_contains_a_header_value() -> None:
    ctx = context(headers={"x-team": "team-secret-42"})
    for when in (
        {"headers.x-team": {"ne": "blue"}},
        {"headers.x-team": {"regex": "^team-"}},
        {"headers.x-team": {"contains": "team"}},
        {"headers.x-team": {"nin": ["blue"]}},
        {"headers.x-team": {"gt": "a"}},
        {"headers.X-Team": {"exists": True}},
    ):
        evidence = evaluate(when, ctx)
        assert evidence, when
        text = " ".join(evidence)
        assert "secret-42" not in text
        assert "headers." in text.lower()


def test_evidence_of_metadata_shows_the_value_read() -> None:
    evidence = evaluate({"metadata.seats": {"gte": 10}}, context(metadata={"seats": 25}))
    assert evidence == ["metadata.seats gte 10 (value 25)"]


def test_evidence_of_time_fields_shows_local_time() -> None:
    evidence = evaluate(
        {"time.hour": {"lt": 12}}, context(now=SUNDAY_NIGHT_UTC), timezone="Asia/Tokyo"
    )
    assert evidence == ["time.hour lt 12 (value 8)"]

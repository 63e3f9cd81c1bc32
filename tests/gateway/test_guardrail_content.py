"""The content-rule checks: deny lists, request limits, JSON schemas and custom callables."""

from __future__ import annotations

import random
import string
from typing import Any

import msgspec
import pytest

from gateway.guardrails.content import (
    DENIED_PATTERN,
    DENIED_TERM,
    INVALID_JSON,
    MAX_INPUT_TOKENS,
    MAX_PATTERN_LENGTH,
    MISSING_METADATA,
    MODEL_NOT_ALLOWED,
    SCHEMA_VIOLATION,
    AllowedModels,
    CustomCheck,
    CustomCheckError,
    DenyList,
    JsonSchemaCheck,
    MaxInputTokens,
    RequiredMetadata,
)
from gateway.guardrails.model import CheckContext, CheckResult, RequestCheck, TextCheck
from gateway.keys.limits import InvalidField
from gateway.keys.store import KeyInfo

SECRET = "hunter2-topsecret"


def matched(text: str, result: CheckResult) -> list[tuple[str, str]]:
    return [(finding.kind, text[finding.start : finding.end]) for finding in result.findings]


def context(**fields: Any) -> CheckContext:
    return CheckContext(direction=fields.pop("direction", "input"), **fields)


# --- deny list: words -------------------------------------------------------------------------


def test_a_word_matches_whole_words_only() -> None:
    deny = DenyList(["class"])
    text = "classic subclass class_name class, (class)"
    result = deny.scan(text)
    assert matched(text, result) == [(DENIED_TERM, "class"), (DENIED_TERM, "class")]
    assert [finding.start for finding in result.findings] == [28, 36]
    assert all(finding.score == 1.0 for finding in result.findings)
    assert result.overall == 1.0


def test_a_text_without_denied_words_is_clean() -> None:
    result = DenyList(["class"]).scan("a classic subclass")
    assert result.findings == ()
    assert result.overall == 0.0


def test_words_ignore_case_unless_told_otherwise() -> None:
    text = "CLASS Class class"
    assert len(DenyList(["class"]).scan(text).findings) == 3
    assert matched(text, DenyList(["Class"], case_sensitive=True).scan(text)) == [
        (DENIED_TERM, "Class")
    ]
    assert DenyList(["class"], case_sensitive=True).scan("CLASS Class").findings == ()


@pytest.mark.parametrize(
    ("word", "text", "expected"),
    [
        ("naïve", "a naïve plan", ["naïve"]),
        ("naïve", "pure naïveté", []),
        ("straße", "Die STRASSE und die Straße", ["Straße"]),
        ("привет", "ПРИВЕТ мир, приветствие", ["ПРИВЕТ"]),
        ("école", "L'ÉCOLE, écoles", ["ÉCOLE"]),
        ("東京", "東京 and 東京都", ["東京"]),
    ],
)
def test_words_are_unicode_aware(word: str, text: str, expected: list[str]) -> None:
    result = DenyList([word]).scan(text)
    assert [found for _, found in matched(text, result)] == expected


def test_a_phrase_matches_across_any_run_of_whitespace() -> None:
    deny = DenyList(["  new   york "])
    text = "New\tYork, new \n  york, newyork, new-york, new yorker"
    assert [found for _, found in matched(text, deny.scan(text))] == ["New\tYork", "new \n  york"]


def test_the_longest_word_at_a_place_wins() -> None:
    text = "new york news"
    result = DenyList(["new", "news", "new york"]).scan(text)
    assert [found for _, found in matched(text, result)] == ["new york", "news"]


def test_words_with_non_word_edges_need_a_boundary_only_on_word_sides() -> None:
    deny = DenyList(["c++", "@admin", "x"])
    text = "c++ and (c++) but abc++; ping @admin or foo@admin; x-ray, box"
    assert [found for _, found in matched(text, deny.scan(text))] == [
        "c++",
        "c++",
        "@admin",
        "@admin",
        "x",
    ]


def test_regex_metacharacters_in_words_are_literal() -> None:
    deny = DenyList(["a.b", "(x)"])
    assert deny.scan("aXb").findings == ()
    text = "a.b and (x)"
    assert [found for _, found in matched(text, deny.scan(text))] == ["a.b", "(x)"]


def test_a_thousand_words_compile_into_one_regex_and_find_exactly_theirs() -> None:
    rng = random.Random(7)
    words: set[str] = set()
    while len(words) < 1000:
        words.add("".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(5, 9))))
    ordered = sorted(words)
    deny = DenyList(ordered)
    assert deny.regex_count == 1
    picked = ordered[10], ordered[500], ordered[999]
    text = f"{picked[0]}s {picked[1]} pre{picked[2]} {picked[2].upper()}. {picked[0]}"
    result = deny.scan(text)
    assert [found for _, found in matched(text, result)] == [
        picked[1],
        picked[2].upper(),
        picked[0],
    ]
    assert result.reason == "3 denied terms (3 matches) found"


def test_invalid_words_name_their_index() -> None:
    with pytest.raises(InvalidField) as caught:
        DenyList(["fine", "   "])
    assert caught.value.param == "words[1]"
    with pytest.raises(ValueError, match="words"):
        DenyList("class")


# --- deny list: patterns ----------------------------------------------------------------------


def test_patterns_find_their_matches() -> None:
    deny = DenyList(patterns=[r"\d{3}-\d{4}", r"api[_-]?key"])
    assert deny.regex_count == 1
    text = "call 555-1234 with API_KEY or apikey"
    assert matched(text, deny.scan(text)) == [
        (DENIED_PATTERN, "555-1234"),
        (DENIED_PATTERN, "API_KEY"),
        (DENIED_PATTERN, "apikey"),
    ]
    assert DenyList(patterns=[r"api_key"], case_sensitive=True).scan("API_KEY").findings == ()


def test_words_and_patterns_together_are_sorted_and_counted() -> None:
    deny = DenyList(["token"], [r"sk-[a-z0-9]{8}", r"\bpw=\S+"])
    text = f"token sk-abcd1234 pw={SECRET} TOKEN sk-zzzz9999"
    result = deny.scan(text)
    assert [finding.kind for finding in result.findings] == [
        DENIED_TERM,
        DENIED_PATTERN,
        DENIED_PATTERN,
        DENIED_TERM,
        DENIED_PATTERN,
    ]
    assert [finding.start for finding in result.findings] == sorted(
        finding.start for finding in result.findings
    )
    assert result.reason == ("1 denied term (2 matches) and 2 denied patterns (3 matches) found")
    for finding in result.findings:
        assert text[finding.start : finding.end] not in result.reason


def test_inline_flags_of_a_pattern_stay_inside_it() -> None:
    deny = DenyList(patterns=[r"(?s)begin.end", r"fo.o", r"(\w)x"], case_sensitive=True)
    assert deny.regex_count == 1
    text = "zx begin\nend fo\no foo"
    assert [found for _, found in matched(text, deny.scan(text))] == ["zx", "begin\nend"]


def test_patterns_sharing_a_group_name_still_work() -> None:
    deny = DenyList(patterns=[r"(?P<id>a\d)", r"(?P<id>b\d)"])
    text = "a1 b2"
    assert [found for _, found in matched(text, deny.scan(text))] == ["a1", "b2"]


def test_groups_inside_patterns_do_not_confuse_which_pattern_matched() -> None:
    deny = DenyList(patterns=[r"(a)(b)(c)", r"x(y)z"])
    text = "abc xyz abc"
    result = deny.scan(text)
    assert [found for _, found in matched(text, result)] == ["abc", "xyz", "abc"]
    assert result.reason == "2 denied patterns (3 matches) found"


def test_an_invalid_regex_names_its_index_and_the_error() -> None:
    with pytest.raises(ValueError) as caught:
        DenyList(patterns=[r"ok", r"[unclosed"])
    assert isinstance(caught.value, InvalidField)
    assert caught.value.param == "patterns[1]"
    assert str(caught.value) == "patterns[1]: invalid regular expression: missing ]: [unclosed"


@pytest.mark.parametrize(
    ("pattern", "text", "found"),
    [
        (r"(a+)+$", "xaaa", "aaa"),
        (r"(\w+\s?)*x", "ab cx", "ab cx"),
        (r"(?:a*b?)+c", "abac", "abac"),
        (r"(a|aa)+$", "baaa", "aaa"),
    ],
)
def test_patterns_that_backtrack_catastrophically_in_re_scan_in_linear_time(
    pattern: str, text: str, found: str
) -> None:
    """Over the adversarial text each of these takes `re` minutes or more; RE2 answers at once
    (the test's own timeout is the bound)."""
    deny = DenyList(patterns=[pattern], case_sensitive=True)
    assert deny.scan("a" * 5000 + "!").findings == ()
    assert [value for _, value in matched(text, deny.scan(text))] == [found]


@pytest.mark.parametrize(
    ("pattern", "hint"),
    [
        (r"(\w)\1", "back-references are not supported"),
        (r"(?P<x>a)(?P=x)", "back-references are not supported"),
        (r"(?=\w+)x", "look-ahead (?=...) is not supported"),
        (r"(?<!\d)x", "look-behind (?<!...) is not supported"),
        (r"(?>a+)b", "atomic groups are not needed"),
        (r"a++b", "possessive quantifiers are not needed"),
        (r"end\Z", "write \\z for the end of the text"),
    ],
)
def test_patterns_re2_cannot_take_are_refused_with_a_hint(pattern: str, hint: str) -> None:
    with pytest.raises(InvalidField) as caught:
        DenyList(patterns=["fine", pattern])
    assert caught.value.param == "patterns[1]"
    assert hint in str(caught.value) and "RE2 syntax" in str(caught.value)


def test_overlong_and_empty_matching_patterns_are_refused() -> None:
    with pytest.raises(InvalidField, match=f"at most {MAX_PATTERN_LENGTH}"):
        DenyList(patterns=["a" * (MAX_PATTERN_LENGTH + 1)])
    with pytest.raises(InvalidField, match="empty text"):
        DenyList(patterns=["x", "a*"])


# --- request checks ---------------------------------------------------------------------------


def test_max_input_tokens() -> None:
    check: RequestCheck = MaxInputTokens(1000)
    assert check.inspect(context(estimated_input_tokens=1000)).findings == ()
    result = check.inspect(context(estimated_input_tokens=1234))
    assert [finding.kind for finding in result.findings] == [MAX_INPUT_TOKENS]
    assert "1234" in result.reason and "1000" in result.reason
    with pytest.raises(ValueError):
        MaxInputTokens(0)


def test_required_metadata_reports_each_missing_key() -> None:
    check = RequiredMetadata(["team", "project", "cost_center", "owner"])
    metadata = {"team": SECRET, "project": None, "cost_center": "", "extra": "x"}
    result = check.inspect(context(metadata=metadata))
    assert [finding.kind for finding in result.findings] == [MISSING_METADATA] * 3
    assert result.reason == "missing metadata: project, cost_center, owner"
    assert SECRET not in result.reason


def test_required_metadata_present_is_clean() -> None:
    check = RequiredMetadata(["team"])
    assert check.inspect(context(metadata={"team": "search"})).findings == ()
    assert check.inspect(context(metadata={"team": 0})).findings == ()
    assert len(check.inspect(context(metadata={"team": "  "})).findings) == 1
    with pytest.raises(ValueError):
        RequiredMetadata([])


MODEL_PATTERNS = ("gpt-4o*", "claude-3-5-sonnet", "local/*")


ALLOWED_OR_NOT = (
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4",
    "GPT-4o",
    "claude-3-5-sonnet",
    "claude-3-5-sonnet-x",
    "local/llama",
    "remote/local/llama",
    "",
)


@pytest.mark.parametrize("model", ALLOWED_OR_NOT)
def test_allowed_models_match_like_key_allowed_models(model: str) -> None:
    key = KeyInfo(
        key_id="k",
        workspace_id="w",
        name="n",
        role="user",
        display_prefix="sk-sw-...",
        allowed_models=MODEL_PATTERNS,
    )
    result = AllowedModels(MODEL_PATTERNS).inspect(context(model=model))
    assert (result.findings == ()) is key.allows_model(model)


def test_a_model_not_allowed_is_named() -> None:
    check = AllowedModels(["gpt-4o*"])
    assert check.inspect(context(model="gpt-4o-mini")).findings == ()
    result = check.inspect(context(model="o1-preview"))
    assert [finding.kind for finding in result.findings] == [MODEL_NOT_ALLOWED]
    assert "o1-preview" in result.reason
    assert len(check.inspect(context(model=None)).findings) == 1
    with pytest.raises(ValueError):
        AllowedModels([])


# --- JSON schema ------------------------------------------------------------------------------

ITEMS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "price": {"type": "number"}},
                "required": ["name", "price"],
            },
        }
    },
    "required": ["items"],
}


def schema_format(schema: Any, strict: bool = True) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "x", "schema": schema, "strict": strict}}


def answer(check: JsonSchemaCheck, text: str, response_format: Any) -> CheckResult:
    return check.inspect(context(direction="output", response_format=response_format), text)


def test_a_valid_answer_is_clean() -> None:
    text = msgspec.json.encode({"items": [{"name": "a", "price": 1.5}]}).decode()
    assert answer(JsonSchemaCheck(), text, schema_format(ITEMS_SCHEMA)).findings == ()


def test_a_violation_names_path_and_keyword_but_no_value() -> None:
    items = [{"name": "a", "price": 1}, {"name": "b", "price": 2}, {"name": "c", "price": SECRET}]
    text = msgspec.json.encode({"items": items}).decode()
    result = answer(JsonSchemaCheck(), text, schema_format(ITEMS_SCHEMA))
    assert [finding.kind for finding in result.findings] == [SCHEMA_VIOLATION]
    assert result.reason == "1 schema violation: $.items[2].price: type"
    assert SECRET not in result.reason


def test_at_most_three_violations_are_listed() -> None:
    items = [{"name": index} for index in range(5)]
    text = msgspec.json.encode({"items": items}).decode()
    result = answer(JsonSchemaCheck(), text, schema_format(ITEMS_SCHEMA))
    assert result.reason.startswith("10 schema violations: $.items[0].name: type; ")
    assert result.reason.count("$.items") == 3
    assert result.reason.endswith("; and 7 more")


def test_keys_the_schema_does_not_declare_are_not_shown() -> None:
    schema = {"type": "object", "additionalProperties": {"type": "number"}}
    text = msgspec.json.encode({SECRET: "not a number"}).decode()
    result = answer(JsonSchemaCheck(), text, schema_format(schema))
    assert result.reason == "1 schema violation: $.*: type"


def test_a_missing_property_is_reported_at_its_parent() -> None:
    result = answer(JsonSchemaCheck(), "{}", schema_format(ITEMS_SCHEMA))
    assert result.reason == "1 schema violation: $: required"


def test_invalid_json_is_its_own_finding() -> None:
    result = answer(JsonSchemaCheck(), f"{{'items': '{SECRET}'", schema_format(ITEMS_SCHEMA))
    assert [finding.kind for finding in result.findings] == [INVALID_JSON]
    assert SECRET not in result.reason


def test_json_object_only_requires_an_object() -> None:
    check = JsonSchemaCheck()
    json_object = {"type": "json_object"}
    assert answer(check, '{"anything": [1, 2]}', json_object).findings == ()
    assert [finding.kind for finding in answer(check, "[1, 2]", json_object).findings] == [
        SCHEMA_VIOLATION
    ]
    assert [finding.kind for finding in answer(check, "not json", json_object).findings] == [
        INVALID_JSON
    ]
    assert check.compile_count == 0


@pytest.mark.parametrize("response_format", [None, {"type": "text"}])
def test_without_a_json_format_anything_passes(response_format: Any) -> None:
    result = answer(JsonSchemaCheck(), "plain words, not JSON", response_format)
    assert result.findings == ()
    assert result.overall == 0.0


@pytest.mark.parametrize(
    "response_format",
    [
        schema_format({"type": "numbr"}),
        schema_format({"properties": {"price": {"minimum": "zero"}}}),
        schema_format({"$ref": "#/$defs/missing"}),
        {"type": "json_schema", "json_schema": {"name": "x"}},
    ],
)
def test_an_invalid_schema_does_not_fail_the_answer(response_format: Any) -> None:
    result = answer(JsonSchemaCheck(), '{"price": 1}', response_format)
    assert result.findings == ()
    assert result.overall == 0.0
    assert result.reason.startswith("schema invalid: ")


def test_compiled_schemas_are_reused_by_canonical_json() -> None:
    check = JsonSchemaCheck(cache_size=2)
    reordered = msgspec.json.decode(msgspec.json.encode(ITEMS_SCHEMA, order="sorted"))
    answer(check, "{}", schema_format(ITEMS_SCHEMA))
    answer(check, '{"items": []}', schema_format(reordered))
    assert check.compile_count == 1
    answer(check, "{}", schema_format({"type": "object"}))
    answer(check, "{}", schema_format({"type": "numbr"}))
    answer(check, "{}", schema_format({"type": "numbr"}))
    assert check.compile_count == 3
    answer(check, "{}", schema_format(ITEMS_SCHEMA))  # evicted by the two since
    assert check.compile_count == 4


# --- custom -----------------------------------------------------------------------------------

CHECKS = "tests.gateway.custom_checks"


def test_a_custom_check_is_called_with_text_and_context() -> None:
    check: TextCheck = CustomCheck(f"{CHECKS}:no_shouting")
    text = "please STOP doing THAT, ok?"
    result = check.scan(text)
    assert matched(text, result) == [("SHOUTING", "STOP"), ("SHOUTING", "THAT")]
    custom = CustomCheck(f"{CHECKS}:no_shouting")
    allowed = context(metadata={"shouting": "allowed"})
    assert custom.scan(text, allowed).findings == ()
    assert custom.scan("all calm here", context()).findings == ()
    assert len(custom.inspect(context(direction="output"), text).findings) == 2


def test_a_custom_check_may_be_a_nested_attribute() -> None:
    assert len(CustomCheck(f"{CHECKS}:Holder.nested").scan("abc").findings) == 1


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ("no_colon_here", "expected 'package.module:function'"),
        (f"{CHECKS}:", "expected 'package.module:function'"),
        ("1bad.module:function", "expected 'package.module:function'"),
        ("tests.gateway.no_such_module:check", "cannot import module"),
        (f"{CHECKS}:missing_function", "no attribute 'missing_function'"),
        (f"{CHECKS}:NOT_CALLABLE", "is not callable"),
    ],
)
def test_a_custom_target_that_cannot_be_used_is_refused(target: str, problem: str) -> None:
    with pytest.raises(ValueError, match="callable") as caught:
        CustomCheck(target)
    assert problem in str(caught.value)


@pytest.mark.parametrize(
    ("function", "problem"),
    [
        ("quotes_text_in_error", "raised ValueError"),
        ("answers_a_string", "returned str, expected CheckResult or None"),
        ("finds_past_the_end", "a finding outside the text"),
    ],
)
def test_a_failing_custom_check_raises_without_the_text(function: str, problem: str) -> None:
    check = CustomCheck(f"{CHECKS}:{function}")
    with pytest.raises(CustomCheckError) as caught:
        check.scan(SECRET, context())
    message = str(caught.value)
    assert f"'{CHECKS}:{function}'" in message
    assert problem in message
    assert SECRET not in message
    error = caught.value
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__


def test_an_answer_or_schema_nested_too_deep_is_not_checked_and_says_so() -> None:
    """No RecursionError escapes the check, whatever the nesting of the answer or the schema."""
    too_deep = "not checked: the answer or its schema nests deeper than the gateway reads"
    deep_answer = "[" * 100_000 + "]" * 100_000
    for response_format in ({"type": "json_object"}, schema_format({"type": "array"})):
        result = answer(JsonSchemaCheck(), deep_answer, response_format)
        assert (result.findings, result.reason) == ((), too_deep)
    schema: dict[str, Any] = {"type": "integer"}
    for _ in range(5_000):
        schema = {"type": "object", "properties": {"a": schema}}
    result = answer(JsonSchemaCheck(), '{"a": {"a": 1}}', schema_format(schema))
    assert (result.findings, result.reason) == ((), too_deep)

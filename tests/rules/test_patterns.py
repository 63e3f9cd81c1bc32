"""User patterns on RE2: what they match, where, and what is refused with which hint."""

from __future__ import annotations

import fnmatch
import random
import re
from typing import Any

import pytest

from gateway.keys.store import model_matcher, parse_allowed_models, remembered
from rules.compiler import RuleError, compile_rules
from rules.context import RequestContext
from rules.patterns import PatternError, compile_pattern, glob_pattern

EVIL = "(a+)+$"
EVIL_TEXT = "a" * 30 + "!"


def test_a_pattern_that_backtracks_for_minutes_in_re_is_answered_at_once() -> None:
    """`re.search(EVIL, EVIL_TEXT)` takes minutes; the test's timeout bounds this one."""
    pattern = compile_pattern(EVIL)
    assert not pattern.search(EVIL_TEXT * 100)
    assert pattern.search("x" + "a" * 30)


@pytest.mark.parametrize(
    ("source", "text", "expected"),
    [
        ("^gpt-4", "gpt-4o", True),
        ("^gpt-4", "my-gpt-4", False),
        (r"refund|chargeback", "a chargeback request", True),
        ("(?i)REFUND", "please refund", True),
        ("(?i)élan", "ÉLAN", True),
        (r"\p{Greek}+", "λόγος", True),
        (r"end$", "the end", True),
        (r"(?m)^b$", "a\nb\nc", True),
        (r"(?s)a.b", "a\nb", True),
        (r"a.b", "a\nb", False),
    ],
)
def test_search(source: str, text: str, expected: bool) -> None:
    assert compile_pattern(source).search(text) is expected


def test_ignore_case_folds_unicode() -> None:
    assert compile_pattern("straße", ignore_case=True).search("STRAẞE")
    assert not compile_pattern("straße").search("STRAẞE")


@pytest.mark.parametrize(
    ("source", "text"),
    [
        ("b*", "abbé"),
        ("é+", "xxéé yé ééé"),
        (r"(x)|(y)", "ñxñy🙂x"),
        ("", "añb"),
        (r"\d+", "1 22 333"),
        ("🙂|a", "🙂a🙂"),
    ],
)
def test_finditer_gives_the_offsets_re_gives(source: str, text: str) -> None:
    ours = [(found.start, found.end) for found in compile_pattern(source).finditer(text)]
    assert ours == [match.span() for match in re.finditer(source, text)]


def test_finditer_says_which_groups_took_part() -> None:
    found = list(compile_pattern("(x)|(y)").finditer("ñyx"))
    assert [(f.took_part(1), f.took_part(2)) for f in found] == [(False, True), (True, False)]


def test_a_lone_surrogate_neither_matches_nor_raises() -> None:
    text = "a\ud800b"
    assert compile_pattern("b").search(text)
    assert [(f.start, f.end) for f in compile_pattern("b").finditer(text)] == [(2, 3)]
    assert not compile_pattern("^a.b$").search("a\ud800")


@pytest.mark.parametrize(
    ("source", "hint"),
    [
        (r"(?=x)y", "look-ahead (?=...) is not supported"),
        (r"(?!x)y", "look-ahead (?!...) is not supported"),
        (r"(?<=x)y", "look-behind (?<=...) is not supported"),
        (r"(?<!x)y", "look-behind (?<!...) is not supported"),
        (r"(a)\1", "back-references are not supported"),
        (r"(?P<a>x)(?P=a)", "back-references are not supported"),
        (r"(?>ab)", "atomic groups are not needed"),
        (r"a*+", "possessive quantifiers are not needed"),
        (r"(?x) a", "verbose mode (?x) is not supported"),
        (r"a\Z", "write \\z for the end of the text"),
        (r"\u00e9", "write \\x{00e9} for a code point"),
        (r"a{1001}", "counted repetitions go up to {1000}"),
        (r"((a{100}){100}){100}", "counted repetitions go up to {1000}"),
    ],
)
def test_refusals_say_what_to_write_instead(source: str, hint: str) -> None:
    with pytest.raises(PatternError) as refused:
        compile_pattern(source)
    assert hint in str(refused.value)
    assert str(refused.value).endswith("; patterns use RE2 syntax)")


def test_a_plain_syntax_error_is_reported_as_re2_says_it() -> None:
    with pytest.raises(PatternError, match=r"^missing \): gold\($"):
        compile_pattern("gold(")


def test_a_pattern_too_large_for_its_memory_is_refused() -> None:
    with pytest.raises(PatternError, match="compiles to more than 1 MB"):
        compile_pattern(r"[\pL\pN]{100}")


# --- globs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("glob", "name", "expected"),
    [
        ("gpt-4o*", "gpt-4o-mini", True),
        ("gpt-4o*", "xgpt-4o", False),
        ("mock-?", "mock-a", True),
        ("mock-?", "mock-ab", False),
        ("v[0-9].*", "v3.1", True),
        ("v[!0-9]", "v3", False),
        ("a.b", "axb", False),
        ("[z-a]x", "bx", False),
        ("[]]", "]", True),
        ("[!]]", "a", True),
        ("a[", "a[", True),
        ("(a+)+$", "(a+)+$", True),
    ],
)
def test_globs_match_as_fnmatch_does(glob: str, name: str, expected: bool) -> None:
    assert fnmatch.fnmatchcase(name, glob) is expected
    assert glob_pattern((glob,)).fullmatch(name) is expected


def test_globs_agree_with_fnmatch_on_random_globs_and_names() -> None:
    chooser = random.Random(13)
    alphabet = "ab-*?[]!.^\\é"
    for _ in range(5000):
        glob = "".join(chooser.choice(alphabet) for _ in range(chooser.randint(1, 7)))
        name = "".join(chooser.choice(alphabet) for _ in range(chooser.randint(0, 7)))
        assert glob_pattern((glob,)).fullmatch(name) is fnmatch.fnmatchcase(name, glob), (
            glob,
            name,
        )


def test_many_stars_over_a_long_name_are_linear() -> None:
    """`*a*a*…*b` over a long run of `a`s backtracks polynomially in a naive translation."""
    assert not glob_pattern(("*a" * 50 + "*b",)).fullmatch("a" * 100_000)


def test_model_patterns_too_large_for_one_regex_are_matched_one_by_one() -> None:
    globs = parse_allowed_models(["*a" * 125 + str(index) for index in range(100)])
    assert globs is not None
    with pytest.raises(PatternError):
        glob_pattern(globs)
    matches = model_matcher(globs)
    assert matches("a" * 125 + "42")
    assert not matches("a" * 124 + "42")


def test_model_answers_are_remembered_within_bounds() -> None:
    asked: list[str] = []

    def match(model: str) -> bool:
        asked.append(model)
        return model.startswith("gpt")

    allows = remembered(match, names=2, length=8)
    assert [allows("gpt-4o"), allows("gpt-4o"), allows("claude")] == [True, True, False]
    assert asked == ["gpt-4o", "claude"]
    assert allows("llama") is False  # a third name: the memo starts over
    assert allows("gpt-4o") is True
    assert asked == ["gpt-4o", "claude", "llama", "gpt-4o"]
    assert [allows("gpt-4o-long-name"), allows("gpt-4o-long-name")] == [True, True]
    assert asked[-2:] == ["gpt-4o-long-name", "gpt-4o-long-name"]  # too long to keep


# --- rules ------------------------------------------------------------------------------------


def _rules(when: dict[str, Any]) -> Any:
    return compile_rules([{"id": "r", "when": when, "then": {"tag": "hit"}}], models=[])


@pytest.mark.parametrize(
    "when",
    [
        {"prompt": {"regex": EVIL}},
        {"headers.x-evil": {"regex": EVIL}},
        {"metadata.evil": {"regex": EVIL}},
        {"tags": {"regex": EVIL}},
        {"not": {"prompt": {"regex": EVIL}}},
    ],
)
def test_rules_with_a_catastrophic_regex_evaluate_at_once(when: dict[str, Any]) -> None:
    """Both the generated evaluator and the closures (explain) read RE2 patterns."""
    ruleset = _rules(when)
    context = RequestContext(
        model="m",
        prompt=EVIL_TEXT,
        headers={"x-evil": EVIL_TEXT},
        metadata={"evil": EVIL_TEXT},
        tags=(EVIL_TEXT,),
    )
    negated = "not" in when
    assert bool(ruleset.evaluate(context).matched) is negated
    rule = ruleset.rules[0]
    assert rule.condition.test(context) is negated


def test_a_rule_regex_re2_cannot_take_is_refused_with_its_path() -> None:
    with pytest.raises(RuleError) as refused:
        _rules({"any": [{"model": "m"}, {"metadata.tier": {"regex": "(?<!no )gold"}}]})
    assert refused.value.problems == [
        "rules[0].when.any[1].metadata.tier.regex: invalid regular expression: invalid perl "
        "operator: (?<! (look-behind (?<!...) is not supported; patterns use RE2 syntax)"
    ]


def test_a_rule_regex_with_flags_keeps_them() -> None:
    ruleset = _rules({"prompt": {"regex": "(?i)^refund"}})
    assert ruleset.evaluate(RequestContext(model="m", prompt="REFUND now")).matched
    assert not ruleset.evaluate(RequestContext(model="m", prompt="a refund")).matched

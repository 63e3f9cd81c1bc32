"""The literals a pattern's matches must contain: read conservatively, so that skipping the
search of a text without them never changes an answer."""

from __future__ import annotations

import random
import string

import pytest

from rules.literals import may_match, required_literals
from rules.patterns import Pattern, PatternError, compile_pattern


@pytest.mark.parametrize(
    ("source", "required"),
    [
        ("-----BEGIN [A-Z ]*PRIVATE KEY-----", (("PRIVATE KEY-----",), ("-----BEGIN ",))),
        (r"^1\.[0-4]\.", (("1.",), (".",))),
        (
            "^(?:Write|Fix) (?:this|the) (?:function|code)",
            (("function", "code"), ("Write", "Fix"), ("this", "the")),
        ),
        ("ab?c", (("a",), ("c",))),
        (r"\d+ items", ((" items",),)),
        ("a{2,3}b", (("b",),)),
        ("(ab)*c", (("c",),)),
        ("(a|)b", (("b",),)),
        ("(?i:abc)def", (("def",),)),
        (r"foo\.bar", (("foo.bar",),)),
        ("x]y", (("x",), ("y",))),
    ],
)
def test_what_a_match_must_contain(source: str, required: tuple[tuple[str, ...], ...]) -> None:
    assert required_literals(source) == required


@pytest.mark.parametrize(
    "source",
    ["a|b", "(?i)abc", "[[:alpha:]]x", r"\x{41}bc", r"\pLx", r"\Qa.b\E", "", ".*"],
)
def test_syntax_outside_the_simple_subset_requires_nothing(source: str) -> None:
    assert required_literals(source) == ()


def test_a_text_must_hold_one_literal_of_every_set() -> None:
    required = (("PRIVATE KEY",), ("Write", "Fix"))
    assert may_match(required, "Fix the PRIVATE KEY")
    assert not may_match(required, "Fix the private key")
    assert not may_match(required, "PRIVATE KEY only")
    assert may_match((), "anything")


@pytest.mark.parametrize("char", string.punctuation)
def test_escaped_punctuation_is_that_character_to_re2(char: str) -> None:
    try:
        pattern = compile_pattern("\\" + char)
    except PatternError:
        return
    assert pattern.search(f"x{char}y")
    assert not pattern.search("xy")


_TOKENS = (
    "a", "b", "c", " ", "ab", r"\.", ".", "^", "$", r"\d", r"\b", "[ab]", "[^a]", "[]a]",
    "(a|b)", "(?:ab|c)", "(?P<n>bc)", "(a|)", "(?i:a)", "(?i)", "|", "?", "*", "+", "*?",
    "{2}", "{1,2}", "{", "}", "]", "(a(b)c)", "[(]", "(?:[)]a)", "[[:alpha:]]", "[[:^digit:]]",
)  # fmt: skip
_TEXT_ALPHABET = "abcABC .1(){}]\n"


def test_skipping_texts_without_the_literals_never_changes_an_answer() -> None:
    chance = random.Random(20)
    checked = 0
    for _ in range(4000):
        source = "".join(chance.choice(_TOKENS) for _ in range(chance.randint(1, 6)))
        try:
            filtered = compile_pattern(source)
        except PatternError:
            continue
        unfiltered = Pattern(filtered.source, filtered._match.__self__)
        for _ in range(30):
            text = "".join(chance.choice(_TEXT_ALPHABET) for _ in range(chance.randint(0, 12)))
            assert filtered.search(text) == unfiltered.search(text), (source, text)
            assert filtered.fullmatch(text) == unfiltered.fullmatch(text), (source, text)
            assert list(filtered.finditer(text)) == list(unfiltered.finditer(text)), (source, text)
        checked += 1
    assert checked > 1000

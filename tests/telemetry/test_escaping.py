"""Escaping what a database cannot store: exact results, and nothing touched that needs nothing."""

from __future__ import annotations

from telemetry.escaping import (
    escape_bundle,
    escape_text,
    escape_value,
    find_unstorable,
    may_need_escaping,
)
from tests.telemetry import make_bundle


def test_nul_and_lone_surrogates_become_their_json_escapes() -> None:
    assert escape_text("a\x00b\x00") == "a\\u0000b\\u0000"
    assert escape_text("hi \ud83d there \udfff") == "hi \\ud83d there \\udfff"
    assert escape_text("tab\tline\nemoji \U0001f600 backslash \\ ok") == (
        "tab\tline\nemoji \U0001f600 backslash \\ ok"
    )


def test_values_without_anything_to_escape_come_back_as_the_same_objects() -> None:
    value = {"a": ["x", {"b": "y"}, 1, None], "c": ("t",)}
    assert escape_value(value) is value
    text = "plain"
    assert escape_text(text) is text


def test_json_values_are_escaped_keys_included() -> None:
    value = {"k\x00": ["ok", {"n": "v\x00"}], "same": "same", "t": ("a\x00",)}
    assert escape_value(value) == {
        "k\\u0000": ["ok", {"n": "v\\u0000"}],
        "same": "same",
        "t": ("a\\u0000",),
    }
    assert value == {"k\x00": ["ok", {"n": "v\x00"}], "same": "same", "t": ("a\x00",)}


def test_the_cheap_check_finds_every_case_and_may_only_err_on_the_safe_side() -> None:
    assert not may_need_escaping(make_bundle())
    assert may_need_escaping({"k": "v\x00"})
    assert may_need_escaping({"k\x00": "v"})
    assert may_need_escaping(["\ud800"])
    assert may_need_escaping("literal \\u0000")  # a false alarm: the walk finds nothing


def test_a_bundle_is_escaped_and_marked_only_when_something_changed() -> None:
    bundle = make_bundle()
    assert escape_bundle(bundle) is bundle
    bundle.trace.end_user = "literal \\u0000"
    assert escape_bundle(bundle) is bundle
    bundle.interactions[0].prompt = [{"role": "user", "content": "x\x00"}]
    escaped = escape_bundle(bundle)
    assert escaped.trace.escaped is True
    assert escaped.interactions[0].prompt == [{"role": "user", "content": "x\\u0000"}]
    assert escaped.trace.end_user == "literal \\u0000"
    assert escaped.spans is bundle.spans  # untouched records are shared, not copied
    assert bundle.trace.escaped is False  # the original is left alone


def test_a_value_nested_too_deep_to_walk_leaves_the_bundle_as_it_is() -> None:
    bundle = make_bundle()
    node: dict[str, object] = {"nul": "\x00"}
    for _ in range(100_000):
        node = {"a": node}
    bundle.trace.metadata = node
    assert escape_bundle(bundle) is bundle


def test_the_first_unstorable_string_is_found_by_its_path() -> None:
    assert find_unstorable({"a": ["x", {"b": "y\x00"}], "c": "\x00"}, "metadata") == (
        "metadata.a[1].b"
    )
    assert find_unstorable({"k\x00": 1}, "metadata") == "metadata"
    assert find_unstorable(["ok", "\udc80"], "tags") == "tags[1]"
    assert find_unstorable({"a": [1, None, "fine \\u0000"]}, "m") is None


def test_a_value_nested_however_deep_is_searched_without_exhausting_the_stack() -> None:
    node: dict[str, object] = {"nul": "\x00"}
    for _ in range(100_000):
        node = {"a": node}
    found = find_unstorable(node, "m")
    assert found is not None and found.endswith(".a.nul") and found.count(".a") == 100_000

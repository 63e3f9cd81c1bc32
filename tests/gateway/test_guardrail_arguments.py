"""Tool-call arguments as texts: each string inside the JSON, re-encoded only when changed."""

from __future__ import annotations

import msgspec

from gateway.guardrails.arguments import ToolArguments, tool_arguments


def _texts(arguments: ToolArguments) -> list[str]:
    return [container[key] for container, key in arguments.places]


def test_every_string_inside_the_json_is_a_text_in_order() -> None:
    function = {"arguments": '{"a": "x", "b": [1, "y", {"c": "z"}], "d": null, "e": true}'}
    assert _texts(ToolArguments(function)) == ["x", "y", "z"]
    assert _texts(ToolArguments({"arguments": '"just a string"'})) == ["just a string"]
    assert _texts(ToolArguments({"arguments": "42"})) == []


def test_a_rewrite_keeps_the_json_valid_whatever_goes_in() -> None:
    function = {"arguments": '{"to": "a@b.io", "n": 1}'}
    ToolArguments(function).rewrite(lambda text: text.replace("a@b.io", 'say "hi"\\'))
    assert msgspec.json.decode(function["arguments"]) == {"to": 'say "hi"\\', "n": 1}


def test_arguments_nothing_changed_are_kept_byte_for_byte() -> None:
    original = '{ "to" :  "x" }'
    function = {"arguments": original}
    ToolArguments(function).rewrite(lambda text: text)
    assert function["arguments"] == original


def test_arguments_that_are_not_json_are_one_text() -> None:
    function = {"arguments": '{"to": "a@b.io", '}  # cut short
    arguments = ToolArguments(function)
    assert _texts(arguments) == ['{"to": "a@b.io", ']
    arguments.rewrite(lambda text: text.replace("a@b.io", "<EMAIL>"))
    assert function["arguments"] == '{"to": "<EMAIL>", '

    deep = "[" * 5000 + '"a@b.io"' + "]" * 5000
    assert _texts(ToolArguments({"arguments": deep})) == [deep]


def test_tool_arguments_takes_the_calls_that_have_string_arguments() -> None:
    message = {
        "tool_calls": [
            {"function": {"name": "a", "arguments": "{}"}},
            {"function": {"name": "b", "arguments": {"not": "a string"}}},
            {"function": None},
            "junk",
        ]
    }
    assert len(tool_arguments(message)) == 1
    assert tool_arguments({"tool_calls": "junk"}) == []
    assert tool_arguments("junk") == []

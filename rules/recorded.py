"""Conditions over recorded requests, for what reads history rather than live traffic (the
evaluators' picking): a condition in the rules' language checked once, then tested against a
trace as recorded (`rules.replay.replay_context` rebuilds what the rules would have seen)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from rules.conditions import Problems, compile_condition, too_deep
from rules.replay import replay_context

RecordedTest = Callable[[Mapping[str, Any]], bool]


def condition_problem(value: Any, path: str = "condition") -> tuple[str, str] | None:
    """The first problem of the condition as (field path, reason); None when it is valid."""
    deep = too_deep(value, path)
    if deep is not None:
        return deep, "nested too deeply"
    problems = Problems()
    compile_condition(value, path, problems)
    if not problems.items:
        return None
    field, _, reason = problems.items[0].partition(": ")
    return field, reason


def recorded_test(value: Any) -> RecordedTest:
    """A test of a recorded trace (a mapping as `replay_context` reads it) against the condition;
    a value the record cannot answer reads as absent, and an error in a test reads as no match."""
    problems = Problems()
    compiled = compile_condition(value, "condition", problems)
    if problems.items:
        raise ValueError(problems.items[0])

    def test(row: Mapping[str, Any]) -> bool:
        try:
            return bool(compiled.test(replay_context(row)))
        except Exception:
            return False

    return test

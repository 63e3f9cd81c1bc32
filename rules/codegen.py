"""One generated Python function that tests a whole rule set, for the request path.

The closures of `rules.conditions` cost several Python calls per condition; for 50 rules that is
most of the evaluation time. Here the conditions become one function with an `if` per rule and
the simple reads inlined (`ctx.model == c3`, `c4 in ctx.tags`), so a rule that does not match
costs about one attribute read and one comparison. Anything not inlined (time fields, metadata
values, list regexes) calls the condition's own closure, so both paths share their semantics;
tests compare them on the same requests.

Only constants the compiler made (values from rule documents, validated) enter the namespace;
rule text is never pasted into the source, so no document can inject code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from rules.conditions import Condition
from rules.patterns import compile_pattern

if TYPE_CHECKING:
    from rules.context import RequestContext
    from rules.engine import CompiledRule

Evaluator = Callable[["RequestContext"], tuple[list["CompiledRule"], int]]


class _Source:
    def __init__(self) -> None:
        self.names: dict[str, Any] = {}
        self._count = 0

    def constant(self, value: Any) -> str:
        name = f"c{len(self.names)}"
        self.names[name] = value
        return name

    def variable(self) -> str:
        self._count += 1
        return f"v{self._count}"

    def expression(self, condition: Condition) -> str:
        shape = condition.shape
        kind = shape[0]
        if kind == "always":
            return "True"
        if kind == "all":
            return "(" + " and ".join(self.expression(p) for p in shape[1]) + ")"
        if kind == "any":
            return "(" + " or ".join(self.expression(p) for p in shape[1]) + ")"
        if kind == "not":
            return f"(not {self.expression(shape[1])})"
        _, read, op, field_kind, arg = shape
        inlined = None if read is None else self._leaf(read, op, field_kind, arg)
        if inlined is None:
            return f"{self.constant(condition.test)}(ctx)"
        return inlined

    def _leaf(self, read: str, op: str, kind: str, arg: Any) -> str | None:
        if kind == "list":
            if op == "contains":
                return f"({self.constant(arg)} in {read})"
            if op == "in":
                return f"(not {self.constant(frozenset(arg))}.isdisjoint({read}))"
            if op == "nin":
                return f"{self.constant(frozenset(arg))}.isdisjoint({read})"
            if op == "exists":
                return f"bool({read})" if arg else f"(not {read})"
            return None
        if kind == "any":
            # Metadata values are compared type-strictly; with string arguments plain `==` and
            # `in` already are (no other JSON type equals a string).
            strings = arg if isinstance(arg, list) else [arg]
            if op not in ("eq", "ne", "in", "nin") or not all(isinstance(a, str) for a in strings):
                return None
        elif kind not in ("string", "number", "boolean"):
            return None
        if op == "exists":
            return f"({read} is {'not ' if arg else ''}None)"
        if op == "eq":
            return f"({read} == {self.constant(arg)})"
        if op == "ne":
            return f"({read} != {self.constant(arg)})"
        if op in ("in", "nin"):
            negation = "not " if op == "nin" else ""
            # A metadata value may be a list or an object: not hashable, so not a set lookup.
            values = tuple(arg) if kind == "any" else frozenset(arg)
            return f"({read} {negation}in {self.constant(values)})"
        value = self.variable()
        if op == "regex":
            search = self.constant(compile_pattern(arg).search)
            return f"(({value} := {read}) is not None and {search}({value}))"
        if op == "contains":
            return f"(({value} := {read}) is not None and {self.constant(arg)} in {value})"
        symbol = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
        return f"(({value} := {read}) is not None and {value} {symbol} {self.constant(arg)})"


def generate(rules: Sequence[CompiledRule]) -> Evaluator:
    """The evaluator of enabled `rules` (in order): the rules that matched, and how many were
    tested before evaluation stopped."""
    source = _Source()
    lines = ["def evaluate(ctx):", "    hits = []"]
    for position, rule in enumerate(rules, start=1):
        name = source.constant(rule)
        lines.append(f"    if {source.expression(rule.condition)}:")
        lines.append(f"        hits.append({name})")
        if not rule.keep_going or rule.actions.deny is not None:
            lines.append(f"        return hits, {position}")
    lines.append(f"    return hits, {len(rules)}")
    namespace: dict[str, Any] = dict(source.names)
    exec(compile("\n".join(lines), "<steering rules>", "exec"), namespace)
    evaluator: Evaluator = namespace["evaluate"]
    return evaluator

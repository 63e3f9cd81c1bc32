"""Compiling a rule's `when` into closures, once, at load.

Syntax (a mapping; several keys in one mapping must all hold):

    all: [cond, ...]          every condition holds
    any: [cond, ...]          at least one holds
    not: cond                 the condition does not hold
    <field>: {<op>: value}    the field passes every operator given
    <field>: value            shorthand: `eq` (for tags: `contains`); a list means `in`

A compiled condition is a `Condition`: `test(ctx) -> bool` runs on every request and is as lean
as Python allows (one closure per operator, no dispatch at run time); `explain(ctx)` runs only
for rules that matched and says which values made them match.

An absent value (a metadata key not sent, no `max_tokens`) passes only `ne`, `nin`,
`exists: false`, and for metadata `eq: null` / `in: [..., null]`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from typing import Any, Final
from zoneinfo import ZoneInfo

import msgspec

from rules.context import RequestContext
from rules.fields import FIELDS, PREFIXES, SECRET_HEADERS, WEEKDAYS, Field, Getter, lookup
from rules.patterns import PatternError, compile_pattern

Test = Callable[[RequestContext], bool]
Explain = Callable[[RequestContext], list[str]]

OPERATORS: Final = (
    "eq",
    "ne",
    "gt",
    "gte",
    "lt",
    "lte",
    "in",
    "nin",
    "regex",
    "contains",
    "exists",
)
COMBINATORS: Final = ("all", "any", "not")
_ORDERED: Final = ("gt", "gte", "lt", "lte")
_BY_KIND: Final = {
    "string": frozenset(OPERATORS),
    "number": frozenset(("eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "exists")),
    "boolean": frozenset(("eq", "ne", "exists")),
    "list": frozenset(("contains", "in", "nin", "regex", "exists")),
    "any": frozenset(OPERATORS),
}
MAX_REGEX_LENGTH: Final = 1000
MAX_IN_VALUES: Final = 1000
MAX_DEPTH: Final = 32
"""Conditions nest (`all`, `any` and `not` inside one another) at most this deep: enough for
any rule a person writes, and a bound on the compiled closures and the generated evaluator."""


class Condition:
    """A compiled condition. `shape` keeps its structure for the generated evaluator
    (`rules.codegen`): ("always",), ("all", parts), ("any", parts), ("not", inner), or
    ("leaf", read source or None, operator, field kind, argument)."""

    __slots__ = ("description", "explain", "shape", "test")

    def __init__(
        self, test: Test, explain: Explain, description: str, shape: tuple[Any, ...]
    ) -> None:
        self.test = test
        self.explain = explain
        self.description = description
        self.shape = shape


ALWAYS: Final = Condition(lambda ctx: True, lambda ctx: ["always"], "always", ("always",))


class Problems:
    """Collects every problem with its path, so one check reports them all."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{path}: {message}")


def compile_condition(
    value: Any, path: str, problems: Problems, zone: ZoneInfo | None = None
) -> Condition:
    """The compiled condition; `value` must not nest deeper than `MAX_DEPTH` (see `too_deep`)."""
    if value is None:
        return ALWAYS
    if not isinstance(value, Mapping):
        problems.add(path, f"a condition is a mapping, got {_kind_of(value)}")
        return ALWAYS
    parts = [_compile_entry(key, item, path, problems, zone) for key, item in value.items()]
    if not parts:
        return ALWAYS
    return parts[0] if len(parts) == 1 else _all(parts)


def too_deep(condition: Any, path: str) -> str | None:
    """The path of the first condition (in document order) nested deeper than `MAX_DEPTH`, or
    None; read without recursion, so no document is too deep to check."""
    pending: list[tuple[Any, str, int]] = [(condition, path, 1)]
    while pending:
        current, here, depth = pending.pop()
        if not isinstance(current, Mapping):
            continue
        if depth > MAX_DEPTH:
            return here
        inner: list[tuple[Any, str, int]] = []
        for key, value in current.items():
            if key in ("all", "any") and isinstance(value, list):
                inner += [(part, f"{here}.{key}[{i}]", depth + 1) for i, part in enumerate(value)]
            elif key == "not":
                inner.append((value, f"{here}.not", depth + 1))
        pending += reversed(inner)
    return None


def _compile_entry(
    key: Any, item: Any, path: str, problems: Problems, zone: ZoneInfo | None
) -> Condition:
    here = f"{path}.{key}"
    if key in ("all", "any"):
        if not isinstance(item, list) or not item:
            problems.add(here, f"'{key}' takes a non-empty list of conditions")
            return ALWAYS
        parts = [
            compile_condition(sub, f"{here}[{index}]", problems, zone)
            for index, sub in enumerate(item)
        ]
        if len(parts) == 1:
            return parts[0]
        return _all(parts) if key == "all" else _any(parts)
    if key == "not":
        return _not(compile_condition(item, here, problems, zone))
    if not isinstance(key, str):
        problems.add(path, f"condition keys are field names, got {key!r}")
        return ALWAYS
    field = lookup(key)
    if field is None:
        problems.add(here, _unknown_field(key))
        return ALWAYS
    if key.startswith("headers.") and key[8:].lower() in SECRET_HEADERS:
        problems.add(here, "credential headers cannot be matched; use the 'key' field")
        return ALWAYS
    if isinstance(item, Mapping):
        if not item:
            problems.add(here, "give at least one operator")
            return ALWAYS
        leaves = [
            _leaf(key, field, str(op), arg, f"{here}.{op}", problems, zone)
            for op, arg in item.items()
        ]
        return leaves[0] if len(leaves) == 1 else _all(leaves)
    if isinstance(item, list):
        return _leaf(key, field, "in", item, here, problems, zone)
    return _leaf(
        key, field, "contains" if field.kind == "list" else "eq", item, here, problems, zone
    )


def _unknown_field(name: str) -> str:
    choices = [*FIELDS, *COMBINATORS]
    close = difflib.get_close_matches(name, choices, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown field '{name}'{hint}; fields are {', '.join(FIELDS)}, " + ", ".join(
        p + "<name>" for p in PREFIXES
    )


# --- combinators ------------------------------------------------------------------------------


def _all(parts: list[Condition]) -> Condition:
    tests = tuple(p.test for p in parts)
    if len(tests) == 2:
        first, second = tests

        def test_two(ctx: RequestContext) -> bool:
            return first(ctx) and second(ctx)

        test: Test = test_two
    else:

        def test_many(ctx: RequestContext) -> bool:
            for part in tests:  # noqa: SIM110 - a loop costs less than all() over a generator
                if not part(ctx):
                    return False
            return True

        test = test_many

    def explain(ctx: RequestContext) -> list[str]:
        return [reason for p in parts for reason in p.explain(ctx)]

    description = "(" + " and ".join(p.description for p in parts) + ")"
    return Condition(test, explain, description, ("all", tuple(parts)))


def _any(parts: list[Condition]) -> Condition:
    tests = tuple(p.test for p in parts)

    def test(ctx: RequestContext) -> bool:
        for part in tests:  # noqa: SIM110 - a loop costs less than any() over a generator
            if part(ctx):
                return True
        return False

    def explain(ctx: RequestContext) -> list[str]:
        for part in parts:
            if part.test(ctx):
                return part.explain(ctx)
        return []

    description = "(" + " or ".join(p.description for p in parts) + ")"
    return Condition(test, explain, description, ("any", tuple(parts)))


def _not(inner: Condition) -> Condition:
    inner_test = inner.test

    def test(ctx: RequestContext) -> bool:
        return not inner_test(ctx)

    # The inner condition failed, so it has no evidence of its own: say what it asked for.
    description = f"not {inner.description}"

    def explain(ctx: RequestContext) -> list[str]:
        return [description]

    return Condition(test, explain, description, ("not", inner))


# --- operators --------------------------------------------------------------------------------


def _leaf(
    name: str,
    field: Field,
    op: str,
    arg: Any,
    path: str,
    problems: Problems,
    zone: ZoneInfo | None,
) -> Condition:
    if op not in OPERATORS:
        close = difflib.get_close_matches(op, OPERATORS, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        problems.add(path, f"unknown operator '{op}'{hint}; operators are {', '.join(OPERATORS)}")
        return ALWAYS
    if op not in _BY_KIND[field.kind]:
        allowed = ", ".join(o for o in OPERATORS if o in _BY_KIND[field.kind])
        problems.add(path, f"'{op}' does not apply to {field.kind} field '{name}' (use {allowed})")
        return ALWAYS
    problem = _check_argument(name, field.kind, op, arg)
    if problem is not None:
        problems.add(path, problem)
        return ALWAYS
    get = field.read(zone)
    test = _build(op, field.kind, arg, get)
    description = f"{name} {op} {_show(arg)}"

    if field.sensitive or op == "exists":

        def explain(ctx: RequestContext) -> list[str]:
            return [description]

    else:

        def explain(ctx: RequestContext) -> list[str]:
            value = get(ctx)
            if op in ("eq", "contains"):
                return [description]
            return [f"{description} (value {_show(value)})"]

    return Condition(test, explain, description, ("leaf", field.source, op, field.kind, arg))


def _check_argument(name: str, kind: str, op: str, arg: Any) -> str | None:
    if op == "exists":
        return None if isinstance(arg, bool) else "'exists' takes true or false"
    if op == "regex":
        if not isinstance(arg, str):
            return "'regex' takes a string"
        if len(arg) > MAX_REGEX_LENGTH:
            return f"the pattern is longer than {MAX_REGEX_LENGTH} characters"
        try:
            compile_pattern(arg)
        except PatternError as error:
            return f"invalid regular expression: {error}"
        return None
    if op in ("in", "nin"):
        if not isinstance(arg, list) or not arg:
            return f"'{op}' takes a non-empty list"
        if len(arg) > MAX_IN_VALUES:
            return f"'{op}' takes at most {MAX_IN_VALUES} values"
        element_kind = "string" if kind == "list" else kind
        for index, element in enumerate(arg):
            problem = _check_scalar(name, element_kind, element)
            if problem is not None:
                return f"value [{index}]: {problem}"
        return None
    if op in _ORDERED:
        if name == "time.weekday":
            return "weekdays have no order here; use 'in' with a list like [mon, tue, wed]"
        if kind == "any":
            if isinstance(arg, str) or _is_number(arg):
                return None
            return f"'{op}' takes a number or a string, got {_kind_of(arg)}"
        return _check_scalar(name, kind, arg, weekday_names=False)
    element_kind = "string" if kind == "list" else kind
    return _check_scalar(name, element_kind, arg)


def _check_scalar(name: str, kind: str, value: Any, *, weekday_names: bool = True) -> str | None:
    if kind == "number" and not _is_number(value):
        return f"'{name}' is a number, got {_kind_of(value)} {_show(value)}"
    if kind == "boolean" and not isinstance(value, bool):
        return f"'{name}' is true or false, got {_kind_of(value)} {_show(value)}"
    if kind == "string" and not isinstance(value, str):
        hint = " (quote times: YAML reads 17:30 as a number)" if name == "time.time" else ""
        return f"'{name}' is a string, got {_kind_of(value)} {_show(value)}{hint}"
    if kind == "any" and not (value is None or isinstance(value, str | bool) or _is_number(value)):
        return f"expected a string, number, boolean or null, got {_kind_of(value)}"
    if name == "time.weekday" and weekday_names and value not in WEEKDAYS:
        return f"weekdays are {', '.join(WEEKDAYS)}, got {_show(value)}"
    if name == "time.hour" and not 0 <= value <= 23:
        return f"hours are 0 to 23, got {_show(value)}"
    if name == "time.time" and not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", str(value)):
        return f"times are 'HH:MM' (24-hour), got {_show(value)}"
    return None


def _build(op: str, kind: str, arg: Any, get: Getter) -> Test:
    """One closure per (operator, kind): no branching on the operator at request time."""
    if op == "exists":
        if kind == "list":
            return (lambda ctx: bool(get(ctx))) if arg else (lambda ctx: not get(ctx))
        return (lambda ctx: get(ctx) is not None) if arg else (lambda ctx: get(ctx) is None)
    if kind == "list":
        return _list_test(op, arg, get)
    if kind == "any":
        return _any_test(op, arg, get)
    if op == "eq":
        return lambda ctx: get(ctx) == arg
    if op == "ne":
        return lambda ctx: get(ctx) != arg
    if op == "in":
        allowed = frozenset(arg)
        return lambda ctx: get(ctx) in allowed
    if op == "nin":
        denied = frozenset(arg)
        return lambda ctx: get(ctx) not in denied
    if op == "regex":
        search = compile_pattern(arg).search

        def regex(ctx: RequestContext) -> bool:
            value = get(ctx)
            return value is not None and search(value)

        return regex
    if op == "contains":

        def contains(ctx: RequestContext) -> bool:
            value = get(ctx)
            return value is not None and arg in value

        return contains
    return _ordered(op, arg, get)


def _ordered(op: str, arg: Any, get: Getter) -> Test:
    if op == "gt":

        def gt(ctx: RequestContext) -> bool:
            value = get(ctx)
            return value is not None and value > arg

        return gt
    if op == "gte":

        def gte(ctx: RequestContext) -> bool:
            value = get(ctx)
            return value is not None and value >= arg

        return gte
    if op == "lt":

        def lt(ctx: RequestContext) -> bool:
            value = get(ctx)
            return value is not None and value < arg

        return lt

    def lte(ctx: RequestContext) -> bool:
        value = get(ctx)
        return value is not None and value <= arg

    return lte


def _list_test(op: str, arg: Any, get: Getter) -> Test:
    if op == "contains":
        return lambda ctx: arg in get(ctx)
    if op == "in":
        wanted = frozenset(arg)
        return lambda ctx: not wanted.isdisjoint(get(ctx))
    if op == "nin":
        unwanted = frozenset(arg)
        return lambda ctx: unwanted.isdisjoint(get(ctx))
    search = compile_pattern(arg).search
    return lambda ctx: any(search(item) for item in get(ctx))


def _any_test(op: str, arg: Any, get: Getter) -> Test:
    """Metadata values: JSON of any type, compared only with values of the same type."""
    if op in ("eq", "ne"):
        key = _type_key(arg)
        if op == "eq":
            return lambda ctx: _same(get(ctx), arg, key)
        return lambda ctx: not _same(get(ctx), arg, key)
    if op in ("in", "nin"):
        keyed = frozenset((_type_key(v), v) for v in arg)

        def member(ctx: RequestContext) -> bool:
            value = get(ctx)
            try:
                return (_type_key(value), value) in keyed
            except TypeError:  # a list or object: never a member
                return False

        if op == "in":
            return member
        return lambda ctx: not member(ctx)
    if op == "regex":
        search = compile_pattern(arg).search

        def regex(ctx: RequestContext) -> bool:
            value = get(ctx)
            return isinstance(value, str) and search(value)

        return regex
    if op == "contains":

        def contains(ctx: RequestContext) -> bool:
            value = get(ctx)
            if isinstance(value, str):
                return isinstance(arg, str) and arg in value
            if isinstance(value, list):
                return any(_same(item, arg, _type_key(arg)) for item in value)
            if isinstance(value, dict):
                return isinstance(arg, str) and arg in value
            return False

        return contains
    ordered = _ordered(op, arg, get)
    numeric = _is_number(arg)

    def compare(ctx: RequestContext) -> bool:
        value = get(ctx)
        if numeric:
            if not _is_number(value):
                return False
        elif not isinstance(value, str):
            return False
        return ordered(ctx)

    return compare


def _type_key(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if _is_number(value):
        return "number"
    return type(value).__name__


def _same(value: Any, arg: Any, arg_key: str) -> bool:
    return value == arg and _type_key(value) == arg_key


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if _is_number(value):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return type(value).__name__


def _show(value: Any) -> str:
    try:
        text = msgspec.json.encode(value).decode()
    except (TypeError, msgspec.EncodeError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def fields_read(condition: Any) -> set[str]:
    """The field names a rule's `when` mentions (whether or not a request reaches them); read
    without recursion, as it also runs on documents nested too deep to compile."""
    found: set[str] = set()
    pending = [condition]
    while pending:
        current = pending.pop()
        if not isinstance(current, Mapping):
            continue
        for key, value in current.items():
            if key in ("all", "any"):
                pending.extend(value if isinstance(value, list) else ())
            elif key == "not":
                pending.append(value)
            else:
                found.add(str(key))
    return found

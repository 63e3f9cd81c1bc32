"""Rule documents (from the config file or the database) to a `RuleSet`, checked once at load.

Every problem is reported with its path (`rules[2].when.all[0].tagz: unknown field ...`), and
nothing is compiled into the running set unless the whole document set is valid.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from rules.actions import compile_actions
from rules.conditions import ALWAYS, MAX_DEPTH, Problems, compile_condition, too_deep
from rules.engine import CompiledRule, RuleSet

RULE_FIELDS: Final = (
    "id",
    "name",
    "description",
    "priority",
    "enabled",
    "continue",
    "timezone",
    "when",
    "then",
)
DEFAULT_PRIORITY: Final = 100
RULE_ID: Final = re.compile(r"[a-z0-9][a-z0-9._-]{0,127}")


class RuleError(ValueError):
    """The rules cannot be used; `problems` lists every reason with its path."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def compile_rules(
    documents: Sequence[Any],
    *,
    path: str = "rules",
    models: Collection[str] | None = None,
    providers: Collection[str] | None = None,
    buckets: Collection[str] | None = None,
    guardrails: Collection[str] | None = None,
    source: str = "config",
    sources: Sequence[str] | None = None,
) -> RuleSet:
    """Check and compile; `models`/`providers` (when given) are what routes may name.

    `sources` gives each document's origin when they differ (config and database rules mixed);
    otherwise every rule has `source`.
    """
    problems = Problems()
    if not isinstance(documents, Sequence) or isinstance(documents, str | bytes):
        raise RuleError([f"{path}: expected a list of rules"])
    if sources is not None and len(sources) != len(documents):
        raise ValueError("sources must name the origin of every document")
    compiled: list[CompiledRule] = []
    seen: dict[str, str] = {}
    for index, document in enumerate(documents):
        here = f"{path}[{index}]"
        rule = _compile_rule(
            document,
            here,
            problems,
            models=models,
            providers=providers,
            buckets=buckets,
            guardrails=guardrails,
            source=sources[index] if sources is not None else source,
            position=index,
        )
        if rule is None:
            continue
        if rule.rule_id in seen:
            problems.add(
                f"{here}.id", f"duplicate rule id '{rule.rule_id}' (also at {seen[rule.rule_id]})"
            )
        seen[rule.rule_id] = here
        compiled.append(rule)
    if problems.items:
        raise RuleError(problems.items)
    return RuleSet(compiled)


def check_rules(documents: Sequence[Any], **options: Any) -> list[str]:
    """Every problem with `documents`; empty when they compile."""
    try:
        compile_rules(documents, **options)
    except RuleError as error:
        return error.problems
    return []


def normalise_rule(document: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical JSON form of a (valid) rule: every top-level field present, in one order."""
    return {
        "id": document.get("id"),
        "name": document.get("name") or document.get("id"),
        "description": document.get("description") or "",
        "priority": document.get("priority", DEFAULT_PRIORITY),
        "enabled": document.get("enabled", True),
        "continue": document.get("continue", False),
        "timezone": document.get("timezone") or "UTC",
        "when": _plain(document.get("when") or {}),
        "then": _plain(document.get("then") or {}),
    }


def _plain(value: Any) -> Any:
    """YAML-loaded values (string subclasses, tuples) as plain JSON types."""
    return msgspec.json.decode(msgspec.json.encode(value))


def _compile_rule(
    document: Any,
    path: str,
    problems: Problems,
    *,
    models: Collection[str] | None,
    providers: Collection[str] | None,
    buckets: Collection[str] | None,
    guardrails: Collection[str] | None,
    source: str,
    position: int,
) -> CompiledRule | None:
    if not isinstance(document, Mapping):
        problems.add(path, "a rule is a mapping with 'id', 'when' and 'then'")
        return None
    for key in document:
        if key not in RULE_FIELDS:
            close = difflib.get_close_matches(str(key), RULE_FIELDS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            problems.add(f"{path}.{key}", f"unknown rule field{hint}")
    rule_id = document.get("id")
    if not isinstance(rule_id, str) or not RULE_ID.fullmatch(rule_id):
        problems.add(
            f"{path}.id",
            "required: lowercase letters, digits, '.', '_' or '-', at most 128 characters",
        )
        rule_id = f"invalid-{position}"
    name = document.get("name", rule_id)
    if not isinstance(name, str) or not name or len(name) > 256:
        problems.add(f"{path}.name", "a non-empty name of at most 256 characters")
        name = rule_id
    description = document.get("description", "")
    if not isinstance(description, str):
        problems.add(f"{path}.description", "a string")
    priority = document.get("priority", DEFAULT_PRIORITY)
    if isinstance(priority, bool) or not isinstance(priority, int) or abs(priority) > 1_000_000:
        problems.add(f"{path}.priority", f"an integer (lower runs first), got {priority!r}")
        priority = DEFAULT_PRIORITY
    enabled = _flag(document, "enabled", True, path, problems)
    keep_going = _flag(document, "continue", False, path, problems)
    zone = _zone(document.get("timezone"), f"{path}.timezone", problems)
    when = document.get("when")
    deepest = too_deep(when, f"{path}.when")
    if deepest is None:
        condition = compile_condition(when, f"{path}.when", problems, zone)
    else:
        problems.add(
            deepest, f"conditions nest deeper than {MAX_DEPTH} levels of 'all', 'any' and 'not'"
        )
        condition = ALWAYS
    if "then" not in document:
        problems.add(path, "missing 'then': a rule needs at least one action")
    actions = compile_actions(
        document.get("then"),
        f"{path}.then",
        problems,
        models=models,
        providers=providers,
        buckets=buckets,
        guardrails=guardrails,
    )
    return CompiledRule(
        rule_id=rule_id,
        name=name,
        priority=priority,
        position=position,
        enabled=enabled,
        keep_going=keep_going,
        condition=condition,
        actions=actions,
        source=source,
        document=document,
    )


def _flag(
    document: Mapping[str, Any], key: str, default: bool, path: str, problems: Problems
) -> bool:
    value = document.get(key, default)
    if not isinstance(value, bool):
        problems.add(f"{path}.{key}", f"true or false, got {value!r}")
        return default
    return value


def _zone(value: Any, path: str, problems: Problems) -> ZoneInfo | None:
    if value is None or value == "UTC":
        return None
    if not isinstance(value, str):
        problems.add(path, "an IANA time zone name like 'Europe/Berlin'")
        return None
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        shown = value if len(value) <= 64 else f"{value[:64]}..."
        problems.add(path, f"unknown time zone '{shown}'")
        return None

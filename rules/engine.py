"""Evaluating compiled rules against a request, and what their matches add up to.

Rules run in order of `priority` (lower first; ties keep their order of definition, config file
rules before database rules). The first rule that matches ends the evaluation unless it says
`continue: true`; `deny` always ends it. When several matching rules act on the same thing, the
earlier rule wins (`route`, `fallbacks`, `set` keys, `cache`, `guardrails`, `budget`), caps take
the lowest value, and tags add up.
"""

from __future__ import annotations

import random
import time
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from rules.actions import Actions, CachePolicy, Deny, RouteTarget
from rules.codegen import generate
from rules.conditions import Condition, fields_read
from rules.context import RequestContext


class CompiledRule:
    __slots__ = (
        "actions",
        "actions_record",
        "condition",
        "document",
        "enabled",
        "fields",
        "keep_going",
        "name",
        "position",
        "priority",
        "rule_id",
        "source",
        "test",
    )

    def __init__(
        self,
        *,
        rule_id: str,
        name: str,
        priority: int,
        position: int,
        enabled: bool,
        keep_going: bool,
        condition: Condition,
        actions: Actions,
        source: str,
        document: Mapping[str, Any],
    ) -> None:
        self.rule_id = rule_id
        self.name = name
        self.priority = priority
        self.position = position
        self.enabled = enabled
        self.keep_going = keep_going
        self.condition = condition
        self.test = condition.test
        self.fields = frozenset(fields_read(document.get("when")))
        """The field names the condition mentions."""
        self.actions = actions
        self.source = source
        self.document = document
        self.actions_record = self.describe_actions()

    def describe_actions(self) -> dict[str, Any]:
        """The rule's actions as JSON, for decision records (defaults left out)."""
        encoded: dict[str, Any] = msgspec.to_builtins(self.actions)
        # An empty `fallbacks` or `guardrails` list is an action ("none"); other empties are not.
        return {
            k: v
            for k, v in encoded.items()
            if v is not None and v is not False and (v or k in ("fallbacks", "guardrails"))
        }


class RuleMatch(msgspec.Struct, frozen=True, kw_only=True):
    rule_id: str
    name: str
    source: str
    evidence: list[str]
    actions: dict[str, Any]


class Evaluation(msgspec.Struct, kw_only=True):
    """What the matching rules decided for one request."""

    matched: list[RuleMatch] = msgspec.field(default_factory=list)
    evaluated: int = 0
    route: RouteTarget | None = None
    route_reason: str | None = None
    route_rule: str | None = None
    fallbacks: tuple[str, ...] | None = None
    set: dict[str, Any] = msgspec.field(default_factory=dict)
    cap: dict[str, float] = msgspec.field(default_factory=dict)
    deny: Deny | None = None
    deny_rule: str | None = None
    tags: list[str] = msgspec.field(default_factory=list)
    cache: CachePolicy | None = None
    guardrails: tuple[str, ...] | None = None
    budget: str | None = None
    elapsed_us: float = 0.0

    @property
    def rule_ids(self) -> list[str]:
        return [match.rule_id for match in self.matched]

    def effects(self) -> dict[str, Any]:
        """The combined outcome, as JSON, for the summary decision and simulation."""
        out: dict[str, Any] = {}
        if self.deny is not None:
            out["deny"] = msgspec.to_builtins(self.deny)
        if self.route is not None:
            out["route"] = self.route.name
        for name in ("fallbacks", "guardrails", "budget"):
            value = getattr(self, name)
            if value is not None:
                out[name] = list(value) if isinstance(value, tuple) else value
        if self.set:
            out["set"] = self.set
        if self.cap:
            out["cap"] = self.cap
        if self.tags:
            out["tags"] = self.tags
        if self.cache is not None:
            out["cache"] = msgspec.to_builtins(self.cache)
        return out


class RuleSet:
    """Compiled rules in evaluation order. Immutable: a reload builds and swaps a new one."""

    def __init__(self, rules: Iterable[CompiledRule] = ()) -> None:
        ordered = sorted(
            rules, key=lambda r: (r.priority, 0 if r.source == "config" else 1, r.position)
        )
        self.rules: tuple[CompiledRule, ...] = tuple(ordered)
        active = [r for r in ordered if r.enabled]
        self._active_count = len(active)
        self.reads_budget = any(
            field.startswith("budget.") for rule in active for field in rule.fields
        )
        """Whether a rule in force reads `budget.*`: only then does the gateway look spend up."""
        self._evaluate = generate(active)

    def __len__(self) -> int:
        return len(self.rules)

    @property
    def active(self) -> int:
        return self._active_count

    def get(self, rule_id: str) -> CompiledRule | None:
        for rule in self.rules:
            if rule.rule_id == rule_id:
                return rule
        return None

    def evaluate(self, ctx: RequestContext) -> Evaluation:
        started = time.perf_counter()
        hits, evaluated = self._evaluate(ctx)
        result = _combine(hits, ctx) if hits else Evaluation()
        result.evaluated = evaluated
        result.elapsed_us = (time.perf_counter() - started) * 1e6
        return result


def _combine(hits: list[CompiledRule], ctx: RequestContext) -> Evaluation:
    result = Evaluation()
    for rule in hits:
        actions = rule.actions
        result.matched.append(
            RuleMatch(
                rule_id=rule.rule_id,
                name=rule.name,
                source=rule.source,
                evidence=rule.condition.explain(ctx),
                actions=rule.actions_record,
            )
        )
        if actions.deny is not None:
            result.deny = actions.deny
            result.deny_rule = rule.rule_id
        if actions.route and result.route is None:
            result.route, result.route_reason = _choose(rule, actions, ctx)
            result.route_rule = rule.rule_id
        if actions.fallbacks is not None and result.fallbacks is None:
            result.fallbacks = actions.fallbacks
        for key, value in actions.set.items():
            result.set.setdefault(key, value)
        for key, limit in actions.cap.items():
            current = result.cap.get(key)
            result.cap[key] = limit if current is None else min(current, limit)
        for tag in actions.tags:
            if tag not in result.tags:
                result.tags.append(tag)
        if actions.cache is not None and result.cache is None:
            result.cache = actions.cache
        if actions.guardrails is not None and result.guardrails is None:
            result.guardrails = actions.guardrails
        if actions.budget is not None and result.budget is None:
            result.budget = actions.budget
    return result


def _choose(rule: CompiledRule, actions: Actions, ctx: RequestContext) -> tuple[RouteTarget, str]:
    targets = actions.route
    if len(targets) == 1:
        return targets[0], f"rule '{rule.rule_id}' routes to {targets[0].name}"
    total = sum(t.weight for t in targets)
    if actions.sticky and ctx.user:
        # The same end user lands on the same side of the split on every worker and restart.
        point = zlib.crc32(f"{rule.rule_id}\x00{ctx.user}".encode()) / 0x1_0000_0000
        how = "sticky for this end user"
    else:
        point = random.random()
        how = "random"
    position = point * total
    running = 0.0
    chosen = targets[-1]
    for target in targets:
        running += target.weight
        if position < running:
            chosen = target
            break
    split = ":".join(f"{t.name}={t.weight:g}" for t in targets)
    return chosen, f"rule '{rule.rule_id}' split {split} ({how}) chose {chosen.name}"


def apply_parameters(payload: dict[str, Any], evaluation: Evaluation) -> dict[str, Any]:
    """Apply `set` and `cap` to the request body in place; return what changed (old → new).

    A cap on `max_tokens` applies to `max_completion_tokens` instead when the request uses that.
    A cap on a parameter the request did not send sets it, so the limit holds either way.
    """
    changes: dict[str, Any] = {}
    for key, value in evaluation.set.items():
        old = payload.get(key)
        if old != value:
            payload[key] = value
            changes[key] = {"from": old, "to": value}
    for key, limit in evaluation.cap.items():
        target = key
        if (
            key == "max_tokens"
            and "max_tokens" not in payload
            and "max_completion_tokens" in payload
        ):
            target = "max_completion_tokens"
        old = payload.get(target)
        capped: float = int(limit) if float(limit).is_integer() else limit
        if isinstance(old, bool) or not isinstance(old, int | float) or old > capped:
            payload[target] = capped
            changes[target] = {"from": old, "to": capped}
    return changes

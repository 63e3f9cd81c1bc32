"""Replaying a rule set against recorded requests: its effect on history before it goes live.

Each recorded request (a `traces` row joined with its final successful AI interaction, see
`telemetry.queries.replay_history`) is rebuilt as the context the rules saw, evaluated, and
compared with what was recorded: which rules match, which requests would be denied, how the
model mix moves, and what the same tokens would cost on the new route.

What the record cannot tell is reported, never guessed:

- Fields that are not recorded read as absent, and every request on which an evaluated rule read
  one is counted (`unavailable`): request headers and budget percentages are never recorded, the
  prompt only when content is stored. Such a rule's result on that request is uncertain.
- A cost the price table cannot give (unknown price, no token counts) is counted apart
  (`unknown_before`, `unknown_after`) and left out of the comparison, never taken as 0.
- Weighted splits count each request by the split's weights (its expected share) instead of a
  random draw; a sticky split with a known end user counts the side that user hashes to, as the
  gateway would choose. A public model with several deployments is priced by the same expected
  shares of its deployments.
- The same token counts are priced on the new route: another model's tokenizer and answer
  length would differ.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Final, TypeVar

import msgspec

from rules.actions import RouteTarget
from rules.context import RequestContext
from rules.engine import CompiledRule, Evaluation, RuleSet
from rules.simulate import RouteCatalog, shares

SPLIT_METHOD: Final = (
    "expected share: a weighted split counts each request by the split's weights; a sticky "
    "split with a known end user counts the side that user is hashed to"
)
MONEY_QUANTUM: Final = Decimal("1e-10")
K = TypeVar("K")


# --- reading recorded requests ------------------------------------------------------------------


class _Unrecorded(Mapping[str, Any]):
    """Values a trace does not keep (headers, budget percentages): reads answer absent and are
    noted as `<prefix><name>`."""

    __slots__ = ("_missing", "_prefix")

    def __init__(self, prefix: str, missing: set[str]) -> None:
        self._prefix = prefix
        self._missing = missing

    def __getitem__(self, name: str) -> Any:
        self._missing.add(self._prefix + name)
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


class ReplayContext(RequestContext):
    """A context rebuilt from a trace, noting every read of a field the trace did not keep."""

    __slots__ = ("missing", "prompt_recorded")

    missing: set[str]
    prompt_recorded: bool

    @property
    def prompt(self) -> str | None:
        if not self.prompt_recorded:
            self.missing.add("prompt")
            return None
        return super().prompt


def replay_context(row: Mapping[str, Any]) -> ReplayContext:
    """The context the rules saw for a recorded request, as far as the record keeps it."""
    features = dict(row.get("features") or {})
    if not features.get("model") and row.get("requested_model"):
        features["model"] = row["requested_model"]
    if features.get("user") is None and row.get("end_user") is not None:
        features["user"] = row["end_user"]
    chat = row.get("route") != "/v1/embeddings"
    stored = row.get("prompt")
    context = ReplayContext.from_features(
        features,
        tags=list(row.get("tags") or ()),
        metadata=row.get("metadata") or {},
        key=row.get("api_key_id"),
        key_name=row.get("key_name"),
        workspace=row.get("workspace_id"),
        now=_epoch(row.get("started_at")),
        messages=stored if chat else None,
    )
    assert isinstance(context, ReplayContext)
    context.missing = set()
    # An embeddings request has no messages, so its prompt is known to be absent.
    context.prompt_recorded = not chat or stored is not None
    context.headers = _Unrecorded("headers.", context.missing)
    context.budget = _Unrecorded("budget.", context.missing)
    return context


def _epoch(value: Any) -> float | None:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def reads_prompt(ruleset: RuleSet) -> bool:
    """Whether any rule may read the prompt: only then are stored prompts worth loading."""
    return any("prompt" in rule.fields for rule in ruleset.rules)


# --- the report -------------------------------------------------------------------------------


class RuleReport(msgspec.Struct, kw_only=True):
    rule_id: str
    name: str
    source: str
    enabled: bool
    priority: int
    reads: list[str]
    matched: int
    """Requests the rule matched in evaluation order (its actions applied)."""
    matched_recorded: int
    """Requests whose recorded decisions show this rule id matching at the time."""
    condition_held: int
    """Requests its condition holds for, whether or not evaluation reached it."""
    shadowed: int
    """Requests its condition holds for that it did not match: an earlier rule stopped the
    evaluation, or the rule is disabled."""
    routed: int
    denied: int
    unavailable: int
    """Requests on which its condition read a field the record does not keep."""
    unavailable_fields: dict[str, int]


class MixEntry(msgspec.Struct, kw_only=True):
    name: str
    """A route (public model, or `provider/model`) or a deployment (`provider/model`)."""
    requests: float
    share: float


class Mix(msgspec.Struct, kw_only=True):
    before: list[MixEntry]
    after: list[MixEntry]


class RouteChange(msgspec.Struct, kw_only=True):
    from_: str | None = msgspec.field(name="from")
    """None: the request was denied by a rule."""
    to: str | None
    """None: the request would be denied."""
    requests: float


class Denials(msgspec.Struct, kw_only=True):
    before: int
    after: int


class CostReport(msgspec.Struct, kw_only=True):
    before_usd: str
    after_usd: str
    difference_usd: str
    """after - before, over the compared requests only."""
    compared_requests: int
    unknown_before: int
    unknown_after: int


class Unavailable(msgspec.Struct, kw_only=True):
    requests: int
    """Requests on which a rule the engine evaluated read a field the record does not keep."""
    fields: dict[str, int]


class ReplayReport(msgspec.Struct, kw_only=True):
    requests: int
    recorded_evaluations: int
    """Requests with a recorded rule evaluation (rules were active when they were served)."""
    rules: list[RuleReport]
    denied: Denials
    requests_rerouted: float
    model_mix: Mix
    deployment_mix: Mix
    changes: list[RouteChange]
    cost: CostReport
    unavailable: Unavailable
    split_method: str = SPLIT_METHOD


# --- replaying --------------------------------------------------------------------------------


class _RuleTally:
    __slots__ = (
        "denied",
        "fields",
        "held",
        "matched",
        "recorded",
        "routed",
        "shadowed",
        "unavailable",
    )

    def __init__(self) -> None:
        self.matched = 0
        self.recorded = 0
        self.held = 0
        self.shadowed = 0
        self.routed = 0
        self.denied = 0
        self.unavailable = 0
        self.fields: Counter[str] = Counter()


class Replayer:
    """Replays requests one at a time (`add`), so a caller can pause between batches; `report`
    sums up what it has seen so far."""

    def __init__(self, ruleset: RuleSet, catalog: RouteCatalog | None = None) -> None:
        self.ruleset = ruleset
        self.catalog = catalog
        self._active = [rule for rule in ruleset.rules if rule.enabled]
        self._tallies = {rule.rule_id: _RuleTally() for rule in ruleset.rules}
        self._requests = 0
        self._recorded = 0
        self._denied_before = 0
        self._denied_after = 0
        self._models: tuple[dict[str, Decimal], dict[str, Decimal]] = ({}, {})
        self._deployments: tuple[dict[str, Decimal], dict[str, Decimal]] = ({}, {})
        self._changes: dict[tuple[str | None, str | None], Decimal] = {}
        self._cost_before = Decimal(0)
        self._cost_after = Decimal(0)
        self._compared = 0
        self._unknown_before = 0
        self._unknown_after = 0
        self._uncertain = 0
        self._uncertain_fields: Counter[str] = Counter()

    def add(self, row: Mapping[str, Any]) -> None:
        context = replay_context(row)
        evaluation = self.ruleset.evaluate(context)
        self._requests += 1
        self._tally_rules(context, evaluation, row)
        self._tally_route(context, evaluation, row)

    def _tally_rules(
        self, context: ReplayContext, evaluation: Evaluation, row: Mapping[str, Any]
    ) -> None:
        matched = set(evaluation.rule_ids)
        reached = {id(rule) for rule in self._active[: evaluation.evaluated]}
        uncertain: set[str] = set()
        for rule in self.ruleset.rules:
            tally = self._tallies[rule.rule_id]
            context.missing.clear()
            if rule.test(context):
                tally.held += 1
                if rule.rule_id not in matched:
                    tally.shadowed += 1
            if context.missing:
                tally.unavailable += 1
                tally.fields.update(context.missing)
                if id(rule) in reached:
                    uncertain |= context.missing
        context.missing.clear()
        if uncertain:
            self._uncertain += 1
            self._uncertain_fields.update(uncertain)
        for rule_id in matched:
            self._tallies[rule_id].matched += 1
        if evaluation.route_rule is not None:
            self._tallies[evaluation.route_rule].routed += 1
        if evaluation.deny_rule is not None:
            self._tallies[evaluation.deny_rule].denied += 1
        recorded = row.get("rules_matched")
        if recorded is not None:
            self._recorded += 1
            for rule_id in set(recorded):
                if rule_id in self._tallies:
                    self._tallies[rule_id].recorded += 1

    def _tally_route(
        self, context: ReplayContext, evaluation: Evaluation, row: Mapping[str, Any]
    ) -> None:
        denied_before = bool(row.get("rules_denied"))
        requested = str(row.get("requested_model") or context.model)
        before: str | None = None
        deployment = _deployment(row)
        cost_before: Decimal | None = Decimal(0) if denied_before else _money(row.get("cost_usd"))
        if denied_before:
            self._denied_before += 1
        else:
            before = str(row.get("served_model") or row.get("rules_route") or requested)
            _add(self._models[0], before, Decimal(1))
            if deployment is not None:
                _add(self._deployments[0], deployment, Decimal(1))

        cost_after: Decimal | None
        if evaluation.deny is not None:
            self._denied_after += 1
            cost_after = Decimal(0)
            if before is not None:
                _add(self._changes, (before, None), Decimal(1))
        else:
            cost_after = Decimal(0)
            for target, share in self._targets(context, evaluation, row, requested):
                name = before if target is None else target.name
                _add(self._models[1], name or requested, share)
                if name is not None and name == before:
                    if deployment is not None:
                        _add(self._deployments[1], deployment, share)
                    part = None if cost_before is None else cost_before * share
                else:
                    chosen = target or RouteTarget(model=requested)
                    _add(self._changes, (before, chosen.name), share)
                    part = self._priced(chosen, share, row)
                cost_after = None if cost_after is None or part is None else cost_after + part

        if cost_before is None:
            self._unknown_before += 1
        if cost_after is None:
            self._unknown_after += 1
        if cost_before is not None and cost_after is not None:
            self._compared += 1
            self._cost_before += cost_before
            self._cost_after += cost_after

    def _targets(
        self,
        context: ReplayContext,
        evaluation: Evaluation,
        row: Mapping[str, Any],
        requested: str,
    ) -> list[tuple[RouteTarget | None, Decimal]]:
        """Where the request goes, with shares; None: where it went (no rule routes it now)."""
        if evaluation.route is not None and evaluation.route_rule is not None:
            rule = self.ruleset.get(evaluation.route_rule)
            if rule is not None and _split_by_share(rule, context):
                targets = rule.actions.route
                return list(zip(targets, shares([t.weight for t in targets]), strict=True))
            return [(evaluation.route, Decimal(1))]
        if row.get("rules_route") or row.get("rules_denied"):
            # A rule decided its route at the time and none does now: it goes where it asked.
            return [(RouteTarget(model=requested), Decimal(1))]
        return [(None, Decimal(1))]

    def _priced(
        self, target: RouteTarget, share: Decimal, row: Mapping[str, Any]
    ) -> Decimal | None:
        deployments = self.catalog.deployments(target) if self.catalog is not None else None
        if not deployments:
            return None
        prompt = row.get("prompt_tokens")
        completion = row.get("completion_tokens") if row.get("route") != "/v1/embeddings" else 0
        cached = row.get("cached_tokens")
        total: Decimal | None = Decimal(0)
        weights = shares([d.weight for d in deployments])
        for found, weight in zip(deployments, weights, strict=True):
            _add(self._deployments[1], found.id, share * weight)
            cost = None if found.price is None else found.price.cost(prompt, completion, cached)
            total = None if total is None or cost is None else total + cost * share * weight
        return total

    def report(self) -> ReplayReport:
        denied = Denials(before=self._denied_before, after=self._denied_after)
        return ReplayReport(
            requests=self._requests,
            recorded_evaluations=self._recorded,
            rules=[self._rule_report(rule) for rule in self.ruleset.rules],
            denied=denied,
            requests_rerouted=_count(sum(self._changes.values(), Decimal(0))),
            model_mix=Mix(before=_mix(self._models[0]), after=_mix(self._models[1])),
            deployment_mix=Mix(before=_mix(self._deployments[0]), after=_mix(self._deployments[1])),
            changes=[
                RouteChange(from_=old, to=new, requests=_count(amount))
                for (old, new), amount in sorted(
                    self._changes.items(), key=lambda item: (-item[1], str(item[0]))
                )
            ],
            cost=CostReport(
                before_usd=money(self._cost_before),
                after_usd=money(self._cost_after),
                difference_usd=money(self._cost_after - self._cost_before),
                compared_requests=self._compared,
                unknown_before=self._unknown_before,
                unknown_after=self._unknown_after,
            ),
            unavailable=Unavailable(
                requests=self._uncertain, fields=dict(sorted(self._uncertain_fields.items()))
            ),
        )

    def _rule_report(self, rule: CompiledRule) -> RuleReport:
        tally = self._tallies[rule.rule_id]
        return RuleReport(
            rule_id=rule.rule_id,
            name=rule.name,
            source=rule.source,
            enabled=rule.enabled,
            priority=rule.priority,
            reads=sorted(rule.fields),
            matched=tally.matched,
            matched_recorded=tally.recorded,
            condition_held=tally.held,
            shadowed=tally.shadowed,
            routed=tally.routed,
            denied=tally.denied,
            unavailable=tally.unavailable,
            unavailable_fields=dict(sorted(tally.fields.items())),
        )


def replay(
    ruleset: RuleSet, rows: Iterable[Mapping[str, Any]], catalog: RouteCatalog | None = None
) -> ReplayReport:
    replayer = Replayer(ruleset, catalog)
    for row in rows:
        replayer.add(row)
    return replayer.report()


# --- helpers ----------------------------------------------------------------------------------


def _split_by_share(rule: CompiledRule, context: RequestContext) -> bool:
    """Whether the rule's route is a split to count by weights (the engine drew at random)."""
    return len(rule.actions.route) > 1 and not (rule.actions.sticky and context.user)


def _deployment(row: Mapping[str, Any]) -> str | None:
    provider = row.get("served_provider") or row.get("provider")
    model = row.get("served_provider_model") or row.get("provider_model")
    return f"{provider}/{model}" if provider and model else None


def _add(counts: dict[K, Decimal], key: K, amount: Decimal) -> None:
    counts[key] = counts.get(key, Decimal(0)) + amount


def _money(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value
    return Decimal(str(value))


def money(value: Decimal) -> str:
    """Exact dollars in plain notation, to the ten decimal places the database keeps."""
    text = format(value.quantize(MONEY_QUANTUM, rounding=ROUND_HALF_EVEN).normalize(), "f")
    return "0" if text in ("-0", "") else text


def _count(value: Decimal) -> float:
    """A request count: whole unless weighted splits made it fractional."""
    if value == value.to_integral_value():
        return int(value)
    return round(float(value), 6)


def _mix(counts: Mapping[str, Decimal]) -> list[MixEntry]:
    total = sum(counts.values(), Decimal(0))
    return [
        MixEntry(
            name=name,
            requests=_count(amount),
            share=round(float(amount / total), 6) if total else 0.0,
        )
        for name, amount in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        if amount
    ]

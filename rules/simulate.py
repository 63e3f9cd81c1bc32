"""What the steering rules would do with one request, without sending it anywhere.

The context is built exactly as the proxy builds it (`routing_features` from the body, then
`RequestContext.from_features`), the rules are evaluated, and `set`/`cap` are applied to a copy of
the body. Nothing is called: the route is reported as the proxy would resolve it, with the
deployments and fallbacks the running config gives it (a `RouteCatalog`).

Candidate rules (not yet stored) are compiled against the running config's models and providers;
with `merge` they join the current rules, replacing current rules of the same id.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

import msgspec

from providers.pricing import ModelPrice, PriceTable
from rules.actions import RouteTarget
from rules.compiler import compile_rules
from rules.context import RequestContext, routing_features
from rules.engine import Evaluation, RuleMatch, RuleSet, apply_parameters
from telemetry import times

CANDIDATE_SOURCE: Final = "candidate"
OPERATIONS: Final = ("chat", "embeddings")


# --- what the running config knows about routes ------------------------------------------------


class CatalogDeployment(msgspec.Struct, frozen=True, kw_only=True):
    """One deployment of a route, with its share of the route's traffic and its price."""

    provider: str
    model: str
    weight: float = 1.0
    price: ModelPrice | None = None

    @property
    def id(self) -> str:
        return f"{self.provider}/{self.model}"


class CatalogModel(msgspec.Struct, frozen=True, kw_only=True):
    deployments: tuple[CatalogDeployment, ...]
    fallbacks: tuple[str, ...] = ()


class RouteCatalog:
    """The public models of the running config, and prices for routes straight to a provider.

    `weight` of a public model's deployment is its expected share of the model's traffic (the
    caller passes equal weights for strategies that do not split by weight).
    """

    def __init__(
        self, models: Mapping[str, CatalogModel], prices: PriceTable | None = None
    ) -> None:
        self.models = dict(models)
        self.prices = prices

    def __contains__(self, model: object) -> bool:
        return model in self.models

    def fallbacks(self, model: str) -> tuple[str, ...]:
        found = self.models.get(model)
        return found.fallbacks if found is not None else ()

    def deployments(self, target: RouteTarget) -> tuple[CatalogDeployment, ...] | None:
        """Where a route target is served; None for a public model the config does not have."""
        if target.provider is not None:
            price = self.prices.lookup(target.model) if self.prices is not None else None
            return (CatalogDeployment(provider=target.provider, model=target.model, price=price),)
        found = self.models.get(target.model)
        return found.deployments if found is not None else None


# --- candidate rule sets -----------------------------------------------------------------------


def candidate_rules(
    current: RuleSet,
    documents: Sequence[Any],
    *,
    merge: bool = False,
    models: Collection[str] | None = None,
    providers: Collection[str] | None = None,
    buckets: Collection[str] | None = None,
    guardrails: Collection[str] | None = None,
) -> RuleSet:
    """The rule set to try: `documents` alone, or with `merge` added to `current` (a candidate
    replaces the current rule of the same id and keeps its place among equal priorities after
    the current rules). Raises `RuleError` with paths into `documents` (`rules[0].when...`)."""
    candidates = compile_rules(
        documents,
        models=models,
        providers=providers,
        buckets=buckets,
        guardrails=guardrails,
        source=CANDIDATE_SOURCE,
    )
    if not merge:
        return candidates
    replaced = {rule.rule_id for rule in candidates.rules}
    kept = [rule for rule in current.rules if rule.rule_id not in replaced]
    return compile_rules(
        [*(rule.document for rule in kept), *documents],
        models=models,
        providers=providers,
        buckets=buckets,
        guardrails=guardrails,
        sources=[*(rule.source for rule in kept), *([CANDIDATE_SOURCE] * len(documents))],
    )


# --- inputs ------------------------------------------------------------------------------------


def parse_time(value: Any) -> float:
    """Epoch seconds from an ISO 8601 text (no zone means UTC) or a number of epoch seconds;
    `telemetry.times.InvalidTime` (a ValueError) for anything else or out of range."""
    return times.parse_time(value).timestamp()


# --- the result --------------------------------------------------------------------------------


class SimulatedDenial(msgspec.Struct, frozen=True, kw_only=True):
    status: int
    message: str
    code: str
    rule_id: str | None


class SplitTarget(msgspec.Struct, frozen=True, kw_only=True):
    model: str
    provider: str | None
    weight: float


class RoutedDeployment(msgspec.Struct, frozen=True, kw_only=True):
    provider: str
    model: str
    weight: float
    priced: bool


class SimulatedRoute(msgspec.Struct, frozen=True, kw_only=True):
    requested_model: str
    name: str
    """The route the request takes: a public model, or `provider/model` for a direct route."""
    model: str
    provider: str | None
    """Set only when a rule routes straight to one provider's model."""
    routed_by: str | None
    reason: str | None
    split: list[SplitTarget] | None
    """A rule's weighted split, whose one draw `name` shows (sticky per end user when the rule
    says so and the request has a `user`, else random)."""
    exists: bool
    """False when the gateway has no such public model: the request would get a 404."""
    deployments: list[RoutedDeployment]
    fallbacks: list[str]
    fallbacks_from: str
    """`rule` (a rule's `fallbacks`), `model` (the model's configured ones) or `none`."""


class Simulation(msgspec.Struct, kw_only=True):
    rules_total: int
    rules_active: int
    rules_evaluated: int
    matched: list[RuleMatch]
    effects: dict[str, Any]
    denied: SimulatedDenial | None
    tags: list[str]
    request: dict[str, Any]
    parameters_changed: dict[str, Any]
    route: SimulatedRoute | None
    evaluation_us: float


# --- simulation --------------------------------------------------------------------------------


def simulate(
    ruleset: RuleSet,
    body: Mapping[str, Any],
    *,
    operation: str = "chat",
    tags: Sequence[str] = (),
    metadata: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    key: str | None = None,
    key_name: str | None = None,
    workspace: str | None = None,
    end_user: str | None = None,
    at: float | None = None,
    budget: Mapping[str, float | None] | None = None,
    catalog: RouteCatalog | None = None,
    body_size: int | None = None,
) -> Simulation:
    """Evaluate `ruleset` for one request body as the proxy would, without calling a provider.

    `end_user` overrides the body's `user`; `at` (epoch seconds) defaults to now; `body_size`
    (the request's size in bytes, for `estimated_input_tokens`) defaults to the body's compact
    JSON encoding. Raises ValueError when the body has no model or the operation is unknown.
    """
    if operation not in OPERATIONS:
        raise ValueError(f"operation must be one of {', '.join(OPERATIONS)}")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ValueError("the request needs a model")
    payload: dict[str, Any] = copy.deepcopy(dict(body))
    size = body_size if body_size is not None else len(msgspec.json.encode(payload))
    features = routing_features(payload, model, size)
    if end_user is not None:
        features["user"] = end_user
    context = RequestContext.from_features(
        features,
        tags=list(tags),
        metadata=metadata,
        headers={name.lower(): value for name, value in (headers or {}).items()},
        key=key,
        key_name=key_name,
        workspace=workspace,
        now=at if at is not None else datetime.now(UTC).timestamp(),
        budget=budget,
        messages=payload.get("messages"),
        operation=operation,
    )
    evaluation = ruleset.evaluate(context)
    denial = None
    route = None
    changes: dict[str, Any] = {}
    if evaluation.deny is not None:
        deny = evaluation.deny
        denial = SimulatedDenial(
            status=deny.status, message=deny.message, code=deny.code, rule_id=evaluation.deny_rule
        )
    else:
        changes = apply_parameters(payload, evaluation)
        route = _route(model, ruleset, evaluation, catalog)
    final_tags = list(tags)
    for tag in evaluation.tags:
        if tag not in final_tags:
            final_tags.append(tag)
    return Simulation(
        rules_total=len(ruleset),
        rules_active=ruleset.active,
        rules_evaluated=evaluation.evaluated,
        matched=evaluation.matched,
        effects=evaluation.effects(),
        denied=denial,
        tags=final_tags,
        request=payload,
        parameters_changed=changes,
        route=route,
        evaluation_us=round(evaluation.elapsed_us, 3),
    )


def _route(
    requested: str, ruleset: RuleSet, evaluation: Evaluation, catalog: RouteCatalog | None
) -> SimulatedRoute:
    target: RouteTarget = evaluation.route or RouteTarget(model=requested)
    split = None
    if evaluation.route_rule is not None:
        rule = ruleset.get(evaluation.route_rule)
        if rule is not None and len(rule.actions.route) > 1:
            split = [
                SplitTarget(model=t.model, provider=t.provider, weight=t.weight)
                for t in rule.actions.route
            ]
    found = catalog.deployments(target) if catalog is not None else None
    exists = target.provider is not None or catalog is None or found is not None
    if evaluation.fallbacks is not None:
        fallbacks, origin = list(evaluation.fallbacks), "rule"
    elif target.provider is None and catalog is not None and catalog.fallbacks(target.model):
        fallbacks, origin = list(catalog.fallbacks(target.model)), "model"
    else:
        fallbacks, origin = [], "none"
    return SimulatedRoute(
        requested_model=requested,
        name=target.name,
        model=target.model,
        provider=target.provider,
        routed_by=evaluation.route_rule,
        reason=evaluation.route_reason,
        split=split,
        exists=exists,
        deployments=[
            RoutedDeployment(
                provider=d.provider, model=d.model, weight=d.weight, priced=d.price is not None
            )
            for d in found or ()
        ],
        fallbacks=fallbacks,
        fallbacks_from=origin,
    )


def shares(weights: Sequence[float]) -> list[Decimal]:
    """Each weight's exact share of their total, as a Decimal (equal shares if all are 0)."""
    exact = [Decimal(repr(float(w))) for w in weights]
    total = sum(exact, Decimal(0))
    if total <= 0:
        return [Decimal(1) / len(exact) for _ in exact] if exact else []
    return [w / total for w in exact]

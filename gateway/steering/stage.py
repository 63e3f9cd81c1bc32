"""The steering stage: the rules in force run over the request (deny, change parameters, tag,
pick the route), and each evaluation is recorded as decisions with their reasons."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from gateway.errors import GatewayError
from gateway.exchange import Exchange, Receive, Send
from gateway.upstream.routing import Router
from rules.context import RequestContext
from rules.engine import Evaluation, RuleSet, apply_parameters
from telemetry import metrics

if TYPE_CHECKING:
    from gateway.limits.admission import Admission

_rule_matches = metrics.Labelled(metrics.rule_matches_total)
_rules_denied = metrics.Labelled(metrics.rules_denied_total)
_rule_evaluation = metrics.rule_evaluation_seconds


class RuleSource(Protocol):
    """Where the steering rules in force come from (see `gateway.steering.rulebook.Rulebook`)."""

    @property
    def current(self) -> RuleSet: ...


class SteeringStage:
    """Sets `exchange.steered` (and `exchange.fallbacks` when a rule names them)."""

    __slots__ = ("admission", "router", "rules")

    def __init__(
        self, router: Router, rules: RuleSource | None, admission: Admission | None
    ) -> None:
        self.router = router
        self.rules = rules
        self.admission = admission
        """Read for the budget a rule's condition may ask about."""

    async def run(self, exchange: Exchange, receive: Receive, send: Send) -> bool:
        """Run the steering rules: deny, change parameters, tag, and pick the route."""
        model = exchange.requested_model or ""
        ruleset = self.rules.current if self.rules is not None else None
        if ruleset is None or not ruleset.active:
            exchange.steered = self.router.resolve(model)
            return False
        payload = exchange.payload
        key = exchange.key
        context = RequestContext.from_features(
            exchange.features,
            tags=exchange.tags,
            metadata=exchange.metadata,
            headers=exchange.headers,
            key=key.key_id if key is not None else None,
            key_name=key.name if key is not None else None,
            workspace=key.workspace_id if key is not None else None,
            now=exchange.trace.start_wall,
            messages=payload.get("messages"),
            operation=exchange.operation,
        )
        if ruleset.reads_budget and self.admission is not None:
            context.budget = await self.admission.budget_percent(
                key, exchange.end_user, exchange.trace.start_wall
            )
        evaluation = ruleset.evaluate(context)
        exchange.steering = evaluation
        changes = apply_parameters(payload, evaluation) if not evaluation.deny else {}
        _rule_evaluation.observe(evaluation.elapsed_us / 1e6)
        record_rules(exchange, evaluation, changes)
        for tag in evaluation.tags:
            if tag not in exchange.tags:
                exchange.tags.append(tag)
        if evaluation.deny is not None:
            deny = evaluation.deny
            _rules_denied(evaluation.deny_rule or "").inc()
            raise GatewayError(
                deny.status,
                deny.message,
                type="rate_limit_error" if deny.status == 429 else "invalid_request_error",
                code=deny.code,
            )
        target = evaluation.route
        if target is None:
            exchange.steered = self.router.resolve(model)
        else:
            exchange.routed_by = evaluation.route_rule
            if target.provider is not None:
                exchange.steered = self.router.direct(target.provider, target.model)
            else:
                exchange.steered = self.router.resolve(target.model)
        exchange.fallbacks = evaluation.fallbacks
        return False


def record_rules(
    exchange: Exchange,
    evaluation: Evaluation,
    changes: dict[str, Any],
) -> None:
    trace = exchange.trace
    matched = evaluation.matched
    exchange.rules = [match.rule_id for match in matched]
    outcome = evaluation.effects()
    if changes:
        outcome["parameters_changed"] = changes
    if matched:
        reasoning = (
            f"{len(matched)} of {evaluation.evaluated} evaluated rules matched: "
            + ", ".join(exchange.rules)
        )
    else:
        reasoning = f"none of {evaluation.evaluated} rules matched"
    trace.add_decision(
        "rule_evaluation",
        "rules",
        input={
            "requested_model": exchange.requested_model,
            "rules_evaluated": evaluation.evaluated,
            "rules_matched": len(matched),
            "rules_not_matched": evaluation.evaluated - len(matched),
        },
        output=outcome,
        reasoning=reasoning,
        evaluation_us=evaluation.elapsed_us,
    )
    for match in matched:
        _rule_matches(match.rule_id).inc()
        trace.add_decision(
            "rule_evaluation",
            "rules",
            rule_id=match.rule_id,
            rule_name=match.name,
            input={"matched_on": match.evidence, "source": match.source},
            output=match.actions,
            reasoning="matched: " + "; ".join(match.evidence),
            evaluation_us=0.0,
        )

"""What a trace's row says about everything under it, worked out by the writer from the bundle.

Lists and filters read the trace row alone, so it carries a summary of the request's attempts,
decisions and guardrail findings: the deployment and tokens, the cost, the first token's wait,
whether the cache answered, the rules that matched and the strongest guardrail action. The
writer computes it when the bundle is written (off the request path, and again for bundles
replayed from spill files), so the request path pays nothing for it.

The recorded `status` is `ok`, `error` or `cancelled`; a request the gateway refused by its own
policy (no valid key, a model the key may not use, a rule's `deny`, a rate limit, a budget, a
guardrail's block) is stored as `denied`, so lists can tell refusals from failures.

Each decision gets an `outcome`, one word a list can filter and count by (`decision_outcome`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from telemetry.records import DecisionRecord, InteractionRecord, TraceBundle

TRACE_STATUSES: Final = ("ok", "error", "cancelled", "denied")
GUARDRAIL_ACTIONS: Final = ("block", "mask", "log")
"""Strongest first."""
_STRENGTH: Final = {
    action: len(GUARDRAIL_ACTIONS) - n for n, action in enumerate(GUARDRAIL_ACTIONS)
}

SUMMARY_COLUMNS: Final = (
    "deployment",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cost_usd",
    "ttft_ms",
    "cache_hit",
    "rules_matched",
    "guardrail_action",
    "guardrails_triggered",
)

# Error codes the gateway answers with when it refuses a request by policy and that no
# provider's answer can carry: refusals whose decision is recorded are found by the decision.
_REFUSED_BEFORE_ANY_DECISION: Final = frozenset({"missing_api_key", "invalid_api_key"})
_GUARDRAIL_BLOCK: Final = "guardrail_violation"
_REFUSING_TYPES: Final = frozenset({"rate_limit", "budget_check", "guardrail"})
_NO_ATTEMPT: Final = (None, None, None, None, None, None, False)

DECISION_OUTCOMES: Final = (
    "matched",
    "no_match",
    "denied",
    "selected",
    "unavailable",
    "allowed",
    "degraded",
    "soft_limit",
    "hit",
    "miss",
    "bypass",
    "pass",
    "blocked",
    "masked",
    "flagged",
    "error",
    "retried",
    "fell_back",
    "cooldown",
)


def _add(total: Any, value: Any) -> Any:
    if value is None:
        return total
    return value if total is None else total + value


def _attempts(interactions: list[InteractionRecord]) -> tuple[Any, ...]:
    """(deployment, prompt, completion and total tokens, cost, first token, cache hit)."""
    if len(interactions) == 1:  # most requests: one attempt, nothing to add up
        only = interactions[0]
        return (
            only.deployment,
            only.prompt_tokens,
            only.completion_tokens,
            only.total_tokens,
            only.cost_usd,
            only.ttft_ms if only.status == "ok" else None,
            only.cache_hit,
        )
    deployment: str | None = None
    last_attempt = answered_attempt = -1
    prompt = completion = total = cost = ttft = None
    cache_hit = False
    for interaction in interactions:
        attempt = interaction.attempt
        if attempt >= last_attempt:
            last_attempt = attempt
            deployment = interaction.deployment
        prompt = _add(prompt, interaction.prompt_tokens)
        completion = _add(completion, interaction.completion_tokens)
        total = _add(total, interaction.total_tokens)
        cost = _add(cost, interaction.cost_usd)
        if interaction.status == "ok" and attempt >= answered_attempt:
            answered_attempt = attempt
            ttft = interaction.ttft_ms
        cache_hit = cache_hit or interaction.cache_hit
    return deployment, prompt, completion, total, cost, ttft, cache_hit


def _matched_rules(decisions: list[DecisionRecord]) -> list[str]:
    rules: list[str] = []
    for decision in decisions:
        rule_id = decision.rule_id
        if rule_id is not None and decision.type == "rule_evaluation" and rule_id not in rules:
            rules.append(rule_id)
    return rules


def _refused_by_policy(bundle: TraceBundle, action: str | None) -> bool:
    """Whether a request that ended in an error was refused by the gateway's own policy."""
    error_type = bundle.trace.error_type
    if error_type in _REFUSED_BEFORE_ANY_DECISION and not bundle.interactions:
        return True
    if error_type == _GUARDRAIL_BLOCK and action == "block":
        return True
    for decision in bundle.decisions:
        kind = decision.type
        if kind == "rule_evaluation":
            if decision.rule_id is None and "deny" in decision.output:
                return True
        elif (
            kind in _REFUSING_TYPES
            and _outcome_of(kind, decision.component, decision.output) == "denied"
        ):
            return True
    return False


def summarise(bundle: TraceBundle) -> tuple[str, tuple[Any, ...]]:
    """The trace's status as stored and its summary values, in `SUMMARY_COLUMNS` order.

    Tokens and cost are summed over the attempts (None when none reported any); the deployment
    is the last attempt's, the time to first token the answering (last successful) attempt's.
    """
    deployment, prompt, completion, total, cost, ttft, cache_hit = (
        _attempts(bundle.interactions) if bundle.interactions else _NO_ATTEMPT
    )
    action: str | None = None
    guardrails: list[str] = []
    for violation in bundle.violations:
        if _STRENGTH.get(violation.action, 0) > _STRENGTH.get(action or "", 0):
            action = violation.action
        if violation.guardrail not in guardrails:
            guardrails.append(violation.guardrail)
    status = bundle.trace.status
    if status == "error" and _refused_by_policy(bundle, action):
        status = "denied"
    return status, (
        deployment,
        prompt,
        completion,
        total,
        cost,
        ttft,
        cache_hit,
        _matched_rules(bundle.decisions) if bundle.decisions else [],
        action,
        guardrails,
    )


def decision_outcome(decision: DecisionRecord) -> str | None:
    """One word for what a decision came to (one of `DECISION_OUTCOMES`), None for a type this
    version does not know. A rule evaluation's summary is `denied`, `matched` or `no_match`,
    each rule that matched `matched`."""
    if decision.type == "rule_evaluation":
        if decision.rule_id is not None:
            return "matched"
        if "deny" in decision.output:
            return "denied"
        return "matched" if decision.input.get("rules_matched") else "no_match"
    return _outcome_of(decision.type, decision.component, decision.output)


def _outcome_of(type: str, component: str, output: Mapping[str, Any]) -> str | None:
    if type in ("rate_limit", "budget_check"):
        if "soft_percent" in output:
            return "soft_limit"
        if output.get("allowed") is False:
            return "unavailable" if output.get("unavailable") else "denied"
        return "degraded" if output.get("degraded") else "allowed"
    if type == "guardrail":
        if component == "admission":
            return "denied" if output.get("allowed") is False else "allowed"
        outcome = output.get("outcome")
        return outcome if isinstance(outcome, str) and outcome in DECISION_OUTCOMES else None
    if type == "model_selection":
        return "selected" if output.get("deployment") else "unavailable"
    if type == "cache_decision":
        status = output.get("status")
        if isinstance(status, str) and status.lower() in DECISION_OUTCOMES:
            return status.lower()
        return None
    return _FIXED_OUTCOMES.get(type)


_FIXED_OUTCOMES: Final = {"retry": "retried", "fallback": "fell_back", "cooldown": "cooldown"}

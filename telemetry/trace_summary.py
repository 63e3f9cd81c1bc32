"""A trace's summary columns, computed from what lies under it.

The `traces` table repeats a few facts of its children (migration 0007) so lists and filters read
one row: the last attempt's deployment, tokens and cost summed over every attempt, the first
token's wait, whether the cache answered, the ids of the rules that matched, and the strongest
guardrail action with the names of the guardrails that found something. This module is the one
definition of those facts; whoever writes traces computes them here.
"""

from __future__ import annotations

from decimal import Decimal
from itertools import pairwise
from typing import Any

import msgspec

from telemetry.records import TraceBundle

SUMMARY_COLUMNS: tuple[str, ...] = (
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

GUARDRAIL_ACTION_STRENGTH: dict[str, int] = {"log": 1, "mask": 2, "block": 3}
"""block > mask > log: the summary keeps the strongest action any guardrail took."""


class TraceSummary(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    deployment: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    cost_usd: Decimal | None = None
    ttft_ms: float | None = None
    cache_hit: bool = False
    rules_matched: list[str] = msgspec.field(default_factory=list)
    guardrail_action: str | None = None
    guardrails_triggered: list[str] = msgspec.field(default_factory=list)

    def row(self) -> tuple[Any, ...]:
        """The values in `SUMMARY_COLUMNS` order."""
        return (
            self.deployment,
            self.prompt_tokens,
            self.completion_tokens,
            self.total_tokens,
            self.cost_usd,
            self.ttft_ms,
            self.cache_hit,
            self.rules_matched,
            self.guardrail_action,
            self.guardrails_triggered,
        )


def _add(total: Any, value: Any) -> Any:
    """Known values add up; None (unknown) adds nothing, and nothing known stays None."""
    if value is None:
        return total
    return value if total is None else total + value


def summarize(bundle: TraceBundle) -> TraceSummary:
    """The summary of one request's records.

    - `deployment`: the deployment of the last attempt (the highest attempt number), None when
      no provider was called; a cache hit's is `cache`.
    - tokens and `cost_usd`: summed over every attempt, failed ones included (a provider bills
      what it generated); None when no attempt reported any.
    - `ttft_ms`: the first attempt's time to first token that has one (only a streamed answer
      does).
    - `cache_hit`: an attempt was answered from the cache.
    - `rules_matched`: the rule ids of the `rule_evaluation` decisions, in decision order.
    - `guardrail_action`: the strongest action among the guardrail violations (block > mask >
      log), and `guardrails_triggered` the names of their guardrails, first finding first.
    """
    prompt = completion = total = cost = ttft = None
    cache_hit = False
    last = None
    attempts = bundle.interactions
    if len(attempts) > 1:
        attempts = sorted(attempts, key=lambda i: i.attempt)
    for attempt in attempts:
        prompt = _add(prompt, attempt.prompt_tokens)
        completion = _add(completion, attempt.completion_tokens)
        total = _add(total, attempt.total_tokens)
        cost = _add(cost, attempt.cost_usd)
        if ttft is None:
            ttft = attempt.ttft_ms
        cache_hit = cache_hit or attempt.cache_hit
        last = attempt
    decisions = bundle.decisions
    if any(a.sequence > b.sequence for a, b in pairwise(decisions)):
        decisions = sorted(decisions, key=lambda d: d.sequence)
    triggered: list[str] = []
    action: str | None = None
    for violation in bundle.violations:
        if violation.guardrail not in triggered:
            triggered.append(violation.guardrail)
        strength = GUARDRAIL_ACTION_STRENGTH.get(violation.action, 0)
        if strength > GUARDRAIL_ACTION_STRENGTH.get(action or "", 0):
            action = violation.action
    return TraceSummary(
        deployment=last.deployment if last is not None else None,
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=total,
        cost_usd=cost,
        ttft_ms=ttft,
        cache_hit=cache_hit,
        rules_matched=[
            d.rule_id for d in decisions if d.type == "rule_evaluation" and d.rule_id is not None
        ],
        guardrail_action=action,
        guardrails_triggered=triggered,
    )

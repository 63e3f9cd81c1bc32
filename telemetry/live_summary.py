"""One recorded request in a line: what the live feed sends for each trace.

Built from the `TraceBundle` the recorder receives, the same way the summary columns of `traces`
read: the last attempt's deployment and the model it was served as, tokens and cost summed over
the attempts, the first token's wait, whether the cache answered, the ids of the rules that
matched, and the strongest guardrail action (block > mask > log) with the guardrails that found
something. No prompt, answer, error message, tag or metadata value: a summary only names things.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import msgspec

from telemetry.records import TraceBundle

GUARDRAIL_ACTION_STRENGTH = {"log": 1, "mask": 2, "block": 3}


class LiveTrace(msgspec.Struct, kw_only=True, gc=False):
    trace_id: str
    request_id: str
    time: str
    """When the request started, ISO 8601 UTC with milliseconds."""
    worker: str
    """The process that served it (`host:pid`)."""
    workspace_id: str
    api_key_id: str | None
    key_name: str | None = None
    """Filled in by the worker that sends the event (names are read from the keys table)."""
    end_user: str | None
    route: str
    requested_model: str | None
    served_model: str | None
    """The public model the answer came from (differs after a fallback or a routing rule)."""
    provider: str | None
    provider_model: str | None
    deployment: str | None
    status: str
    http_status: int
    error_type: str | None
    duration_ms: float
    ttft_ms: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    cost_usd: str | None
    """Exact decimal text in US dollars; null when no attempt had a known price."""
    cache_hit: bool
    rules_matched: list[str]
    guardrail_action: str | None
    guardrails_triggered: list[str]
    stream: bool
    attempts: int


def summarise(bundle: TraceBundle, worker: str) -> LiveTrace:
    trace = bundle.trace
    interactions = bundle.interactions
    last = interactions[-1] if interactions else None
    served = None
    for interaction in reversed(interactions):
        if interaction.status == "ok":
            served = interaction
            break
    ttft = None
    for interaction in reversed(interactions):
        if interaction.ttft_ms is not None:
            ttft = interaction.ttft_ms
            break
    action = None
    triggered: list[str] = []
    for violation in bundle.violations:
        if violation.guardrail not in triggered:
            triggered.append(violation.guardrail)
        strength = GUARDRAIL_ACTION_STRENGTH.get(violation.action, 0)
        if strength > GUARDRAIL_ACTION_STRENGTH.get(action or "", 0):
            action = violation.action
    return LiveTrace(
        trace_id=trace.trace_id,
        request_id=trace.request_id,
        time=_iso(trace.started_at),
        worker=worker,
        workspace_id=trace.workspace_id,
        api_key_id=trace.api_key_id,
        end_user=trace.end_user,
        route=trace.route,
        requested_model=trace.requested_model,
        served_model=served.requested_model if served is not None else None,
        provider=trace.provider,
        provider_model=trace.provider_model,
        deployment=last.deployment if last is not None else None,
        status=trace.status,
        http_status=trace.http_status,
        error_type=trace.error_type,
        duration_ms=round(trace.duration_ms, 3),
        ttft_ms=round(ttft, 3) if ttft is not None else None,
        prompt_tokens=_total([i.prompt_tokens for i in interactions]),
        completion_tokens=_total([i.completion_tokens for i in interactions]),
        total_tokens=_total([i.total_tokens for i in interactions]),
        cost_usd=_cost([i.cost_usd for i in interactions]),
        cache_hit=any(i.cache_hit for i in interactions),
        rules_matched=[
            d.rule_id
            for d in bundle.decisions
            if d.type == "rule_evaluation" and d.rule_id is not None
        ],
        guardrail_action=action,
        guardrails_triggered=triggered,
        stream=trace.stream,
        attempts=len(interactions),
    )


def _iso(epoch_seconds: float) -> str:
    moment = datetime.fromtimestamp(epoch_seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _total(values: list[int | None]) -> int | None:
    known = [value for value in values if value is not None]
    return sum(known) if known else None


def _cost(values: list[Decimal | None]) -> str | None:
    known = [value for value in values if value is not None]
    if not known:
        return None
    text = format(sum(known, Decimal(0)).normalize(), "f")
    return "0" if text in ("-0", "") else text

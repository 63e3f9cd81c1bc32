"""A request's moderation-judge calls recorded as a trace of their own: `source = moderation`,
each call an interaction with `purpose = moderation`, in the request's workspace, its
`request_id` naming the request's trace (`moderation-<trace id>`).

Like a quality judge's calls (`source = evaluation`), these traces stay out of the users' usage
roll-ups and out of the traces explorer unless asked for: they are the gateway's own spending,
not the users' requests. Building the bundle is a few objects and recording it one enqueue, so
the request path does not wait on it. A moderation endpoint's calls report no tokens or cost
and are not recorded here (their latency and outcome stay on the request's span).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from gateway.guardrails.moderation import JudgeCall, ModerationCall
from telemetry.ids import uuid7_hex
from telemetry.records import InteractionRecord, TraceBundle, TraceRecord

SOURCE: Final = "moderation"
ROUTE: Final = "moderation"


def judge_calls(calls: Sequence[ModerationCall]) -> list[JudgeCall]:
    return [call for moderation in calls if moderation.spend for call in moderation.spend.calls]


def moderation_bundle(
    calls: Sequence[ModerationCall], *, workspace_id: str, request_trace_id: str
) -> TraceBundle | None:
    """The trace of the judge calls among `calls`; None when there were none."""
    made = judge_calls(calls)
    if not made:
        return None
    trace_id = uuid7_hex()
    interactions = [
        InteractionRecord(
            interaction_id=uuid7_hex(),
            trace_id=trace_id,
            workspace_id=workspace_id,
            provider=call.provider,
            requested_model=call.public_model,
            provider_model=call.provider_model,
            deployment=call.deployment,
            attempt=number,
            operation="chat",
            prompt_tokens=call.prompt_tokens,
            completion_tokens=call.completion_tokens,
            total_tokens=call.prompt_tokens + call.completion_tokens
            if call.prompt_tokens is not None and call.completion_tokens is not None
            else None,
            cost_usd=call.cost_usd,
            started_at=call.started,
            ended_at=max(call.ended, call.started),
            status=call.status,
            error_type=call.error_type,
            purpose="moderation",
        )
        for number, call in enumerate(made, start=1)
    ]
    ok = all(call.status == "ok" for call in made)
    last = made[-1]
    trace = TraceRecord(
        trace_id=trace_id,
        workspace_id=workspace_id,
        request_id=f"moderation-{request_trace_id}",
        route=ROUTE,
        started_at=min(call.started for call in made),
        ended_at=max(max(call.ended, call.started) for call in made),
        status="ok" if ok else "error",
        http_status=200 if ok else 502,
        requested_model=last.public_model,
        provider=last.provider,
        provider_model=last.provider_model,
        error_type=None if ok else "moderation_call_failed",
        source=SOURCE,
    )
    return TraceBundle(trace=trace, interactions=interactions)

"""Replays of a recorded request to a public model of the gateway, for a comparison, outside
the proxy's request path, each recorded as a trace of its own.

A public model's deployments are tried in order until one answers, through the provider's
adapter (the gateway's own chat call, any provider type), by `gateway.upstream.public_model_calls`:
the trace with `source = 'evaluation'` (left out of users' usage figures and of the traces
explorer, as a judge's calls are) and `route = 'comparison'`, each attempt as an interaction
with `purpose = 'comparison'` (so neither an on-demand evaluation nor another comparison takes
it as a user's request).
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any, Final

from gateway.upstream.public_model_calls import Attempt, CallLabels, PublicModelCalls
from telemetry.comparison.replay import ReplayAnswer, ReplayRequest

LABELS: Final = CallLabels(
    source="evaluation",
    route="comparison",
    purpose="comparison",
    request_prefix="compare",
    error_type="replay_failed",
)


class ReplayCalls(PublicModelCalls):
    """`telemetry.comparison.replay.ReplayCaller` over the gateway's config."""

    labels = LABELS

    async def replay(self, request: ReplayRequest) -> ReplayAnswer:
        if not self.serves(request.model):
            return ReplayAnswer(
                text=None, error=f"no public model '{request.model[:100]}' in the config"
            )

        async def send(attempt: Attempt, timeout_s: float) -> None:
            payload: dict[str, Any] = {"messages": request.messages}
            if request.max_tokens is not None:
                payload["max_tokens"] = request.max_tokens
            message = await self.call_adapter(attempt, payload, request.model, timeout_s)
            content = message.get("content")
            attempt.text = content if isinstance(content, str) else None

        outcome = await self.call(request, send)
        last = outcome.last
        costs = [a.cost_usd for a in outcome.attempts if a.cost_usd is not None]
        return ReplayAnswer(
            text=None if last is None or last.error is not None else last.text,
            prompt_tokens=last.prompt_tokens if last else None,
            completion_tokens=last.completion_tokens if last else None,
            cost_usd=sum(costs, Decimal(0)) if costs else None,
            latency_ms=((last.ended if last else time.time()) - outcome.started) * 1000.0,
            trace_id=outcome.trace_id,
            error="timeout" if last is None else last.error,
        )

"""Replays of a recorded request to a public model of the gateway, for a comparison, outside
the proxy's request path, each recorded as a trace of its own.

A public model's deployments are tried in order until one answers, through the provider's
adapter (the gateway's own chat call, any provider type). The call is priced with the
gateway's price table and recorded through the recorder: the trace with
`source = 'evaluation'` (left out of users' usage figures and of the traces explorer, as a
judge's calls are) and `route = 'comparison'`, each attempt as an interaction with
`purpose = 'comparison'` (so neither an on-demand evaluation nor another comparison takes it
as a user's request).

Errors name the provider and what went wrong (an HTTP status, a timeout), never a credential
or the provider's own error text.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import msgspec

from gateway.config import Deployment, GatewayConfig, ProviderConfig
from providers.base import ProviderAdapter
from providers.errors import UpstreamFailure
from providers.pricing import PriceTable
from telemetry.comparison.replay import ReplayAnswer, ReplayRequest
from telemetry.ids import uuid7_hex
from telemetry.records import InteractionRecord, TraceBundle, TraceRecord

ROUTE: Final = "comparison"
PURPOSE: Final = "comparison"
SOURCE: Final = "evaluation"


@dataclass(slots=True)
class _Attempt:
    deployment: Deployment
    provider: ProviderConfig
    started: float
    ended: float = 0.0
    text: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: Decimal | None = None
    error: str | None = None
    http_status: int | None = None


class ReplayCalls:
    """`telemetry.comparison.replay.ReplayCaller` over the gateway's config."""

    def __init__(
        self,
        config: GatewayConfig,
        adapters: Mapping[str, ProviderAdapter],
        record: Callable[[TraceBundle], bool],
        *,
        store_content: bool = True,
        prices: PriceTable | None = None,
    ) -> None:
        self._config = config
        self._adapters = adapters
        self._record = record
        self._store_content = store_content
        self._prices = prices if prices is not None else config.price_table()

    async def replay(self, request: ReplayRequest) -> ReplayAnswer:
        deployments = self._config.deployments(request.model)
        if not deployments:
            return ReplayAnswer(
                text=None, error=f"no public model '{request.model[:100]}' in the config"
            )
        trace_id = uuid7_hex()
        started = time.time()
        attempts: list[_Attempt] = []
        deadline = time.monotonic() + request.timeout_s
        for deployment in deployments:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            attempt = _Attempt(deployment, self._config.provider(deployment.provider), time.time())
            attempts.append(attempt)
            await self._attempt(attempt, request, left)
            if attempt.error is None:
                break
        self._record_trace(trace_id, request, started, attempts)
        last = attempts[-1] if attempts else None
        costs = [a.cost_usd for a in attempts if a.cost_usd is not None]
        return ReplayAnswer(
            text=None if last is None or last.error is not None else last.text,
            prompt_tokens=last.prompt_tokens if last else None,
            completion_tokens=last.completion_tokens if last else None,
            cost_usd=sum(costs, Decimal(0)) if costs else None,
            latency_ms=((last.ended if last else time.time()) - started) * 1000.0,
            trace_id=trace_id,
            error="timeout" if last is None else last.error,
        )

    async def _attempt(self, attempt: _Attempt, request: ReplayRequest, timeout_s: float) -> None:
        name = attempt.provider.name
        try:
            async with asyncio.timeout(timeout_s):
                await self._call(attempt, request, timeout_s)
        except TimeoutError:
            attempt.error = f"{name}: timeout after {timeout_s:.3g} s"
        except UpstreamFailure as failure:
            attempt.http_status = failure.status
            detail = f"HTTP {failure.status}" if failure.status else failure.kind
            attempt.error = f"{name}: {detail}"
        except Exception as error:
            attempt.error = f"{name}: {type(error).__name__}"
        attempt.ended = time.time()
        price = attempt.deployment.price_in(self._prices)
        if price is not None:
            attempt.cost_usd = price.cost(attempt.prompt_tokens, attempt.completion_tokens)

    async def _call(self, attempt: _Attempt, request: ReplayRequest, timeout_s: float) -> None:
        adapter = self._adapters[attempt.provider.name]
        model = attempt.deployment.model
        payload: dict[str, Any] = {"model": model, "messages": request.messages}
        if request.max_tokens is not None:
            payload["max_tokens"] = request.max_tokens
        body = adapter.encode_chat(payload, model, stream=False)
        response = await adapter.send(
            "chat", body, provider_model=model, timeouts=adapter.timeout(total=timeout_s)
        )
        raw = await adapter.read_body(response)
        result = adapter.parse_chat(raw, request.model)
        attempt.prompt_tokens = result.usage.prompt_tokens
        attempt.completion_tokens = result.usage.completion_tokens
        attempt.http_status = 200
        content = _first_message(result.body).get("content")
        attempt.text = content if isinstance(content, str) else None

    def _record_trace(
        self, trace_id: str, request: ReplayRequest, started: float, attempts: list[_Attempt]
    ) -> None:
        ended = attempts[-1].ended if attempts else time.time()
        last = attempts[-1] if attempts else None
        ok = last is not None and last.error is None
        interactions = [
            InteractionRecord(
                interaction_id=uuid7_hex(),
                trace_id=trace_id,
                workspace_id=request.workspace_id,
                provider=a.provider.name,
                requested_model=request.model,
                provider_model=a.deployment.model,
                deployment=a.deployment.id,
                attempt=number,
                operation="chat",
                prompt_tokens=a.prompt_tokens,
                completion_tokens=a.completion_tokens,
                total_tokens=(a.prompt_tokens or 0) + (a.completion_tokens or 0)
                if a.prompt_tokens is not None and a.completion_tokens is not None
                else None,
                cost_usd=a.cost_usd,
                started_at=a.started,
                ended_at=a.ended,
                status="ok" if a.error is None else "error",
                http_status=a.http_status,
                error_type=None if a.error is None else "replay_failed",
                error_message=a.error,
                prompt=request.messages if self._store_content else None,
                response=[{"index": 0, "content": a.text}]
                if self._store_content and a.text is not None
                else None,
                purpose=PURPOSE,
            )
            for number, a in enumerate(attempts, start=1)
        ]
        trace = TraceRecord(
            trace_id=trace_id,
            workspace_id=request.workspace_id,
            request_id=f"compare-{trace_id}",
            route=ROUTE,
            started_at=started,
            ended_at=max(ended, started),
            status="ok" if ok else "error",
            http_status=200 if ok else 502,
            requested_model=request.model,
            provider=last.provider.name if last else None,
            provider_model=last.deployment.model if last else None,
            error_type=None if ok else "replay_failed",
            error_message=None if ok or last is None else last.error,
            source=SOURCE,
        )
        self._record(TraceBundle(trace=trace, interactions=interactions))


def _first_message(body: bytes) -> dict[str, Any]:
    try:
        document = msgspec.json.decode(body)
        message = document["choices"][0]["message"]
    except (msgspec.DecodeError, KeyError, IndexError, TypeError):
        return {}
    return message if isinstance(message, dict) else {}

"""Calls to a public model of the gateway from a background job (an evaluation's judge, a
comparison's replay), outside the proxy's request path, each recorded as a trace of its own.

A public model's deployments are tried in order until one answers or the time runs out. Each
attempt is priced with the gateway's price table; the trace and one interaction per attempt go
to the recorder, labelled with the job's source, route and purpose so users' usage figures
leave them out.

Errors name the provider and what went wrong (an HTTP status, a timeout), never a credential
or the provider's own error text.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar, Protocol, TypeVar

import msgspec

from gateway.config.file import Deployment, GatewayConfig, ProviderConfig
from providers.base import ProviderAdapter
from providers.errors import UpstreamFailure
from providers.pricing import PriceTable
from telemetry.ids import uuid7_hex
from telemetry.records import InteractionRecord, TraceBundle, TraceRecord


@dataclass(slots=True)
class Attempt:
    """One deployment tried: what it answered or why it failed, and what it cost."""

    deployment: Deployment
    provider: ProviderConfig
    started: float
    ended: float = 0.0
    text: str | None = None
    refused: bool = False
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: Decimal | None = None
    error: str | None = None
    http_status: int | None = None


@dataclass(frozen=True, slots=True)
class CallLabels:
    """How a job's calls are recorded: the trace's source and route, the interactions'
    purpose, the prefix of the trace's request id and the error type of a failure."""

    source: str
    route: str
    purpose: str
    request_prefix: str
    error_type: str


class CallRequest(Protocol):
    """What a job asks of a public model (`JudgeRequest` and `ReplayRequest` both are one)."""

    @property
    def workspace_id(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def messages(self) -> Sequence[Mapping[str, Any]]: ...
    @property
    def timeout_s(self) -> float: ...


@dataclass(slots=True)
class CallOutcome:
    trace_id: str
    started: float
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def last(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None


Send = Callable[[Attempt, float], Awaitable[None]]
"""Makes one attempt within the seconds given, filling in the attempt (or raising)."""


class PublicModelCalls:
    """Tries a public model's deployments through a job's own `Send` and records the trace;
    a job's caller is a subclass that names its `labels`."""

    labels: ClassVar[CallLabels]

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

    def serves(self, model: str) -> bool:
        """Whether the config declares public model `model` with a deployment."""
        return bool(self._config.deployments(model))

    async def call(self, request: CallRequest, send: Send) -> CallOutcome:
        """Each deployment of `request.model` in turn until one answers; the trace recorded."""
        outcome = CallOutcome(trace_id=uuid7_hex(), started=time.time())
        deadline = time.monotonic() + request.timeout_s
        for deployment in self._config.deployments(request.model):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            attempt = Attempt(deployment, self._config.provider(deployment.provider), time.time())
            outcome.attempts.append(attempt)
            await self._attempt(attempt, send, left)
            if attempt.error is None:
                break
        self._record_trace(request, outcome)
        return outcome

    async def call_adapter(
        self, attempt: Attempt, payload: dict[str, Any], requested_model: str, timeout_s: float
    ) -> dict[str, Any]:
        """A chat call through the provider's adapter: the tokens set on the attempt, the first
        choice's message returned (empty when the answer has none)."""
        adapter = self._adapters[attempt.provider.name]
        model = attempt.deployment.model
        body = adapter.encode_chat({"model": model, **payload}, model, stream=False)
        response = await adapter.send(
            "chat", body, provider_model=model, timeouts=adapter.timeout(total=timeout_s)
        )
        raw = await adapter.read_body(response)
        result = adapter.parse_chat(raw, requested_model)
        attempt.prompt_tokens = result.usage.prompt_tokens
        attempt.completion_tokens = result.usage.completion_tokens
        attempt.http_status = 200
        return _first_message(result.body)

    async def _attempt(self, attempt: Attempt, send: Send, timeout_s: float) -> None:
        name = attempt.provider.name
        try:
            async with asyncio.timeout(timeout_s):
                await send(attempt, timeout_s)
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

    def _record_trace(self, request: CallRequest, outcome: CallOutcome) -> None:
        labels, trace_id, started, last = (
            self.labels,
            outcome.trace_id,
            outcome.started,
            outcome.last,
        )
        ended = last.ended if last is not None else time.time()
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
                error_type=None if a.error is None else labels.error_type,
                error_message=a.error,
                prompt=request.messages if self._store_content else None,
                response=[{"index": 0, "content": a.text}]
                if self._store_content and a.text is not None
                else None,
                purpose=labels.purpose,
            )
            for number, a in enumerate(outcome.attempts, start=1)
        ]
        trace = TraceRecord(
            trace_id=trace_id,
            workspace_id=request.workspace_id,
            request_id=f"{labels.request_prefix}-{trace_id}",
            route=labels.route,
            started_at=started,
            ended_at=max(ended, started),
            status="ok" if ok else "error",
            http_status=200 if ok else 502,
            requested_model=request.model,
            provider=last.provider.name if last else None,
            provider_model=last.deployment.model if last else None,
            error_type=None if ok else labels.error_type,
            error_message=None if ok or last is None else last.error,
            source=labels.source,
        )
        self._record(TraceBundle(trace=trace, interactions=interactions))


N = TypeVar("N", int, Decimal)


def total(values: Iterable[N | None]) -> N | None:
    """The sum over the deployments tried (each may have been paid); None when none said."""
    known = [v for v in values if v is not None]
    return sum(known[1:], known[0]) if known else None


def _first_message(body: bytes) -> dict[str, Any]:
    try:
        document = msgspec.json.decode(body)
        message = document["choices"][0]["message"]
    except (msgspec.DecodeError, KeyError, IndexError, TypeError):
        return {}
    return message if isinstance(message, dict) else {}

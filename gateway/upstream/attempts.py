"""One provider attempt as the gateway records and answers it: its interaction row, span and
metrics; the error a client sees when it fails; what a streamed attempt has read so far."""

from __future__ import annotations

import asyncio
import time
from types import TracebackType
from typing import Any

from gateway.cache.stream import StreamAccumulator
from gateway.errors import GatewayError, upstream_error, upstream_timeout
from gateway.exchange import ClientGone, DisconnectWatch, Exchange, Receive
from gateway.upstream.reliability import AttemptFailed
from gateway.upstream.routing import Target
from providers.errors import UpstreamFailure
from providers.http_client import UpstreamResponse
from providers.openai_format import event_data, read_chunk
from providers.usage import UNKNOWN_USAGE, Usage, requested_output
from telemetry import metrics
from telemetry.ids import uuid7_hex
from telemetry.records import InteractionRecord

_operation_duration = metrics.Labelled(metrics.operation_duration)
_token_usage = metrics.Labelled(metrics.token_usage)
_time_to_first_token = metrics.Labelled(metrics.time_to_first_token)
_cost_total = metrics.Labelled(metrics.cost_total)
_upstream_errors = metrics.Labelled(metrics.upstream_errors)

_PASS_STATUSES = frozenset({400, 404, 409, 413, 422, 429})


class StreamState:
    __slots__ = (
        "accumulator",
        "client_gone",
        "done_sent",
        "finish_reason",
        "first_output",
        "output_chars",
        "texts",
        "usage",
    )

    def __init__(self, accumulator: StreamAccumulator | None = None) -> None:
        self.accumulator = accumulator
        self.client_gone = False
        self.done_sent = False
        """The provider's `[DONE]` went out to the client: a disconnect after it cuts nothing."""
        self.first_output: float | None = None
        self.output_chars = 0
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.texts: dict[int, list[str]] = {}


def record_attempt(
    exchange: Exchange,
    target: Target,
    operation: str,
    span_id: str,
    started: float,
    *,
    store_content: bool,
    ended: float | None = None,
    usage: Usage = UNKNOWN_USAGE,
    usage_estimated: bool = False,
    finish_reason: str | None = None,
    first_output: float | None = None,
    failure: UpstreamFailure | None = None,
    cancelled: bool = False,
    prompt: Any = None,
    response: Any = None,
) -> None:
    """Record one provider attempt: its span, its interaction row and its metrics."""
    if ended is None:
        ended = time.perf_counter()
    trace = exchange.trace
    status = "cancelled" if cancelled else ("error" if failure is not None else "ok")
    error_type = None if failure is None else failure_type(failure)
    cost = None
    if target.price is not None and usage.prompt_tokens is not None:
        cost = target.price.cost(
            usage.prompt_tokens,
            usage.completion_tokens if operation == "chat" else 0,
            usage.cached_tokens,
        )
    ttft_ms = None if first_output is None else (first_output - started) * 1000.0
    tokens_per_second = None
    if usage.completion_tokens and first_output is not None and ended > first_output:
        tokens_per_second = usage.completion_tokens / (ended - first_output)
    elif usage.completion_tokens and first_output is None and ended > started:
        tokens_per_second = usage.completion_tokens / (ended - started)
    attempt = len(trace.interactions) + 1
    trace.interactions.append(
        InteractionRecord(
            interaction_id=uuid7_hex(),
            trace_id=trace.trace_id,
            workspace_id="",
            span_id=span_id,
            api_key_id=exchange.key.key_id if exchange.key else None,
            provider=target.provider,
            requested_model=target.public_model,
            provider_model=target.provider_model,
            deployment=target.id,
            attempt=attempt,
            operation=exchange.operation,
            stream=exchange.stream,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
            total_tokens=usage.total_tokens,
            usage_estimated=usage_estimated,
            cost_usd=cost,
            started_at=trace.wall(started),
            ended_at=trace.wall(ended),
            ttft_ms=ttft_ms,
            tokens_per_second=tokens_per_second,
            status=status,
            http_status=(failure.status if failure is not None else (None if cancelled else 200)),
            finish_reason=finish_reason,
            error_type=error_type,
            error_message=None if failure is None else failure.message,
            prompt=prompt if store_content else None,
            response=response if store_content else None,
        )
    )
    attributes = {
        "gen_ai.provider.name": target.provider,
        "gen_ai.request.model": target.provider_model,
        "gen_ai.usage.input_tokens": usage.prompt_tokens,
        "gen_ai.usage.output_tokens": usage.completion_tokens,
        "error.type": error_type,
    }
    if usage_estimated:
        attributes["steerway.usage.estimated"] = True
    trace.add_span(
        f"provider.{operation}",
        "provider",
        started,
        ended,
        status=status,
        span_id=span_id,
        attributes=attributes,
    )
    labels = (operation, target.provider, target.public_model)
    _operation_duration(*labels, error_type or "").observe(ended - started)
    if usage.prompt_tokens is not None:
        _token_usage(*labels, "input").observe(usage.prompt_tokens)
    if usage.completion_tokens is not None and operation == "chat":
        _token_usage(*labels, "output").observe(usage.completion_tokens)
    if ttft_ms is not None:
        _time_to_first_token(*labels).observe(ttft_ms / 1000.0)
    if cost is not None:
        _cost_total(target.provider, target.public_model).inc(float(cost))
    if error_type is not None:
        _upstream_errors(target.provider, error_type).inc()


def failed_attempt(
    exchange: Exchange,
    target: Target,
    operation: str,
    span_id: str,
    started: float,
    failure: UpstreamFailure,
    *,
    store_content: bool,
) -> AttemptFailed:
    """Record an attempt that failed before its answer started; the error to raise for it."""
    record_attempt(
        exchange, target, operation, span_id, started, store_content=store_content, failure=failure
    )
    return AttemptFailed(failure, client_error(target, failure))


def abandoned_attempt(
    exchange: Exchange,
    target: Target,
    operation: str,
    span_id: str,
    started: float,
    *,
    store_content: bool,
) -> ClientGone:
    """Record an attempt the client left before its answer started; the error to raise."""
    record_attempt(
        exchange, target, operation, span_id, started, store_content=store_content, cancelled=True
    )
    return ClientGone()


class Opening:
    """An attempt until its answer starts, as a `with` block: the client leaving cancels the
    block, and a failure or the client's leaving is recorded and raised in the client's terms
    (`failed_attempt`, `abandoned_attempt`). A `response` the block sets is dropped when the
    block fails: nothing of it has reached the client, so the attempt may be retried."""

    __slots__ = (
        "_receive",
        "_watch",
        "exchange",
        "operation",
        "response",
        "span_id",
        "started",
        "store_content",
        "target",
    )

    def __init__(
        self,
        exchange: Exchange,
        target: Target,
        operation: str,
        span_id: str,
        started: float,
        receive: Receive,
        *,
        store_content: bool,
    ) -> None:
        self.exchange = exchange
        self.target = target
        self.operation = operation
        self.span_id = span_id
        self.started = started
        self.store_content = store_content
        self.response: UpstreamResponse | None = None
        self._receive = receive

    def __enter__(self) -> Opening:
        self._watch = DisconnectWatch(self._receive)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._watch.close()
        if error is None:
            return
        if self.response is not None:
            self.response.close()
        arguments = (self.exchange, self.target, self.operation, self.span_id, self.started)
        if isinstance(error, UpstreamFailure):
            raise failed_attempt(*arguments, error, store_content=self.store_content) from None
        if isinstance(error, asyncio.CancelledError) and self._watch.take_cancel():
            raise abandoned_attempt(*arguments, store_content=self.store_content) from None


def capacity_tokens(exchange: Exchange, payload: dict[str, Any]) -> int:
    """Tokens a request may use, for tpm capacity: its estimated input plus its output cap for
    each choice (never less than zero, whatever the body says)."""
    limit, choices = requested_output(payload)
    estimate = max(int(exchange.features.get("estimated_input_tokens", 0)), 0)
    return estimate + (limit or 0) * choices


def inspect_event(
    event: bytes, state: StreamState, client_wants_usage: bool, keep_text: bool
) -> bool:
    """Read one SSE event; return whether to forward it to the client."""
    data = event_data(event)
    if data is None or data == b"[DONE]":
        return True
    if state.accumulator is not None:
        state.accumulator.feed(data)
    chunk = read_chunk(data)
    if chunk.has_output and state.first_output is None:
        state.first_output = time.perf_counter()
    state.output_chars += chunk.output_chars
    if chunk.finish_reason is not None:
        state.finish_reason = chunk.finish_reason
    if keep_text:
        for index, text in chunk.contents:
            state.texts.setdefault(index, []).append(text)
    if chunk.usage is not None:
        state.usage = chunk.usage
        if chunk.usage_only and not client_wants_usage:
            return False
    return True


def failure_type(failure: UpstreamFailure) -> str:
    if failure.kind == "http":
        return f"http_{failure.status}"
    return failure.kind


def client_error(target: Target, failure: UpstreamFailure) -> GatewayError:
    """The error the client sees for a failed provider attempt."""
    provider = target.provider
    if failure.kind == "timeout":
        return upstream_timeout(provider, failure.message)
    if failure.kind != "http" or failure.status is None:
        return upstream_error(provider, failure.message)
    status = failure.status
    if status in _PASS_STATUSES:
        headers = {}
        if failure.retry_after:
            headers["retry-after"] = failure.retry_after
        if failure.retry_after_ms:
            headers["retry-after-ms"] = failure.retry_after_ms
        return GatewayError(
            status,
            f"{provider}: {failure.message}",
            type=failure.error_type
            or ("rate_limit_error" if status == 429 else "invalid_request_error"),
            code=failure.error_code,
            param=failure.param,
            headers=headers,
        )
    if status in (401, 403):
        return upstream_error(
            provider, f"the provider rejected the gateway's credentials (HTTP {status})"
        )
    return upstream_error(provider, f"HTTP {status}: {failure.message}")

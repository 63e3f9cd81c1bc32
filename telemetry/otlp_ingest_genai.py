"""A GenAI span from an application's own instrumentation, as a trace of `source = otlp`.

One model call (a span with a GenAI operation, or a GenAI system with a model) becomes one trace
with one span and one interaction, in the workspace of the key that sent it. Spans of agents,
tools and workflows are not model calls (their model calls are spans of their own, and counting
both would count tokens twice): they are ignored, as are spans without a model.

The span's OpenTelemetry ids are kept as the trace's parent (`parent_trace_id`,
`parent_span_id` = the span's own id, so the row points at the span it came from); the rows'
keys are our own ids, as for proxied requests (see `telemetry.trace`).

Times outside the accepted window (`max_age` before now to `max_future` after) are refused, not
clamped: a clamped time would put a call in a minute it did not happen in, on charts, budgets
and alerts alike, and a refusal tells the sender its clock or its queue is wrong.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final

import msgspec

from providers.pricing import PriceTable
from telemetry.ids import span_id_hex, uuid7_hex
from telemetry.otlp_ingest_content import prompt_and_response
from telemetry.otlp_ingest_spans import STATUS_ERROR, OtlpSpan, SpanRejected
from telemetry.records import InteractionRecord, SpanRecord, TraceBundle, TraceRecord

ROUTE: Final = "/v1/traces"
NOT_MODEL_CALLS: Final = frozenset(
    {"execute_tool", "invoke_agent", "create_agent", "invoke_workflow", "workflow", "agent"}
)
PROVIDERS: Final = {
    "openai": "openai",
    "anthropic": "anthropic",
    "gcp.gemini": "gemini",
    "gcp.vertex_ai": "gemini",
    "gcp.gen_ai": "gemini",
    "gemini": "gemini",
    "vertex_ai": "gemini",
    "azure.ai.openai": "azure",
    "az.ai.openai": "azure",
    "azure_openai": "azure",
}
"""OpenTelemetry's `gen_ai.provider.name` (and the older `gen_ai.system`) values that name a
provider type the gateway has; any other name is kept as sent, cut to `MAX_NAME`."""
MAX_NAME: Final = 64
MAX_MODEL: Final = 256
KEPT_ATTRIBUTES: Final = (
    "gen_ai.operation.name",
    "gen_ai.provider.name",
    "gen_ai.system",
    "gen_ai.request.model",
    "gen_ai.response.model",
    "gen_ai.response.id",
    "gen_ai.request.max_tokens",
    "gen_ai.request.temperature",
    "gen_ai.request.top_p",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.cache_read.input_tokens",
    "server.address",
    "server.port",
    "error.type",
)
"""What a stored span keeps of the sender's attributes: scalars that describe the call. Content
attributes never are (they are stored on the interaction only as `store_content` allows)."""
_TTFT_ATTRIBUTES: Final = (
    "gen_ai.response.time_to_first_chunk",
    "gen_ai.server.time_to_first_token",
)
_FIRST_TOKEN_EVENTS: Final = frozenset({"gen_ai.content.first_token", "gen_ai.first_token"})
_NANOS: Final = 1e9


class Window(msgspec.Struct, frozen=True):
    """The span end times accepted, in seconds around now."""

    max_age: float
    max_future: float


class IngestContext(msgspec.Struct, frozen=True):
    workspace_id: str
    api_key_id: str | None
    prices: PriceTable
    store_content: bool
    now: float
    window: Window


def to_bundle(span: OtlpSpan, context: IngestContext) -> TraceBundle | None:
    """The span as a trace of its own, or None when it is not a model call. Raises
    `SpanRejected` when it is one that cannot be recorded."""
    attributes = span.attributes
    operation = _string(attributes.get("gen_ai.operation.name"), MAX_NAME)
    if operation in NOT_MODEL_CALLS:
        return None
    requested = _string(attributes.get("gen_ai.request.model"), MAX_MODEL)
    served = _string(attributes.get("gen_ai.response.model"), MAX_MODEL) or requested
    if not served:
        return None
    requested = requested or served
    provider_name = _string(
        attributes.get("gen_ai.provider.name") or attributes.get("gen_ai.system"), MAX_NAME
    )
    provider = PROVIDERS.get(provider_name, provider_name) or "unknown"
    started, ended = _times(span, context)
    prompt_tokens = _count(attributes, "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
    completion_tokens = _count(
        attributes, "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens"
    )
    cached_tokens = _count(attributes, "gen_ai.usage.cache_read.input_tokens")
    if operation == "embeddings" and completion_tokens is None:
        completion_tokens = 0
    total_tokens = (
        prompt_tokens + completion_tokens
        if prompt_tokens is not None and completion_tokens is not None
        else None
    )
    cost = _cost(context.prices, served, requested, prompt_tokens, completion_tokens, cached_tokens)
    error_type = _string(attributes.get("error.type"), MAX_NAME) or None
    failed = span.status_code == STATUS_ERROR or error_type is not None
    status = "error" if failed else "ok"
    if failed and error_type is None:
        error_type = "error"
    error_message = span.status_message or None if failed else None
    http_status = _http_status(attributes, failed)
    ttft_ms = _ttft_ms(span, started, ended)
    tokens_per_second = None
    if completion_tokens and ended > started:
        since = started + ttft_ms / 1000.0 if ttft_ms is not None else started
        if ended > since:
            tokens_per_second = completion_tokens / (ended - since)
    events = [(event.name, event.attributes) for event in span.events]
    prompt, response = prompt_and_response(attributes, events)
    finish_reason = _finish_reason(attributes, response)
    if not context.store_content:
        prompt = response = None
    stream = attributes.get("gen_ai.request.stream") is True
    trace_id = uuid7_hex()
    span_id = span_id_hex()
    kind = operation or "chat"
    interaction = InteractionRecord(
        interaction_id=uuid7_hex(),
        trace_id=trace_id,
        workspace_id=context.workspace_id,
        span_id=span_id,
        api_key_id=context.api_key_id,
        provider=provider,
        requested_model=requested,
        provider_model=served,
        deployment="",
        operation=kind,
        stream=stream,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cached_tokens=cached_tokens,
        total_tokens=total_tokens,
        cost_usd=cost,
        started_at=started,
        ended_at=ended,
        ttft_ms=ttft_ms,
        tokens_per_second=tokens_per_second,
        status=status,
        http_status=http_status,
        finish_reason=finish_reason,
        error_type=error_type,
        error_message=error_message,
        prompt=prompt,
        response=response,
    )
    trace = TraceRecord(
        trace_id=trace_id,
        workspace_id=context.workspace_id,
        api_key_id=context.api_key_id,
        request_id=span.span_id,
        end_user=_string(attributes.get("enduser.id") or attributes.get("user.id"), 256) or None,
        route=ROUTE,
        started_at=started,
        ended_at=ended,
        status=status,
        http_status=http_status or (200 if not failed else 0),
        requested_model=requested,
        provider=provider,
        provider_model=served,
        stream=stream,
        error_type=error_type,
        error_message=error_message,
        metadata={"service.name": span.service} if span.service else {},
        features={"model": requested},
        parent_trace_id=span.trace_id,
        parent_span_id=span.span_id,
        source="otlp",
    )
    record = SpanRecord(
        span_id=span_id,
        trace_id=trace_id,
        workspace_id=context.workspace_id,
        parent_span_id=None,
        name=span.name or f"{kind} {served}",
        component="application",
        started_at=started,
        ended_at=ended,
        status=status,
        attributes={
            key: attributes[key] for key in KEPT_ATTRIBUTES if _scalar(attributes.get(key))
        },
    )
    return TraceBundle(trace=trace, spans=[record], interactions=[interaction])


def _times(span: OtlpSpan, context: IngestContext) -> tuple[float, float]:
    started = span.start_ns / _NANOS
    ended = span.end_ns / _NANOS
    if span.start_ns == 0 or span.end_ns == 0:
        raise SpanRejected("it has no start or end time")
    if ended < started:
        raise SpanRejected("it ends before it starts")
    window = context.window
    if ended > context.now + window.max_future:
        raise SpanRejected(
            f"it ends {ended - context.now:.0f} s in the future (the limit is "
            f"{window.max_future:.0f} s): check the sender's clock"
        )
    if ended < context.now - window.max_age:
        raise SpanRejected(
            f"it ended {context.now - ended:.0f} s ago, longer than the {window.max_age:.0f} s "
            "accepted"
        )
    return started, ended


def _string(value: Any, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) and not (
        isinstance(value, str) and len(value) > MAX_MODEL
    )


def _count(attributes: dict[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = attributes.get(key)
        if isinstance(value, bool):
            continue
        if isinstance(value, int) and 0 <= value < 2**53:
            return value
        if isinstance(value, float) and value.is_integer() and 0 <= value < 2**53:
            return int(value)
    return None


def _cost(
    prices: PriceTable,
    served: str,
    requested: str,
    prompt_tokens: int | None,
    completion_tokens: int | None,
    cached_tokens: int | None,
) -> Decimal | None:
    price = prices.lookup(served) or prices.lookup(requested)
    if price is None:
        return None
    return price.cost(prompt_tokens, completion_tokens, cached_tokens)


def _http_status(attributes: dict[str, Any], failed: bool) -> int | None:
    value = attributes.get("http.response.status_code")
    if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
        return value
    return None if failed else 200


def _ttft_ms(span: OtlpSpan, started: float, ended: float) -> float | None:
    """Seconds to the first chunk, from an attribute or an event; a value that does not fit
    inside the span (negative, past its end, not finite) is left out."""
    duration = ended - started
    for key in _TTFT_ATTRIBUTES:
        value = span.attributes.get(key)
        number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else -1
        if 0 <= number <= duration:
            return float(number) * 1000.0
    for event in span.events:
        if event.name in _FIRST_TOKEN_EVENTS and event.time_ns:
            elapsed = event.time_ns / _NANOS - started
            if 0 <= elapsed <= duration:
                return elapsed * 1000.0
    return None


def _finish_reason(attributes: dict[str, Any], response: list[dict[str, Any]] | None) -> str | None:
    reasons = attributes.get("gen_ai.response.finish_reasons")
    if isinstance(reasons, str):
        return reasons[:MAX_NAME]
    if isinstance(reasons, list):
        kept = [reason for reason in reasons if isinstance(reason, str)]
        if kept:
            return ",".join(kept)[:MAX_NAME]
    for message in response or ():
        reason = message.get("finish_reason")
        if isinstance(reason, str):
            return reason[:MAX_NAME]
    return None

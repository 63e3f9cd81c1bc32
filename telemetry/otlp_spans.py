"""Trace bundles as OTLP spans (`ExportTraceServiceRequest`), following the OpenTelemetry
semantic conventions for HTTP servers and GenAI clients.

One OTLP span per recorded span, with the same span ids. A request that came with a caller's
`traceparent` is exported in the caller's trace, its root span a child of the caller's span;
otherwise in the gateway's own trace id. The root span (`gateway.request`) is a SERVER span named
`<method> <route>` carrying the decisions (`telemetry.otlp_decisions`); each provider attempt is a
CLIENT span named `<operation> <model>` with the `gen_ai.*` attributes taken from the attempt's
interaction record; the other stages are INTERNAL spans under their own names.
"""

from __future__ import annotations

import importlib.metadata
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Final

import msgspec
from google.protobuf.internal.containers import RepeatedCompositeFieldContainer
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import (
    SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK,
    SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK,
    ScopeSpans,
    Span,
    Status,
)

from telemetry.otlp_decisions import add_decision_events, decision_summary
from telemetry.otlp_values import put_attributes
from telemetry.records import InteractionRecord, SpanRecord, TraceBundle, TraceRecord

SCOPE_NAME: Final = "steerway"
ROOT_SPAN: Final = "gateway.request"

GEN_AI_PROVIDER_NAMES: Final = {
    "openai": "openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "azure": "azure.ai.openai",
}
"""Provider types of the config as `gen_ai.provider.name` values."""

_KEPT_NAMESPACES: Final = ("gen_ai.", "error.", "server.", "http.route", "steerway.")
_RENAMED: Final = {"http.status_code": "http.response.status_code"}
_SAMPLING_BITS: Final = 56


class ProviderInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What the config says about a provider, for the attributes of calls made to it."""

    gen_ai_name: str
    address: str | None = None
    port: int | None = None


def export_trace_id(trace: TraceRecord) -> str:
    """The trace the request's spans are exported in: the caller's when it sent one."""
    return trace.parent_trace_id or trace.trace_id


def sampled(trace_id: str, ratio: float) -> bool:
    """Kept at `ratio`: when the trace id's rightmost 56 bits (random in W3C trace ids and in the
    gateway's own UUIDv7 ids) are at least `(1 - ratio) * 2**56`, the threshold rule of
    OpenTelemetry's consistent probability sampling. Decided by the id alone, so every span of a
    trace is kept or dropped together, by every replica alike."""
    if ratio >= 1.0:
        return True
    threshold = int((1.0 - ratio) * (1 << _SAMPLING_BITS))
    return int(trace_id[-_SAMPLING_BITS // 4 :], 16) >= threshold


class SpanEncoder:
    """Builds export requests for one process: its resource and scope are fixed at start."""

    def __init__(
        self, *, service_name: str, providers: Mapping[str, ProviderInfo] | None = None
    ) -> None:
        version = _version()
        self._providers = dict(providers or {})
        self._resource = Resource()
        put_attributes(
            self._resource.attributes,
            {
                "service.name": service_name,
                "service.version": version,
                "service.instance.id": str(uuid.uuid4()),
            },
        )
        self._scope = InstrumentationScope(name=SCOPE_NAME, version=version)

    @property
    def resource(self) -> Resource:
        """This process: `service.name`, `service.version`, `service.instance.id`."""
        return self._resource

    @property
    def scope(self) -> InstrumentationScope:
        return self._scope

    def request(self, bundles: Iterable[TraceBundle]) -> ExportTraceServiceRequest:
        request = ExportTraceServiceRequest()
        resource_spans = request.resource_spans.add()
        resource_spans.resource.CopyFrom(self._resource)
        scope_spans = resource_spans.scope_spans.add()
        scope_spans.scope.CopyFrom(self._scope)
        for bundle in bundles:
            self.add_spans(scope_spans.spans, bundle)
        return request

    def spans(self, bundle: TraceBundle) -> list[Span]:
        scope_spans = ScopeSpans()
        self.add_spans(scope_spans.spans, bundle)
        return list(scope_spans.spans)

    def add_spans(self, target: RepeatedCompositeFieldContainer[Span], bundle: TraceBundle) -> None:
        trace = bundle.trace
        trace_id = bytes.fromhex(export_trace_id(trace))
        attempts = {i.span_id: i for i in bundle.interactions if i.span_id is not None}
        for record in bundle.spans:
            span = target.add()
            span.trace_id = trace_id
            if record.name == ROOT_SPAN and record.component == "gateway":
                self._root(span, record, bundle)
            elif record.span_id in attempts:
                self._provider_call(span, record, attempts[record.span_id])
            else:
                _fill(span, record, record.name, Span.SPAN_KIND_INTERNAL, _renamed(record))

    def _root(self, span: Span, record: SpanRecord, bundle: TraceBundle) -> None:
        trace = bundle.trace
        pairs: dict[str, Any] = {
            "http.request.method": trace.method,
            "http.route": trace.route,
            "http.response.status_code": trace.http_status,
            "error.type": trace.error_type if trace.status == "error" else None,
            "steerway.trace_id": trace.trace_id,
            "steerway.request_id": trace.request_id,
            "steerway.workspace.id": trace.workspace_id,
            "steerway.api_key.id": trace.api_key_id,
            "steerway.model.requested": trace.requested_model,
            "steerway.provider": trace.provider,
            "steerway.stream": trace.stream,
            "steerway.overhead_ms": trace.overhead_ms,
            "steerway.tags": trace.tags or None,
            **decision_summary(bundle.decisions),
        }
        _fill(span, record, f"{trace.method} {trace.route}", Span.SPAN_KIND_SERVER, pairs)
        add_decision_events(span.events, bundle.decisions)
        if trace.parent_span_id is not None:
            span.flags = SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK | SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK

    def _provider_call(self, span: Span, record: SpanRecord, attempt: InteractionRecord) -> None:
        provider = self._providers.get(attempt.provider)
        answered = attempt.status == "ok"
        pairs: dict[str, Any] = {
            "gen_ai.operation.name": attempt.operation,
            "gen_ai.provider.name": provider.gen_ai_name if provider else attempt.provider,
            "gen_ai.request.model": attempt.provider_model,
            "gen_ai.response.model": attempt.provider_model if answered else None,
            "gen_ai.usage.input_tokens": attempt.prompt_tokens,
            "gen_ai.usage.output_tokens": attempt.completion_tokens,
            "gen_ai.response.finish_reasons": (
                [attempt.finish_reason] if attempt.finish_reason else None
            ),
            "server.address": provider.address if provider else None,
            "server.port": provider.port if provider else None,
            "error.type": attempt.error_type,
            "http.response.status_code": attempt.http_status,
            "steerway.provider": attempt.provider,
            "steerway.deployment": attempt.deployment,
            "steerway.model.requested": attempt.requested_model,
            "steerway.attempt": attempt.attempt,
            "steerway.stream": attempt.stream,
            "steerway.usage.cached_tokens": attempt.cached_tokens,
            "steerway.usage.estimated": attempt.usage_estimated or None,
            "steerway.cost_usd": attempt.cost_usd,
            "steerway.ttft_ms": attempt.ttft_ms,
        }
        name = f"{attempt.operation} {attempt.provider_model}"
        _fill(span, record, name, Span.SPAN_KIND_CLIENT, pairs)


def _fill(span: Span, record: SpanRecord, name: str, kind: Any, pairs: dict[str, Any]) -> None:
    span.span_id = bytes.fromhex(record.span_id)
    if record.parent_span_id:
        span.parent_span_id = bytes.fromhex(record.parent_span_id)
    span.name = name
    span.kind = kind
    span.start_time_unix_nano = int(record.started_at * 1e9)
    span.end_time_unix_nano = int(record.ended_at * 1e9)
    if record.status == "cancelled":
        pairs["steerway.cancelled"] = True
    put_attributes(span.attributes, pairs)
    if record.status == "error":
        span.status.code = Status.STATUS_CODE_ERROR
        error_type = pairs.get("error.type")
        if isinstance(error_type, str):
            span.status.message = error_type
    if record.events:
        _add_events(span, record)


def _renamed(record: SpanRecord) -> dict[str, Any]:
    """A stage's own attributes, names outside the conventions put under `steerway.`."""
    renamed: dict[str, Any] = {}
    for key, value in record.attributes.items():
        if key in _RENAMED:
            key = _RENAMED[key]
        elif not key.startswith(_KEPT_NAMESPACES):
            key = f"steerway.{key}"
        renamed[key] = value
    return renamed


def _add_events(span: Span, record: SpanRecord) -> None:
    for recorded in record.events:
        fields = dict(recorded)
        event = span.events.add()
        event.name = str(fields.pop("name", "event"))
        at = fields.pop("time", None)
        when = at if isinstance(at, int | float) and not isinstance(at, bool) else None
        event.time_unix_nano = int((when or record.started_at) * 1e9)
        put_attributes(event.attributes, fields)


def _version() -> str:
    try:
        return importlib.metadata.version("steerway")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"

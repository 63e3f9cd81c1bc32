"""Hand-built OTLP trace export requests, in protobuf and in OTLP/JSON, for `POST /v1/traces`."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status


def genai_attributes(
    model: str, input_tokens: int, output_tokens: int, **extra: Any
) -> dict[str, Any]:
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": model,
        "gen_ai.response.model": model,
        "gen_ai.usage.input_tokens": input_tokens,
        "gen_ai.usage.output_tokens": output_tokens,
        **extra,
    }


class SpanSpec:
    """One span to send: ids, times (default: the last second), attributes and events."""

    def __init__(
        self,
        name: str,
        attributes: dict[str, Any],
        *,
        events: list[tuple[str, dict[str, Any]]] | None = None,
        ended: float | None = None,
        duration: float = 0.8,
        error: str | None = None,
        trace_id: str | None = None,
    ) -> None:
        self.name = name
        self.attributes = attributes
        self.events = events or []
        self.ended = time.time() if ended is None else ended
        self.started = self.ended - duration
        self.error = error
        self.trace_id = trace_id or secrets.token_hex(16)
        self.span_id = secrets.token_hex(8)
        self.parent_span_id = secrets.token_hex(8)


def _nanos(seconds: float) -> int:
    return int(seconds * 1e9)


def _any_value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, (list, tuple)):
        out = AnyValue()
        out.array_value.values.extend(_any_value(item) for item in value)
        return out
    return AnyValue(string_value=str(value))


def _key_values(attributes: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=key, value=_any_value(value)) for key, value in attributes.items()]


def protobuf_request(spans: list[SpanSpec], service: str = "billing-app") -> bytes:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend(_key_values({"service.name": service}))
    scope = resource_spans.scope_spans.add()
    for spec in spans:
        span = Span(
            trace_id=bytes.fromhex(spec.trace_id),
            span_id=bytes.fromhex(spec.span_id),
            parent_span_id=bytes.fromhex(spec.parent_span_id),
            name=spec.name,
            kind=Span.SPAN_KIND_CLIENT,
            start_time_unix_nano=_nanos(spec.started),
            end_time_unix_nano=_nanos(spec.ended),
        )
        span.attributes.extend(_key_values(spec.attributes))
        for name, attributes in spec.events:
            event = span.events.add(name=name, time_unix_nano=_nanos(spec.ended))
            event.attributes.extend(_key_values(attributes))
        if spec.error is not None:
            span.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message=spec.error))
        scope.spans.append(span)
    return request.SerializeToString()


def _json_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}  # OTLP/JSON: 64-bit integers as decimal strings
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, (list, tuple)):
        return {"arrayValue": {"values": [_json_value(item) for item in value]}}
    return {"stringValue": str(value)}


def _json_attributes(attributes: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": key, "value": _json_value(value)} for key, value in attributes.items()]


def json_request(spans: list[SpanSpec], service: str = "billing-app") -> bytes:
    return json.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {"attributes": _json_attributes({"service.name": service})},
                    "scopeSpans": [
                        {
                            "scope": {"name": "hand-built"},
                            "spans": [
                                {
                                    "traceId": spec.trace_id,
                                    "spanId": spec.span_id,
                                    "parentSpanId": spec.parent_span_id,
                                    "name": spec.name,
                                    "kind": 3,
                                    "startTimeUnixNano": str(_nanos(spec.started)),
                                    "endTimeUnixNano": str(_nanos(spec.ended)),
                                    "attributes": _json_attributes(spec.attributes),
                                    "events": [
                                        {
                                            "timeUnixNano": str(_nanos(spec.ended)),
                                            "name": name,
                                            "attributes": _json_attributes(attributes),
                                        }
                                        for name, attributes in spec.events
                                    ],
                                    "status": {"code": 2, "message": spec.error}
                                    if spec.error is not None
                                    else {},
                                }
                                for spec in spans
                            ],
                        }
                    ],
                }
            ]
        }
    ).encode()

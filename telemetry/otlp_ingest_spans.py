"""OTLP trace export requests, protobuf or JSON, read into plain spans.

Only spans that may describe a GenAI call (they carry `gen_ai.operation.name`, `gen_ai.system`
or `gen_ai.provider.name`) are converted in full; the rest are counted and left undecoded past
their attribute keys, which keeps a large batch of ordinary spans cheap. A span that cannot be
read (a malformed id, a time that is not a number, an attribute over the size limit) is
rejected alone, with the reason; a body that cannot be read at all raises `OtlpDecodeError`.

The JSON form follows OTLP/JSON: lowerCamelCase keys, trace and span ids as hex, 64-bit
integers as numbers or decimal strings, enums as integers (their names are accepted too).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable
from typing import Any, Final, Protocol, TypeVar

import msgspec
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan

GENAI_MARKERS: Final = frozenset({"gen_ai.operation.name", "gen_ai.system", "gen_ai.provider.name"})
MAX_VALUE_DEPTH: Final = 16
STATUS_ERROR: Final = 2
_STATUS_NAMES: Final = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
_MAX_NANOS: Final = 2**64 - 1


class OtlpDecodeError(Exception):
    """The body is not an OTLP trace export request; the message says why."""


class TooManySpans(Exception):
    def __init__(self, count: int, limit: int) -> None:
        super().__init__(
            f"The request holds {count} spans; at most {limit} are accepted in one request. "
            "Lower the exporter's batch size (OTEL_BSP_MAX_EXPORT_BATCH_SIZE)."
        )


class SpanRejected(Exception):
    """One span cannot be used; the message says why (it reaches the client)."""


class OtlpEvent(msgspec.Struct, kw_only=True, gc=False):
    name: str
    time_ns: int
    attributes: dict[str, Any]


class OtlpSpan(msgspec.Struct, kw_only=True, gc=False):
    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    start_ns: int
    end_ns: int
    status_code: int
    status_message: str
    attributes: dict[str, Any]
    events: list[OtlpEvent]
    service: str | None = None


class DecodedSpans(msgspec.Struct, kw_only=True):
    """What a request held: the spans to interpret, and the counts of the others."""

    candidates: list[OtlpSpan] = msgspec.field(default_factory=list)
    ignored: int = 0
    rejected: list[str] = msgspec.field(default_factory=list)


class _Budget:
    """What is left of one attribute value's allowance."""

    __slots__ = ("left", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit

    def take(self, size: int, key: str) -> None:
        self.left -= size
        if self.left < 0:
            raise SpanRejected(
                f"attribute {_shown(key)} is longer than the limit of {self.limit} characters"
            )


def _shown(key: str) -> str:
    return repr(key if len(key) <= 100 else key[:100] + "…")


class _Keyed(Protocol):
    key: str


class _Span(Protocol):
    """What both encodings' spans offer before conversion."""

    @property
    def name(self) -> str: ...

    @property
    def attributes(self) -> Iterable[_Keyed]: ...


_S = TypeVar("_S", bound=_Span)


def _collect(
    groups: Iterable[tuple[str | None, list[_S]]],
    convert: Callable[[_S, str | None, int], OtlpSpan],
    max_attribute_length: int,
) -> DecodedSpans:
    """Each resource's spans, by service: the GenAI ones converted, the others counted."""
    decoded = DecodedSpans()
    for service, spans in groups:
        for span in spans:
            if not any(kv.key in GENAI_MARKERS for kv in span.attributes):
                decoded.ignored += 1
                continue
            try:
                decoded.candidates.append(convert(span, service, max_attribute_length))
            except SpanRejected as rejected:
                decoded.rejected.append(f"span {_shown(span.name)}: {rejected}")
    return decoded


# --- protobuf ---------------------------------------------------------------------------------


def decode_protobuf(body: bytes, *, max_spans: int, max_attribute_length: int) -> DecodedSpans:
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, RecursionError, ValueError) as error:
        raise OtlpDecodeError(
            f"The body is not a protobuf ExportTraceServiceRequest ({error or 'malformed'})."
        ) from None
    count = sum(len(scope.spans) for rs in request.resource_spans for scope in rs.scope_spans)
    if count > max_spans:
        raise TooManySpans(count, max_spans)
    groups = (
        (
            _proto_service(resource_spans.resource.attributes),
            [span for scope in resource_spans.scope_spans for span in scope.spans],
        )
        for resource_spans in request.resource_spans
    )
    return _collect(groups, _proto_span, max_attribute_length)


def _proto_service(attributes: Iterable[KeyValue]) -> str | None:
    for kv in attributes:
        if kv.key == "service.name" and kv.value.WhichOneof("value") == "string_value":
            return kv.value.string_value[:256]
    return None


def _proto_span(span: ProtoSpan, service: str | None, limit: int) -> OtlpSpan:
    return OtlpSpan(
        trace_id=_id_hex(span.trace_id, 16, "trace id"),
        span_id=_id_hex(span.span_id, 8, "span id"),
        parent_span_id=_id_hex(span.parent_span_id, 8, "parent span id")
        if span.parent_span_id
        else None,
        name=span.name[:256],
        start_ns=span.start_time_unix_nano,
        end_ns=span.end_time_unix_nano,
        status_code=span.status.code,
        status_message=span.status.message[:1000],
        attributes=_proto_attributes(span.attributes, limit),
        events=[
            OtlpEvent(
                name=event.name[:256],
                time_ns=event.time_unix_nano,
                attributes=_proto_attributes(event.attributes, limit),
            )
            for event in span.events
        ],
        service=service,
    )


def _id_hex(raw: bytes, size: int, what: str) -> str:
    if len(raw) != size or not any(raw):
        raise SpanRejected(f"its {what} is not {size} bytes, or is all zeros")
    return raw.hex()


def _proto_attributes(attributes: Iterable[KeyValue], limit: int) -> dict[str, Any]:
    return {kv.key: _proto_value(kv.value, _Budget(limit), kv.key, 0) for kv in attributes}


def _proto_value(value: AnyValue, budget: _Budget, key: str, depth: int) -> Any:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        budget.take(len(value.string_value), key)
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "bytes_value":
        budget.take(len(value.bytes_value), key)
        return base64.b64encode(value.bytes_value).decode()
    if depth >= MAX_VALUE_DEPTH:
        raise SpanRejected(f"attribute {_shown(key)} is nested deeper than {MAX_VALUE_DEPTH}")
    if kind == "array_value":
        return [_proto_value(item, budget, key, depth + 1) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {
            kv.key: _proto_value(kv.value, budget, key, depth + 1)
            for kv in value.kvlist_value.values
        }
    return None


# --- JSON -------------------------------------------------------------------------------------


class _JsonArray(msgspec.Struct):
    values: list[_JsonAnyValue] = []


class _JsonKeyValueList(msgspec.Struct):
    values: list[_JsonKeyValue] = []


class _JsonAnyValue(msgspec.Struct, rename="camel"):
    string_value: str | None = None
    bool_value: bool | None = None
    int_value: int | str | None = None
    double_value: float | str | None = None
    bytes_value: str | None = None
    array_value: _JsonArray | None = None
    kvlist_value: _JsonKeyValueList | None = None


class _JsonKeyValue(msgspec.Struct):
    key: str
    value: _JsonAnyValue | None = None


class _JsonStatus(msgspec.Struct):
    code: int | str = 0
    message: str = ""


class _JsonEvent(msgspec.Struct, rename="camel"):
    time_unix_nano: int | str = 0
    name: str = ""
    attributes: list[_JsonKeyValue] = []


class _JsonSpan(msgspec.Struct, rename="camel"):
    trace_id: str = ""
    span_id: str = ""
    parent_span_id: str = ""
    name: str = ""
    start_time_unix_nano: int | str = 0
    end_time_unix_nano: int | str = 0
    attributes: list[_JsonKeyValue] = []
    events: list[_JsonEvent] = []
    status: _JsonStatus | None = None


class _JsonScopeSpans(msgspec.Struct):
    spans: list[_JsonSpan] = []


class _JsonResource(msgspec.Struct):
    attributes: list[_JsonKeyValue] = []


class _JsonResourceSpans(msgspec.Struct, rename="camel"):
    resource: _JsonResource | None = None
    scope_spans: list[_JsonScopeSpans] = []


class _JsonRequest(msgspec.Struct, rename="camel"):
    resource_spans: list[_JsonResourceSpans] = []


_json_request = msgspec.json.Decoder(_JsonRequest)


def decode_json(body: bytes, *, max_spans: int, max_attribute_length: int) -> DecodedSpans:
    try:
        request = _json_request.decode(body)
    except (msgspec.DecodeError, RecursionError) as error:
        detail = str(error) if isinstance(error, msgspec.DecodeError) else "nested too deeply"
        raise OtlpDecodeError(
            f"The body is not an OTLP/JSON ExportTraceServiceRequest: {detail}"
        ) from None
    count = sum(len(scope.spans) for rs in request.resource_spans for scope in rs.scope_spans)
    if count > max_spans:
        raise TooManySpans(count, max_spans)
    groups = (
        (
            _json_service(resource_spans.resource.attributes)
            if resource_spans.resource is not None
            else None,
            [span for scope in resource_spans.scope_spans for span in scope.spans],
        )
        for resource_spans in request.resource_spans
    )
    return _collect(groups, _json_span, max_attribute_length)


def _json_service(attributes: list[_JsonKeyValue]) -> str | None:
    for kv in attributes:
        if kv.key == "service.name" and kv.value is not None and kv.value.string_value:
            return kv.value.string_value[:256]
    return None


def _json_span(span: _JsonSpan, service: str | None, limit: int) -> OtlpSpan:
    status = span.status or _JsonStatus()
    return OtlpSpan(
        trace_id=_hex_id(span.trace_id, 16, "traceId"),
        span_id=_hex_id(span.span_id, 8, "spanId"),
        parent_span_id=_hex_id(span.parent_span_id, 8, "parentSpanId")
        if span.parent_span_id
        else None,
        name=span.name[:256],
        start_ns=_nanos(span.start_time_unix_nano, "startTimeUnixNano"),
        end_ns=_nanos(span.end_time_unix_nano, "endTimeUnixNano"),
        status_code=_status_code(status.code),
        status_message=status.message[:1000],
        attributes=_json_attributes(span.attributes, limit),
        events=[
            OtlpEvent(
                name=event.name[:256],
                time_ns=_nanos(event.time_unix_nano, "timeUnixNano"),
                attributes=_json_attributes(event.attributes, limit),
            )
            for event in span.events
        ],
        service=service,
    )


def _hex_id(text: str, size: int, field: str) -> str:
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != size or not any(raw):
        raise SpanRejected(f"{field} is not {size * 2} hex digits, or is all zeros")
    return raw.hex()


def _nanos(value: int | str, field: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise SpanRejected(f"{field} is not a whole number") from None
    if not 0 <= number <= _MAX_NANOS:
        raise SpanRejected(f"{field} is out of range")
    return number


def _status_code(code: int | str) -> int:
    if isinstance(code, int):
        return code
    return _STATUS_NAMES.get(code, 0)


def _json_attributes(attributes: list[_JsonKeyValue], limit: int) -> dict[str, Any]:
    return {
        kv.key: _json_value(kv.value, _Budget(limit), kv.key, 0) if kv.value is not None else None
        for kv in attributes
    }


def _json_value(value: _JsonAnyValue, budget: _Budget, key: str, depth: int) -> Any:
    if value.string_value is not None:
        budget.take(len(value.string_value), key)
        return value.string_value
    if value.int_value is not None:
        try:
            return int(value.int_value)
        except ValueError:
            raise SpanRejected(f"attribute {_shown(key)} has an intValue that is not one") from None
    if value.double_value is not None:
        try:
            return float(value.double_value)
        except ValueError:
            raise SpanRejected(
                f"attribute {_shown(key)} has a doubleValue that is not one"
            ) from None
    if value.bool_value is not None:
        return value.bool_value
    if value.bytes_value is not None:
        budget.take(len(value.bytes_value), key)
        try:
            base64.b64decode(value.bytes_value, validate=True)
        except (binascii.Error, ValueError):
            raise SpanRejected(
                f"attribute {_shown(key)} has a bytesValue that is not base64"
            ) from None
        return value.bytes_value
    if depth >= MAX_VALUE_DEPTH:
        raise SpanRejected(f"attribute {_shown(key)} is nested deeper than {MAX_VALUE_DEPTH}")
    if value.array_value is not None:
        return [_json_value(item, budget, key, depth + 1) for item in value.array_value.values]
    if value.kvlist_value is not None:
        return {
            kv.key: _json_value(kv.value, budget, key, depth + 1) if kv.value is not None else None
            for kv in value.kvlist_value.values
        }
    return None

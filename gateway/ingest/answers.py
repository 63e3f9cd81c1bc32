"""What `POST /v1/traces` answers, in OTLP/HTTP's shapes rather than OpenAI's.

OTLP exporters read a failure's body as a `google.rpc.Status` (protobuf, or its JSON form for
JSON requests) and a success as an `ExportTraceServiceResponse`, whose `partial_success` tells
how many spans were rejected and why. The status code is the HTTP one; `Status.code` carries
the matching gRPC code, as the OTLP specification's examples do.
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)

Encoding = Literal["protobuf", "json"]

CONTENT_TYPES: Final[dict[Encoding, bytes]] = {
    "protobuf": b"application/x-protobuf",
    "json": b"application/json",
}
_GRPC_CODES: Final = {
    400: 3,  # INVALID_ARGUMENT
    401: 16,  # UNAUTHENTICATED
    403: 7,  # PERMISSION_DENIED
    405: 12,  # UNIMPLEMENTED
    413: 8,  # RESOURCE_EXHAUSTED
    415: 3,
    503: 14,  # UNAVAILABLE
}
_INTERNAL: Final = 13


class IngestError(Exception):
    """A refusal of the whole request; `message` is written for the sender."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def status_body(status: int, message: str, encoding: Encoding) -> bytes:
    """A `google.rpc.Status` with the gRPC code matching the HTTP `status`."""
    code = _GRPC_CODES.get(status, _INTERNAL)
    if encoding == "json":
        return msgspec.json.encode({"code": code, "message": message})
    text = message.encode()
    # Status { int32 code = 1; string message = 2; }: two fields, written directly.
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        low = number & 0x7F
        number >>= 7
        if number:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def success_body(rejected: int, message: str, encoding: Encoding) -> bytes:
    """An `ExportTraceServiceResponse`; `partial_success` only when spans were rejected."""
    if encoding == "json":
        if not rejected:
            return b"{}"
        return msgspec.json.encode(
            {"partialSuccess": {"rejectedSpans": rejected, "errorMessage": message}}
        )
    response = ExportTraceServiceResponse()
    if rejected:
        response.partial_success.CopyFrom(
            ExportTracePartialSuccess(rejected_spans=rejected, error_message=message)
        )
    return response.SerializeToString()

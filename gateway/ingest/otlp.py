"""`POST /v1/traces`: OTLP/HTTP trace export from applications that call providers directly.

An instrumented application's exporter sends its spans here with a virtual key; each GenAI model
call among them is recorded as a trace of `source = otlp` in the key's workspace, through the same
recorder as proxied requests, so lists, analytics and roll-ups count it beside them
(`telemetry.otlp_ingest_genai` says what is kept).

The order of checks: method, key, content type and encoding, body size (as sent, then after
gunzip, read with a cap so a gzip bomb stops at the limit), decoding, spans per request. Each
refusal answers in OTLP's own error shape (`gateway.ingest.answers`). Bodies past
`_DECODE_IN_THREAD_BYTES` are decoded in a worker thread, so one large request does not hold the
event loop for the whole of its decoding.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol

from gateway.entry.auth import Authenticator
from gateway.errors import GatewayError
from gateway.ingest.answers import (
    CONTENT_TYPES,
    Encoding,
    IngestError,
    status_body,
    success_body,
)
from gateway.ingest.config import OtlpIngestConfig
from providers.pricing import PriceTable
from telemetry import metrics
from telemetry.otlp_ingest_genai import IngestContext, Window, to_bundle
from telemetry.otlp_ingest_spans import (
    DecodedSpans,
    OtlpDecodeError,
    SpanRejected,
    TooManySpans,
    decode_json,
    decode_protobuf,
)
from telemetry.records import TraceBundle

logger = logging.getLogger("steerway.otlp")

PATH: Final = "/v1/traces"
_DECODE_IN_THREAD_BYTES: Final = 256 * 1024
_REASONS_SHOWN: Final = 5
_ENCODINGS: Final[dict[str, Encoding]] = {
    "application/x-protobuf": "protobuf",
    "application/protobuf": "protobuf",
    "application/json": "json",
}
_spans = metrics.Labelled(metrics.otlp_ingested_spans)
_requests = metrics.Labelled(metrics.otlp_requests)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class Congestion(Protocol):
    """The recorder's signal that it is far behind (see `Recorder.congested`)."""

    @property
    def congested(self) -> bool: ...


class ClientGone(Exception):
    """The sender disconnected before its body arrived."""


class OtlpIngest:
    """The ASGI app answering `POST /v1/traces`."""

    def __init__(
        self,
        *,
        authenticator: Authenticator,
        record: Callable[[TraceBundle], bool],
        prices: PriceTable,
        store_content: bool,
        config: OtlpIngestConfig,
        congestion: Congestion | None = None,
    ) -> None:
        self._authenticator = authenticator
        self._record = record
        self._prices = prices
        self._store_content = store_content
        self._config = config
        self._congestion = congestion
        self._window = Window(
            max_age=float(config.max_span_age_seconds), max_future=float(config.max_future_seconds)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {
            name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]
        }
        media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
        encoding = _ENCODINGS.get(media_type)
        answer_in: Encoding = encoding or "json"
        try:
            status, body = await self._export(scope, receive, headers, encoding)
            extra: dict[str, str] = {}
        except ClientGone:
            _requests("499").inc()
            return
        except IngestError as error:
            status, body, extra = (
                error.status,
                status_body(error.status, error.message, answer_in),
                error.headers,
            )
        except Exception:
            logger.exception("unhandled error on %s", PATH)
            message = "The gateway failed to handle this export; it has been logged."
            status, body, extra = 500, status_body(500, message, answer_in), {}
        _requests(str(status)).inc()
        response_headers = [
            (b"content-type", CONTENT_TYPES[answer_in]),
            (b"content-length", str(len(body)).encode()),
        ]
        response_headers.extend((name.encode(), value.encode()) for name, value in extra.items())
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _export(
        self,
        scope: Scope,
        receive: Receive,
        headers: dict[str, str],
        encoding: Encoding | None,
    ) -> tuple[int, bytes]:
        if scope["method"] != "POST":
            raise IngestError(405, f"Only POST is accepted at {PATH}.", {"allow": "POST"})
        try:
            key = await self._authenticator.authenticate(headers.get("authorization"))
        except GatewayError as error:
            raise IngestError(error.status, error.message, error.headers) from None
        if encoding is None:
            raise IngestError(
                415,
                "Send spans as application/x-protobuf or application/json (OTLP/HTTP).",
            )
        compression = headers.get("content-encoding", "").strip().lower()
        if compression not in ("", "identity", "gzip"):
            raise IngestError(415, "Content-Encoding must be gzip, or absent.")
        limit = self._config.max_body_bytes
        body = await _read_body(receive, headers, limit)
        if compression == "gzip":
            body = _gunzip(body, limit)
        decoded = await self._decode(body, encoding)
        congestion = self._congestion
        if congestion is not None and congestion.congested:
            raise IngestError(
                503,
                "The gateway's recorder is behind; retry this export later.",
                {"retry-after": "5"},
            )
        rejected = self._record_spans(decoded, key.workspace_id, key.key_id)
        message = _summary(rejected)
        return 200, success_body(len(rejected), message, encoding)

    async def _decode(self, body: bytes, encoding: Encoding) -> DecodedSpans:
        decode = decode_protobuf if encoding == "protobuf" else decode_json
        limits = {
            "max_spans": self._config.max_spans,
            "max_attribute_length": self._config.max_attribute_length,
        }
        try:
            if len(body) > _DECODE_IN_THREAD_BYTES:
                return await asyncio.to_thread(decode, body, **limits)
            return decode(body, **limits)
        except OtlpDecodeError as error:
            raise IngestError(400, str(error)) from None
        except TooManySpans as error:
            raise IngestError(413, str(error)) from None

    def _record_spans(self, decoded: DecodedSpans, workspace_id: str, key_id: str) -> list[str]:
        """Record each model call; the reasons of the spans rejected."""
        context = IngestContext(
            workspace_id=workspace_id,
            api_key_id=key_id,
            prices=self._prices,
            store_content=self._store_content,
            now=time.time(),
            window=self._window,
        )
        rejected = list(decoded.rejected)
        ignored = decoded.ignored
        accepted = 0
        for span in decoded.candidates:
            try:
                bundle = to_bundle(span, context)
            except SpanRejected as error:
                rejected.append(f"span {span.name!r}: {error}")
                continue
            if bundle is None:
                ignored += 1
            elif self._record(bundle):
                accepted += 1
            else:
                rejected.append(f"span {span.name!r}: the gateway's recorder queue is full")
        for result, count in (("accepted", accepted), ("ignored", ignored)):
            if count:
                _spans(result).inc(count)
        if rejected:
            _spans("rejected").inc(len(rejected))
        return rejected


def _summary(rejected: list[str]) -> str:
    if not rejected:
        return ""
    shown = "; ".join(rejected[:_REASONS_SHOWN])
    more = len(rejected) - _REASONS_SHOWN
    return f"{shown}; and {more} more" if more > 0 else shown


def _too_large(limit: int, what: str) -> IngestError:
    return IngestError(413, f"The {what} is larger than the limit of {limit} bytes.")


async def _read_body(receive: Receive, headers: dict[str, str], limit: int) -> bytes:
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit, "request body")
    parts: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit, "request body")
        parts.append(chunk)
        more = bool(message.get("more_body"))
    return b"".join(parts)


def _gunzip(body: bytes, limit: int) -> bytes:
    """The body inflated, stopping as soon as it passes `limit` bytes."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        inflated = inflater.decompress(body, limit + 1)
    except zlib.error:
        raise IngestError(400, "The body is not valid gzip.") from None
    if len(inflated) > limit:
        raise _too_large(limit, "decompressed request body")
    if not inflater.eof:
        raise IngestError(400, "The gzip stream is truncated.")
    if inflater.unused_data:
        raise IngestError(400, "There is data after the end of the gzip stream.")
    return inflated

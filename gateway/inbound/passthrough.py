"""Pass-through of an inbound API to a deployment that speaks it (see `providers.native`).

`/v1/messages` to an Anthropic deployment and `/v1/responses` to an OpenAI one skip the
translation both ways: the client's body goes upstream with only its model replaced, and the
provider's answer reaches the client byte for byte (the whole body, or each SSE piece as it
arrives). The pipeline around the call is the same as for a translated request: the body was
still decoded to its chat request, so rules, limits, input guardrails, the cache key and the
token estimates read what they always read; and the answer is still read as the chat
completion it stands for, for usage and cost, the finish reason, the recorded content, output
guardrails and the cache.

An attempt passes through when all of these hold, else it is translated as before:
- the deployment's provider answers the inbound API natively (`ProviderAdapter.native_api`);
- nothing the gateway did changed the request: no steering rule set or capped a parameter, no
  input guardrail masked anything;
- for a stream, no output guardrail reads it (they act on the chat stream, event by event);
- for the Responses API, the request continues no `previous_response_id` (the gateway keeps
  that conversation and sends it whole, translated).

Each attempt's provider span carries `steerway.inbound.mode`: `passthrough` or `translated`.
A whole answer an output guardrail changed reaches the client translated (and is marked so).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Final

import msgspec

from gateway.cache.stream import StreamAccumulator
from gateway.entry.answers import respond, start
from gateway.errors import GatewayError
from gateway.exchange import DisconnectWatch
from gateway.inbound.api import InboundApi, InboundSend
from gateway.inbound.passthrough_reading import readable_copy
from gateway.inbound.responses import ResponsesAnswer
from gateway.upstream.attempts import (
    Opening,
    client_error,
    record_attempt,
)
from providers.anthropic_native import MessagesNative
from providers.errors import UpstreamFailure, connection_reason
from providers.http_client import UpstreamResponse
from providers.native import MESSAGES, RESPONSES, NativeFormat, NativeStreamReader
from providers.openai_format import SSESplitter, event_data, read_chunk
from providers.openai_responses_native import ResponsesNative
from providers.usage import UNKNOWN_USAGE, estimated_prompt_tokens, estimated_usage
from telemetry import metrics
from telemetry.ids import span_id_hex

if TYPE_CHECKING:
    from gateway.exchange import Exchange, Receive
    from gateway.inbound.api import AnswerEncoder
    from gateway.upstream.routing import Target
    from gateway.upstream.stage import UpstreamStage

PASSTHROUGH: Final = "passthrough"
TRANSLATED: Final = "translated"
MODE_ATTRIBUTE: Final = "steerway.inbound.mode"
FORMATS: Final[dict[str, NativeFormat]] = {
    MESSAGES: MessagesNative(),
    RESPONSES: ResponsesNative(),
}
UNREAD_FIELD: Final = "steerway_unread_parts"
"""Set on the chat reading of a body that had parts left out of it (never sent anywhere: such a
request is only ever passed through)."""
_SSE: Final = b"text/event-stream"
_streams_cancelled = metrics.Labelled(metrics.streams_cancelled)


class NativeRequest:
    """An inbound request that may pass through: the client's body as it came, and the
    encoder the translated path would answer with."""

    __slots__ = ("body", "encoder", "format", "refusal", "send")

    def __init__(self, native: NativeFormat, send: InboundSend) -> None:
        self.format = native
        self.send = send
        self.body: dict[str, Any] | None = None
        self.encoder: AnswerEncoder | None = None
        self.refusal: GatewayError | None = None
        """What the chat translation refused in the body, read without it (see
        `gateway.inbound.passthrough_reading`): the request's answer wherever it is not passed through."""

    async def attempt(
        self,
        upstream: UpstreamStage,
        exchange: Exchange,
        target: Target,
        payload: dict[str, Any],
        receive: Receive,
        send: Any,
    ) -> float | None:
        """The upstream stage's attempt for this request (it knows the request only as
        `Exchange.native`, so the upstream stage never imports the inbound APIs)."""
        return await attempt(upstream, exchange, target, payload, receive, send)


class _Capture:
    """The route's inbound API, keeping the client's body and the encoder as it decodes."""

    def __init__(self, api: InboundApi, native: NativeRequest) -> None:
        self.api = api
        self.native = native
        self.operation = api.operation

    def decode(self, payload: dict[str, Any]) -> tuple[dict[str, Any], AnswerEncoder]:
        try:
            chat, encoder = self.api.decode(payload)
        except GatewayError as refused:
            readable = readable_copy(self.native.format.api, payload)
            if readable is None:
                raise
            try:
                chat, encoder = self.api.decode(readable)
            except GatewayError:
                raise refused from None
            self.native.refusal = refused
            # The cache key is the chat request's: keep two bodies that differ only in what
            # was left out from sharing one answer.
            chat[UNREAD_FIELD] = hashlib.sha256(msgspec.json.encode(payload)).hexdigest()
        self.native.body = payload
        self.native.encoder = encoder
        return chat, encoder

    def error_body(self, status: int, error: dict[str, Any]) -> bytes:
        return self.api.error_body(status, error)

    def error_event(self, error: dict[str, Any]) -> bytes:
        return self.api.error_event(error)


def offer(exchange: Exchange, send: InboundSend, api: str) -> None:
    """Let this request pass through where its deployment speaks `api` (a route's hook, before
    the pipeline runs)."""
    native = NativeRequest(FORMATS[api], send)
    send.api = _Capture(send.api, native)
    exchange.native = native


def passes_through(exchange: Exchange, native: NativeRequest, target: Target) -> bool:
    body = native.body
    if body is None or target.adapter.native_api != native.format.api:
        return False
    if native.format.api == RESPONSES and body.get("previous_response_id") is not None:
        return False
    steering = exchange.steering
    if steering is not None and (steering.set or steering.cap):
        return False
    outcome = exchange.guard_input
    if outcome is not None and outcome.maskers:
        return False
    selection = exchange.guarded
    return not (
        exchange.stream
        and selection is not None
        and (selection.local_output or selection.remote_output)
    )


async def attempt(
    upstream: UpstreamStage,
    exchange: Exchange,
    target: Target,
    payload: dict[str, Any],
    receive: Receive,
    send: Any,
) -> float | None:
    """One attempt of an inbound request that may pass through (the upstream stage's `_call` for
    these); the provider's latency in ms, or None for a stream that did not end well."""
    native = exchange.native
    assert native is not None
    spans = exchange.trace.spans
    first_span = len(spans)
    marked = [PASSTHROUGH if passes_through(exchange, native, target) else TRANSLATED]
    try:
        if marked[0] == TRANSLATED:
            if native.refusal is not None:
                raise native.refusal
            if exchange.stream:
                return await upstream._chat_stream(exchange, target, payload, receive, send)
            return await upstream._answer_once(exchange, target, payload, "chat", receive, send)
        if exchange.stream:
            return await _stream(upstream, exchange, target, native, payload, receive)
        return await _whole(upstream, exchange, target, native, payload, receive, marked)
    finally:
        for span in spans[first_span:]:
            if span.name.startswith("provider."):
                span.attributes[MODE_ATTRIBUTE] = marked[0]


async def _whole(
    upstream: UpstreamStage,
    exchange: Exchange,
    target: Target,
    native: NativeRequest,
    payload: dict[str, Any],
    receive: Receive,
    marked: list[str],
) -> float:
    assert native.body is not None
    span_id = span_id_hex()
    started = time.perf_counter()
    body = native.format.upstream_body(native.body, target.provider_model)
    with _opening(upstream, exchange, target, span_id, started, receive):
        response = await _send(exchange, target, native, body, span_id)
        raw = await target.adapter.read_body(response)
        result = native.format.read_whole(raw, target.public_model)
    ended = time.perf_counter()
    exchange.upstream_seconds = ended - started
    record_attempt(
        exchange,
        target,
        "chat",
        span_id,
        started,
        store_content=upstream.store_content,
        ended=ended,
        usage=result.usage,
        finish_reason=",".join(r or "" for r in result.finish_reasons) or None,
        prompt=payload.get("messages"),
        response=result.messages,
    )
    answer = result.body
    if exchange.guard_context is not None:
        answer = await upstream.guardrails.guard_answer(exchange, answer)
    if answer == result.body:
        _keep_response(native, raw)
        native.send.verbatim = True
        await respond(exchange, native.send, 200, raw, provider_headers=True)
    else:
        marked[0] = TRANSLATED  # a guardrail changed the answer: the client gets it translated
        await respond(exchange, native.send, 200, answer, provider_headers=True)
    if exchange.cache_key is not None:
        await upstream.cache.store(exchange, target, result.body, result.usage)
    return (ended - started) * 1000.0


class _Reading:
    """What the gateway reads from a passed-through stream, through the chat chunks the
    native reader turns its events into."""

    __slots__ = (
        "accumulator",
        "events",
        "finish_reason",
        "first_output",
        "output_chars",
        "reader",
        "splitter",
        "texts",
        "usage",
    )

    def __init__(self, reader: NativeStreamReader, accumulator: StreamAccumulator | None) -> None:
        self.reader = reader
        self.accumulator = accumulator
        self.splitter = SSESplitter()
        self.events = 0
        self.first_output: float | None = None
        self.output_chars = 0
        self.finish_reason: str | None = None
        self.usage = UNKNOWN_USAGE
        self.texts: list[str] = []

    def read(self, piece: bytes) -> None:
        for event in self.splitter.feed(piece):
            self._event(event)

    def close(self) -> None:
        for event in self.splitter.close():
            self._event(event)

    def _event(self, event: bytes) -> None:
        self.events += 1
        data = event_data(event)
        if data is None:
            return
        for chunk_event in self.reader.feed(data):
            chunk_data = event_data(chunk_event)
            if chunk_data is None or chunk_data == b"[DONE]":
                continue
            if self.accumulator is not None:
                self.accumulator.feed(chunk_data)
            chunk = read_chunk(chunk_data)
            if chunk.has_output and self.first_output is None:
                self.first_output = time.perf_counter()
            self.output_chars += chunk.output_chars
            if chunk.finish_reason is not None:
                self.finish_reason = chunk.finish_reason
            self.texts.extend(text for index, text in chunk.contents if index == 0)
            if chunk.usage is not None:
                self.usage = chunk.usage


async def _stream(
    upstream: UpstreamStage,
    exchange: Exchange,
    target: Target,
    native: NativeRequest,
    payload: dict[str, Any],
    receive: Receive,
) -> float | None:
    """A passed-through stream: the provider's pieces go to the client as they arrive. Until
    the first event is in, a failure may be retried; after it, the stream ends where the
    provider's did, with the API's own `error` event when the provider sent none."""
    assert native.body is not None
    send = native.send
    span_id = span_id_hex()
    started = time.perf_counter()
    body = native.format.upstream_body(native.body, target.provider_model)
    reading = _Reading(
        native.format.stream_reader(target.public_model),
        StreamAccumulator() if exchange.cache_key is not None else None,
    )
    response, pieces, first = await _open(
        upstream, exchange, target, native, body, reading, span_id, started, receive
    )
    exchange.upstream_seconds = time.perf_counter() - started
    watch = DisconnectWatch(receive)
    failure: UpstreamFailure | None = None
    told = False  # the provider's own error event reached the client
    try:
        send.verbatim = True
        await start(exchange, send, 200, _SSE, provider_headers=True)
        await send({"type": "http.response.body", "body": first, "more_body": True})
        async for piece in pieces:
            await send({"type": "http.response.body", "body": piece, "more_body": True})
            try:
                reading.read(piece)
            except UpstreamFailure as reported:
                told = True
                raise reported
        reading.close()
        if not reading.reader.finished:
            raise UpstreamFailure("disconnected", "the provider's stream ended before its end")
    except asyncio.CancelledError:
        watch.absorb()
    except UpstreamFailure as broken:
        failure = broken
    finally:
        watch.close()
        if failure is None and not watch.gone and response.at_eof():
            response.release()
        else:
            response.close()
    client_gone = watch.gone and not reading.reader.finished
    ended = time.perf_counter()
    usage = reading.usage
    cut_short = client_gone or failure is not None
    usage_estimated = cut_short and not usage.known and reading.first_output is not None
    if usage_estimated:
        usage = estimated_usage(
            estimated_prompt_tokens(payload, len(body)),
            reading.output_chars,
            reported=reading.reader.reported_usage(),
        )
    record_attempt(
        exchange,
        target,
        "chat",
        span_id,
        started,
        store_content=upstream.store_content,
        ended=ended,
        usage=usage,
        usage_estimated=usage_estimated,
        finish_reason=reading.finish_reason,
        first_output=reading.first_output,
        failure=failure,
        cancelled=client_gone,
        prompt=payload.get("messages"),
        response=[{"index": 0, "content": "".join(reading.texts)}]
        if upstream.store_content
        else None,
    )
    if client_gone:
        exchange.status = "cancelled"
        exchange.http_status = 499
        exchange.error_type = "client_disconnected"
        exchange.error_message = "the client disconnected mid-stream; upstream cancelled"
        _streams_cancelled(target.public_model).inc()
        return None
    if failure is not None:
        error = client_error(target, failure)
        exchange.status = "error"
        exchange.error_type = error.code or error.type
        exchange.error_message = error.message
        closing = b""
        if not told:
            fields = {"message": error.message, "type": error.type, "code": error.code}
            closing = send.api.error_event({**fields, "param": error.param})
        await send({"type": "http.response.body", "body": closing, "more_body": False})
        return None
    await send({"type": "http.response.body", "body": b"", "more_body": False})
    _keep_final(native, reading.reader.final)
    if reading.accumulator is not None:
        complete = reading.accumulator.result()
        if complete is not None:
            await upstream.cache.store(exchange, target, complete, usage)
    return (ended - started) * 1000.0


async def _open(
    upstream: UpstreamStage,
    exchange: Exchange,
    target: Target,
    native: NativeRequest,
    body: bytes,
    reading: _Reading,
    span_id: str,
    started: float,
    receive: Receive,
) -> tuple[UpstreamResponse, AsyncIterator[bytes], bytes]:
    """Send the request and read until its first whole event (within the first-token
    timeout); nothing has reached the client yet, so a failure here may be retried."""
    with _opening(upstream, exchange, target, span_id, started, receive) as opening:
        response = opening.response = await _send(exchange, target, native, body, span_id)
        pieces = _pieces(response)
        first: list[bytes] = []
        try:
            async with asyncio.timeout(target.first_token_timeout):
                async for piece in pieces:
                    first.append(piece)
                    reading.read(piece)
                    if reading.events:
                        break
        except TimeoutError:
            raise UpstreamFailure("timeout", "no first event in time") from None
        if not first:
            raise UpstreamFailure("malformed", "the provider sent an empty stream")
        return response, pieces, b"".join(first)


def _opening(
    upstream: UpstreamStage,
    exchange: Exchange,
    target: Target,
    span_id: str,
    started: float,
    receive: Receive,
) -> Opening:
    return Opening(
        exchange, target, "chat", span_id, started, receive, store_content=upstream.store_content
    )


async def _send(
    exchange: Exchange, target: Target, native: NativeRequest, body: bytes, span_id: str
) -> UpstreamResponse:
    return await target.adapter.send_native(
        body,
        headers=native.format.forwarded_headers(exchange.headers),
        traceparent=exchange.trace.traceparent_for(span_id),
        timeouts=target.timeout,
    )


async def _pieces(response: UpstreamResponse) -> AsyncIterator[bytes]:
    try:
        async for piece in response.iter_any():
            yield piece
    except TimeoutError as error:
        raise UpstreamFailure("timeout", "the stream stalled") from error
    except OSError as error:
        raise UpstreamFailure(
            "disconnected", f"the provider closed the stream early ({connection_reason(error)})"
        ) from error


def _keep_response(native: NativeRequest, raw: bytes) -> None:
    """A passed-through Responses answer goes to the workspace's store as a translated one
    would (when the request asked to store it)."""
    if isinstance(native.encoder, ResponsesAnswer):
        try:
            response = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            return
        _keep_final(native, response if isinstance(response, dict) else None)


def _keep_final(native: NativeRequest, response: dict[str, Any] | None) -> None:
    encoder = native.encoder
    if response is None or not isinstance(encoder, ResponsesAnswer):
        return
    if isinstance(response.get("id"), str):
        encoder.call.keep(encoder.request, response)

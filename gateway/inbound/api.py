"""Inbound API formats on the chat pipeline: one mechanism for every API besides chat.

An inbound API (Anthropic's Messages, legacy completions, ...) turns its request body into the
pipeline's chat request; the pipeline then runs exactly as for `/v1/chat/completions` (auth,
rules, limits, guardrails, cache, providers, recording). What the pipeline sends back, whole or
streamed, passes through `InboundSend`, which turns the chat answer and any error into the
inbound API's own shapes. The pipeline itself never learns which API it serves beyond the
operation name it records.

Adding an API: a class with the `InboundApi` members (its `decode` returns the chat request and
an `AnswerEncoder` for that request's answer), and an entry in `gateway.inbound.routes.handlers`
whose run sets `exchange.operation` and runs the proxy's pipeline
(`proxy.pipeline.run(..., inbound=send)`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import msgspec

from gateway.errors import invalid_request

if TYPE_CHECKING:
    from gateway.keys.store import KeyInfo

Message = dict[str, Any]
Send = Callable[[Message], Awaitable[None]]
Prepare = Callable[[dict[str, Any], "KeyInfo | None"], Awaitable[None]]
"""An async step on the decoded body, after authentication and before translation: what a
route needs from storage to translate (the Responses API's `previous_response_id`)."""

_SSE = b"text/event-stream"
_SSE_FRAME = b"\n\n"


class AnswerEncoder(Protocol):
    """Turns one request's chat answer into the inbound API's answer."""

    def whole(self, answer: dict[str, Any]) -> bytes:
        """A whole chat completion (the decoded JSON body) as the inbound API's body."""
        ...

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        """One chat completion chunk as zero or more of the inbound API's SSE events."""
        ...

    def done(self) -> bytes:
        """The events that close the stream (on `[DONE]` or the end of the body)."""
        ...


@runtime_checkable
class StreamErrors(Protocol):
    """An encoder that writes a stream's error event itself (numbered in its stream, say),
    instead of its API's `error_event`."""

    def error_event(self, error: dict[str, Any]) -> bytes: ...


class InboundApi(Protocol):
    """One inbound API format."""

    operation: str
    """The name recorded as the interaction's operation and matched by rules' `operation`."""

    def decode(self, payload: dict[str, Any]) -> tuple[dict[str, Any], AnswerEncoder]:
        """The chat request for a body of this API, and the encoder of its answer. Raises
        GatewayError (400) for a body the API does not accept or the gateway cannot translate."""
        ...

    def error_body(self, status: int, error: dict[str, Any]) -> bytes:
        """An error (OpenAI's `error` object as the pipeline made it) in this API's shape."""
        ...

    def error_event(self, error: dict[str, Any]) -> bytes:
        """An error after a stream began, as this API's SSE event (with its framing)."""
        ...


class InboundSend:
    """The ASGI `send` of an inbound API's request: translates what the pipeline answers.

    The response start is held until the first body message shows what it is (an error, a
    whole answer or a stream), because a whole body changes length when it is translated.
    """

    __slots__ = (
        "_encoder",
        "_failed",
        "_pending",
        "_send",
        "_streaming",
        "_tail",
        "api",
        "prepare",
        "verbatim",
    )

    def __init__(self, api: InboundApi, send: Send) -> None:
        self.api = api
        """The API's format; a route may replace it with one made for its request."""
        self.prepare: Prepare | None = None
        self.verbatim = False
        """Set when the answer passed through (`gateway.inbound.passthrough`): from then on
        every message goes to the client as it is."""
        self._send = send
        self._encoder: AnswerEncoder | None = None
        self._pending: Message | None = None
        self._streaming = False
        self._failed = False
        self._tail = b""

    def to_chat(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Decode the inbound body; from now on a successful answer is translated."""
        chat, self._encoder = self.api.decode(payload)
        return chat

    async def __call__(self, message: Message) -> None:
        if self.verbatim:
            await self._send(message)
            return
        if message["type"] == "http.response.start":
            self._pending = message
            return
        if message["type"] != "http.response.body":
            await self._send(message)
            return
        start = self._pending
        if start is not None:
            self._pending = None
            await self._first_body(start, message)
            return
        if self._streaming:
            await self._stream_body(message)
        else:
            await self._send(message)

    async def _first_body(self, start: Message, message: Message) -> None:
        status: int = start["status"]
        headers: list[tuple[bytes, bytes]] = start["headers"]
        streaming = any(n == b"content-type" and v == _SSE for n, v in headers)
        if streaming and status < 400 and self._encoder is not None:
            self._streaming = True
            await self._send(start)
            await self._stream_body(message)
            return
        body = self._tail + message.get("body", b"")
        if message.get("more_body"):
            self._pending, self._tail = start, body  # a whole body is translated whole
            return
        self._tail = b""
        if status >= 400:
            body = self.api.error_body(status, _error_object(body))
        elif self._encoder is not None:
            body = self._encoder.whole(_json_object(body))
        kept = [(n, v) for n, v in headers if n != b"content-length"]
        kept.append((b"content-length", str(len(body)).encode()))
        await self._send({**start, "headers": kept})
        await self._send({"type": "http.response.body", "body": body, "more_body": False})

    async def _stream_body(self, message: Message) -> None:
        encoder = self._encoder
        assert encoder is not None
        data = self._tail + message.get("body", b"")
        frames = data.split(_SSE_FRAME)
        self._tail = frames.pop()
        out = [self._translate_event(frame, encoder) for frame in frames if frame]
        more = bool(message.get("more_body"))
        if not more:
            if self._tail.strip():
                out.append(self._translate_event(self._tail, encoder))
                self._tail = b""
            if not self._failed:
                out.append(encoder.done())  # a stream that ended in an error event ends there
        await self._send({"type": "http.response.body", "body": b"".join(out), "more_body": more})

    def _translate_event(self, frame: bytes, encoder: AnswerEncoder) -> bytes:
        data = _event_data(frame)
        if data is None:
            return b""
        if data == b"[DONE]":
            return encoder.done()
        try:
            event = msgspec.json.decode(data)
        except msgspec.DecodeError:
            return b""
        if not isinstance(event, dict):
            return b""
        error = event.get("error")
        if isinstance(error, dict):
            self._failed = True
            if isinstance(encoder, StreamErrors):
                return encoder.error_event(error)
            return self.api.error_event(error)
        return encoder.chunk(event)


def sse(event: str, data: Any) -> bytes:
    """One named SSE event with a JSON payload."""
    return b"event: " + event.encode() + b"\ndata: " + msgspec.json.encode(data) + _SSE_FRAME


def require_object(payload: Any, name: str) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise invalid_request(f"'{name}' must be an object.", param=name)
    return payload


def json_arguments(text: Any) -> Any:
    """A tool call's arguments as JSON text decoded (an object); text that is not JSON stays
    whole under `_raw` so nothing is lost."""
    if isinstance(text, dict):
        return text
    if not isinstance(text, str) or not text.strip():
        return {}
    try:
        value = msgspec.json.decode(text)
    except msgspec.DecodeError:
        return {"_raw": text}
    return value if isinstance(value, dict) else {"_raw": text}


def _event_data(frame: bytes) -> bytes | None:
    for line in frame.split(b"\n"):
        if line.startswith(b"data:"):
            return line[5:].strip()
    return None


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _error_object(body: bytes) -> dict[str, Any]:
    error = _json_object(body).get("error")
    if isinstance(error, dict):
        return error
    return {"message": "The gateway could not answer.", "type": "api_error"}

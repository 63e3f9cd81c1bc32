"""The mock provider's Anthropic Messages API: `POST /v1/messages`, streaming and not.

It honours the same per-request `mock` control field as the OpenAI route. Errors have
Anthropic's shape, `{"type": "error", "error": {"type", "message"}}`; an injected error's
`mock.error_code` becomes its Anthropic equivalent (see `injected_error_document`). See
docs/providers.md.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web
from multidict import CIMultiDict

from providers.mock.anthropic_plan import (
    THINKING_SIGNATURE,
    AnthropicRequestError,
    MessagesPlan,
    PlannedBlock,
    PromptCache,
    plan_messages,
)
from providers.mock.chat_responses import SSE_HEADERS, new_id
from providers.mock.errors import retry_headers
from providers.mock.settings import Behaviour, MockControl, apply_control, default_behaviour
from providers.mock.sse import SSEWriter
from providers.mock.stats import RecordedRequest

if TYPE_CHECKING:
    from providers.mock.app import MockProvider

MESSAGES_PATH = "/v1/messages"
MALFORMED_BODY = b'{"id": "msg_mock", "type": "message", "content": [{"ty'
MALFORMED_EVENT = (
    b'event: content_block_delta\ndata: {"type": "content_block_delta", "delta": {"te\n\n'
)
_DISCONNECT_POLL_SECONDS = 0.05

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_ERROR_TYPE_NAMES = frozenset(ERROR_TYPES.values())
_MESSAGES = {
    "invalid_request_error": "The mock provider was asked to reject this request.",
    "authentication_error": "invalid x-api-key",
    "permission_error": "Your API key does not have permission to use the specified resource.",
    "not_found_error": "The requested resource could not be found.",
    "rate_limit_error": "Number of request tokens has exceeded your per-minute rate limit.",
    "api_error": "An unexpected error has occurred internal to the mock provider.",
    "overloaded_error": "Overloaded",
}
_NATIVE_BY_CODE = {
    "context_length_exceeded": (
        "invalid_request_error",
        "prompt is too long: 200001 tokens > 200000 maximum",
    ),
    "content_filter": ("invalid_request_error", "Output blocked by content filtering policy"),
}
"""Anthropic's error type and message for the OpenAI codes a test may put in `error_code`."""

_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


def error_type_for(status: int) -> str:
    return ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def error_document(status: int, message: str | None = None) -> dict[str, Any]:
    kind = error_type_for(status)
    text = message or _MESSAGES.get(kind, f"Mock error {status}.")
    return {"type": "error", "error": {"type": kind, "message": text}}


def injected_error_document(behaviour: Behaviour) -> dict[str, Any]:
    """The error a request with `mock.error` gets. `error_code` may be an OpenAI code with an
    Anthropic equivalent (`context_length_exceeded`, `content_filter`) or an Anthropic error
    type (`overloaded_error`); `error_message` replaces the message."""
    assert behaviour.error is not None
    document = error_document(behaviour.error)
    error = document["error"]
    code = behaviour.error_code
    if code is not None and code in _NATIVE_BY_CODE:
        error["type"], error["message"] = _NATIVE_BY_CODE[code]
    elif code is not None and code in _ERROR_TYPE_NAMES:
        error["type"] = code
        error["message"] = _MESSAGES.get(code, error["message"])
    if behaviour.error_message is not None:
        error["message"] = behaviour.error_message
    return document


def anthropic_error(
    status: int, message: str | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    return _error_response(status, error_document(status, message), headers)


def _error_response(
    status: int, document: dict[str, Any], headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status, body=_encode(document), content_type="application/json", headers=headers
    )


class AnthropicMessages:
    """The `/v1/messages` handler; shares settings, counters and the last request with the
    OpenAI routes of the same mock app."""

    def __init__(self, provider: MockProvider) -> None:
        self.provider = provider
        self.cache = PromptCache()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        provider = self.provider
        provider.stats.requests[MESSAGES_PATH] += 1
        try:
            body = await self._read_body(request)
            provider.count_model(body.get("model"))
            behaviour = self._behaviour(body)
            plan = plan_messages(body, behaviour, self.cache)
        except AnthropicRequestError as error:
            return anthropic_error(error.status, error.message)
        behaviour = provider.faults.resolve(behaviour, plan.model)
        if behaviour.hang:
            return await self._hang(request)
        mid_stream_error = plan.stream and behaviour.drop_after_chunks is not None
        if behaviour.error is not None and not mid_stream_error:
            await _sleep_ms(behaviour.latency_ms)
            document = injected_error_document(behaviour)
            return _error_response(
                behaviour.error, document, headers=retry_headers(behaviour.retry_after)
            )
        if plan.stream:
            return await MessagesStream(request, plan, behaviour, provider).run()
        try:
            await _sleep_ms(behaviour.latency_ms)
        except asyncio.CancelledError:
            provider.stats.requests_cancelled += 1
            raise
        if behaviour.malformed:
            return web.Response(body=MALFORMED_BODY, content_type="application/json")
        return web.Response(
            body=message_body(plan, with_usage=not behaviour.no_usage),
            content_type="application/json",
        )

    async def _read_body(self, request: web.Request) -> dict[str, Any]:
        expected = self.provider.settings.require_api_key
        if expected is not None:
            given = request.headers.get("x-api-key", "")
            if not hmac.compare_digest(given.encode(), expected.encode()):
                raise AnthropicRequestError("invalid x-api-key", status=401)
        if not request.headers.get("anthropic-version"):
            raise AnthropicRequestError("anthropic-version: header is required")
        try:
            body = _decode(await request.read())
        except msgspec.DecodeError:
            raise AnthropicRequestError("The request body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise AnthropicRequestError("The request body must be a JSON object.")
        headers = CIMultiDict(request.headers)
        headers.popall("x-api-key", None)
        self.provider.last_request = RecordedRequest(request.method, request.path, headers, body)
        return body

    def _behaviour(self, body: dict[str, Any]) -> Behaviour:
        base = default_behaviour(self.provider.settings)
        control = body.get("mock")
        if control is None:
            return base
        try:
            return apply_control(base, msgspec.convert(control, MockControl))
        except msgspec.ValidationError as error:
            raise AnthropicRequestError(f"mock: {error}") from None

    async def _hang(self, request: web.Request) -> web.Response:
        """Never answer; return once the client has gone away."""
        try:
            while not _client_gone(request):  # noqa: ASYNC110
                await asyncio.sleep(_DISCONNECT_POLL_SECONDS)
        except asyncio.CancelledError:
            self.provider.stats.requests_cancelled += 1
            raise
        self.provider.stats.requests_cancelled += 1
        return web.Response(status=499)


def usage_document(plan: MessagesPlan, output_tokens: int) -> dict[str, int]:
    return {
        "input_tokens": plan.input_tokens,
        "cache_creation_input_tokens": plan.cache_creation_tokens,
        "cache_read_input_tokens": plan.cache_read_tokens,
        "output_tokens": output_tokens,
    }


def message_body(plan: MessagesPlan, *, with_usage: bool) -> bytes:
    document = _message_document(plan, [_block_document(block) for block in plan.blocks])
    document["stop_reason"] = plan.stop_reason
    document["stop_sequence"] = plan.stop_sequence
    if with_usage:
        document["usage"] = usage_document(plan, plan.output_tokens)
    else:
        del document["usage"]
    return _encode(document)


def _message_document(plan: MessagesPlan, content: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": plan.model,
        "content": content,
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage_document(plan, 1),
    }


def _block_document(block: PlannedBlock) -> dict[str, Any]:
    if block.type == "text":
        return {"type": "text", "text": block.text}
    if block.type == "thinking":
        return {"type": "thinking", "thinking": block.text, "signature": THINKING_SIGNATURE}
    return {
        "type": "tool_use",
        "id": new_id("toolu_"),
        "name": block.name,
        "input": _decode(block.text) if block.pieces else {},
    }


class MessagesStream(SSEWriter):
    """Writes one message as Anthropic's server-sent events (`event: <type>\\ndata: {...}`).

    With `mock.error` and `mock.drop_after_chunks` both set, the stream sends an `error` event
    of that status's type after that many content chunks, as Anthropic does when it becomes
    overloaded mid-answer; `drop_after_chunks` alone closes the connection there.
    """

    def __init__(
        self, request: web.Request, plan: MessagesPlan, behaviour: Behaviour, provider: MockProvider
    ) -> None:
        self.request = request
        self.plan = plan
        self.behaviour = behaviour
        self.stats = provider.stats
        self.response = web.StreamResponse(headers=SSE_HEADERS)
        self._pending: list[bytes] = []
        self._with_usage = not behaviour.no_usage

    async def _write_events(self) -> bool:
        """Send the whole stream; True when it was cut on purpose."""
        behaviour = self.behaviour
        plan = self.plan
        await _sleep_ms(behaviour.latency_ms)
        await self.response.prepare(self.request)
        start = _message_document(plan, [])
        if not self._with_usage:
            del start["usage"]
        self._event("message_start", {"message": start})
        if behaviour.malformed:
            self._pending.append(MALFORMED_EVENT)
            self._event("message_stop", {})
            await self._flush()
            return False
        self._event("ping", {})
        await self._pause(behaviour.ttft_ms)

        sent = 0
        for index, block in enumerate(plan.blocks):
            self._event("content_block_start", {"index": index, "content_block": _opening(block)})
            size = behaviour.tokens_per_chunk
            for begin in range(0, len(block.pieces), size):
                if behaviour.drop_after_chunks is not None and sent >= behaviour.drop_after_chunks:
                    return await self._cut()
                if sent:
                    await self._pause(behaviour.chunk_interval_ms)
                text = "".join(block.pieces[begin : begin + size])
                self._event("content_block_delta", {"index": index, "delta": _delta(block, text)})
                sent += 1
            if block.type == "thinking":
                signature = {"type": "signature_delta", "signature": THINKING_SIGNATURE}
                self._event("content_block_delta", {"index": index, "delta": signature})
            self._event("content_block_stop", {"index": index})
        if behaviour.drop_after_chunks is not None:
            return await self._cut()

        delta: dict[str, Any] = {
            "delta": {"stop_reason": plan.stop_reason, "stop_sequence": plan.stop_sequence}
        }
        if self._with_usage:
            delta["usage"] = {"output_tokens": plan.output_tokens}
        self._event("message_delta", delta)
        self._event("message_stop", {})
        await self._flush()
        return False

    async def _cut(self) -> bool:
        """End the stream early: with an error event when an error was asked for, else by
        closing the connection mid-body."""
        if self.behaviour.error is not None:
            self._event("error", {"error": injected_error_document(self.behaviour)["error"]})
            await self._flush()
            return True
        await self._flush()
        transport = self.request.transport
        if transport is None:
            return True
        deadline = time.monotonic() + 1.0
        while transport.get_write_buffer_size() and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.001)
        transport.abort()
        return True

    def _event(self, kind: str, fields: dict[str, Any]) -> None:
        data = _encode({"type": kind, **fields})
        self._pending.append(b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n")


def _opening(block: PlannedBlock) -> dict[str, Any]:
    if block.type == "text":
        return {"type": "text", "text": ""}
    if block.type == "thinking":
        return {"type": "thinking", "thinking": "", "signature": ""}
    return {"type": "tool_use", "id": new_id("toolu_"), "name": block.name, "input": {}}


def _delta(block: PlannedBlock, text: str) -> dict[str, Any]:
    if block.type == "text":
        return {"type": "text_delta", "text": text}
    if block.type == "thinking":
        return {"type": "thinking_delta", "thinking": text}
    return {"type": "input_json_delta", "partial_json": text}


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def _sleep_ms(milliseconds: float) -> None:
    if milliseconds > 0:
        await asyncio.sleep(milliseconds / 1000.0)

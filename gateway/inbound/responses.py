"""`POST /v1/responses` on the inbound mechanism (`gateway.inbound.api`), one object per request.

Before translation (`prepare`, after authentication) the conversation of a
`previous_response_id` is loaded from the workspace's stored responses; a missing one is a 404
as OpenAI answers it. The answer, whole or streamed, becomes a `response` object, and when
`store` is on (the default) that response, with the conversation it was given, is handed to the
store's background writer as it leaves.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Final

import msgspec

from gateway.errors import GatewayError
from gateway.inbound.api import sse
from gateway.inbound.responses_answer import answer_to_response, response_id
from gateway.inbound.responses_request import (
    ResponsesRequest,
    previous_response_id,
    translate_request,
)
from gateway.inbound.responses_store import ResponseStore, stored
from gateway.inbound.responses_stream import ResponsesStream
from telemetry.schema import DEFAULT_WORKSPACE_ID

if TYPE_CHECKING:
    from gateway.keys.store import KeyInfo

OPERATION: Final = "responses"


def response_not_found(response_id: str, param: str | None = None) -> GatewayError:
    shown = response_id if len(response_id) <= 80 else response_id[:80] + "…"
    noun = "Previous response" if param else "Response"
    return GatewayError(
        404,
        f"{noun} with id '{shown}' not found.",
        param=param,
        code="previous_response_not_found" if param else None,
    )


class ResponsesCall:
    """The Responses API format for one request (an `InboundApi` with its `prepare` step)."""

    operation = OPERATION

    def __init__(self, store: ResponseStore | None) -> None:
        self.store = store
        self.key: KeyInfo | None = None
        self.history: list[Any] = []

    async def prepare(self, payload: dict[str, Any], key: KeyInfo | None) -> None:
        self.key = key
        previous = previous_response_id(payload)
        if previous is None:
            return
        found = None
        if self.store is not None:
            found = await self.store.load(self._workspace(), previous)
        if found is None:
            raise response_not_found(previous, "previous_response_id")
        self.history = found.conversation()

    def decode(self, payload: dict[str, Any]) -> tuple[dict[str, Any], ResponsesAnswer]:
        request = translate_request(payload, self.history)
        return request.chat, ResponsesAnswer(self, request)

    def error_body(self, status: int, error: dict[str, Any]) -> bytes:
        return msgspec.json.encode({"error": error})

    def error_event(self, error: dict[str, Any]) -> bytes:
        return sse("error", {"type": "error", **_error_fields(error), "sequence_number": 0})

    def keep(self, request: ResponsesRequest, response: dict[str, Any]) -> None:
        """Hand a finished response to the store (when the request asked to store it)."""
        if not request.store or self.store is None:
            return
        key = self.key
        self.store.save(
            stored(
                response,
                workspace_id=self._workspace(),
                api_key_id=key.key_id if key is not None else None,
                input_items=request.input_items,
                retention_days=self.store.retention_days,
            )
        )

    def _workspace(self) -> str:
        return self.key.workspace_id if self.key is not None else DEFAULT_WORKSPACE_ID


class ResponsesAnswer:
    """One request's chat answer as a response object, or as the Responses event stream."""

    def __init__(self, call: ResponsesCall, request: ResponsesRequest) -> None:
        self.call = call
        self.request = request
        self.response_id = response_id()
        self._stream: ResponsesStream | None = None
        self._over = False

    def whole(self, answer: dict[str, Any]) -> bytes:
        model = answer.get("model")
        response = answer_to_response(
            answer,
            self.response_id,
            model if isinstance(model, str) else self.request.model,
            self.request.echo,
            _created(answer),
        )
        self.call.keep(self.request, response)
        return msgspec.json.encode(response)

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        if self._over:
            return b""
        opened = b""
        if self._stream is None:
            model = chunk.get("model")
            self._stream = ResponsesStream(
                self.response_id,
                model if isinstance(model, str) else self.request.model,
                self.request.echo,
            )
            opened = self._stream.open()
        return opened + self._stream.feed(chunk)

    def done(self) -> bytes:
        if self._over:
            return b""
        self._over = True
        opened = b""
        if self._stream is None:
            self._stream = ResponsesStream(self.response_id, self.request.model, self.request.echo)
            opened = self._stream.open()
        closing = self._stream.close()
        if self._stream.final is not None:
            self.call.keep(self.request, self._stream.final)
        return opened + closing

    def error_event(self, error: dict[str, Any]) -> bytes:
        """A stream the gateway could not finish: its `error` event, and nothing after."""
        self._over = True
        fields = _error_fields(error)
        if self._stream is None:
            return sse("error", {"type": "error", **fields, "sequence_number": 0})
        return self._stream.error(fields["code"], fields["message"], fields["param"])


def _error_fields(error: dict[str, Any]) -> dict[str, Any]:
    message = error.get("message")
    code = error.get("code") or error.get("type")
    param = error.get("param")
    return {
        "code": code if isinstance(code, str) else None,
        "message": message if isinstance(message, str) else "The gateway could not answer.",
        "param": param if isinstance(param, str) else None,
    }


def _created(answer: dict[str, Any]) -> int:
    created = answer.get("created")
    return (
        created if isinstance(created, int) and not isinstance(created, bool) else int(time.time())
    )

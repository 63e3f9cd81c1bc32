"""The routes of the inbound APIs under `/v1`, run on the proxy's chat pipeline.

Each entry is `(method, run, recorded route, inbound API)`; the proxy wraps `send` in
`InboundSend` for the entries that name an API, so their errors leave in that API's shape.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec

from gateway.entry.answers import respond
from gateway.entry.validation import decode_object, validate_chat
from gateway.errors import model_not_found
from gateway.inbound import passthrough
from gateway.inbound.api import InboundApi, InboundSend
from gateway.inbound.completions import CompletionsApi
from gateway.inbound.messages import MessagesApi, estimated_input_tokens
from gateway.inbound.responses_routes import create_handler, item_handler

if TYPE_CHECKING:
    from gateway.exchange import Exchange
    from gateway.proxy import Proxy

Run = Callable[..., Awaitable[None]]
Handler = tuple[str, Run, str, InboundApi | None]

MESSAGES = MessagesApi()
COMPLETIONS = CompletionsApi()
MODEL_ROUTE = "/v1/models/{id}"
_MODEL_PREFIX = "/models/"


def handlers(proxy: Proxy) -> dict[str, Handler]:
    """The fixed paths (relative to `/v1`) of the inbound APIs."""

    async def messages(exchange: Exchange, receive: Any, send: InboundSend) -> None:
        exchange.operation = MESSAGES.operation
        _accept_x_api_key(exchange)
        passthrough.offer(exchange, send, MESSAGES.operation)
        await proxy.pipeline.run(exchange, receive, send, "chat", inbound=send)

    async def count_tokens(exchange: Exchange, receive: Any, send: InboundSend) -> None:
        exchange.operation = MESSAGES.operation
        _accept_x_api_key(exchange)
        await proxy.entry.authenticate(exchange)
        body = await proxy.entry.read_body(exchange, receive)
        chat, _ = MESSAGES.decode(decode_object(body), counting=True)
        exchange.requested_model = validate_chat(chat)
        answer = {"input_tokens": estimated_input_tokens(chat)}
        await respond(exchange, send, 200, msgspec.json.encode(answer))

    async def completions(exchange: Exchange, receive: Any, send: InboundSend) -> None:
        exchange.operation = COMPLETIONS.operation
        await proxy.pipeline.run(exchange, receive, send, "chat", inbound=send)

    return {
        "/messages": ("POST", messages, "/v1/messages", MESSAGES),
        "/messages/count_tokens": ("POST", count_tokens, "/v1/messages/count_tokens", MESSAGES),
        "/completions": ("POST", completions, "/v1/completions", COMPLETIONS),
        "/responses": create_handler(proxy),
    }


def by_prefix(proxy: Proxy, path: str, scope: dict[str, Any]) -> Handler | None:
    """Paths with an id in them: `GET /v1/models/{id}`, `GET`/`DELETE /v1/responses/{id}` and
    `GET /v1/responses/{id}/input_items`."""
    if not path.startswith(_MODEL_PREFIX):
        return item_handler(proxy, path, scope["method"], scope.get("query_string", b""))
    model = path[len(_MODEL_PREFIX) :]

    async def retrieve_model(exchange: Exchange, receive: Any, send: Any) -> None:
        await proxy.entry.authenticate(exchange)
        if not model or model not in proxy.router:
            raise model_not_found(model)
        exchange.requested_model = model
        body = {"id": model, "object": "model", "created": 0, "owned_by": "steerway"}
        await respond(exchange, send, 200, msgspec.json.encode(body))

    return ("GET", retrieve_model, MODEL_ROUTE, None)


def _accept_x_api_key(exchange: Exchange) -> None:
    """Anthropic's clients send the key as `x-api-key`; the gateway's own keys work either way."""
    headers = exchange.headers
    if "authorization" not in headers:
        key = headers.get("x-api-key")
        if key:
            headers["authorization"] = "Bearer " + key.strip()

"""The routes of the Responses API: `POST /v1/responses` on the chat pipeline, and `GET` and
`DELETE /v1/responses/{id}` on the workspace's stored responses.

A stored response of another workspace is answered exactly like one that never existed (404),
so ids say nothing across workspaces.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import msgspec

from gateway.inbound import InboundSend
from gateway.inbound_responses import OPERATION, ResponsesCall, response_not_found
from gateway.validation import validate_chat
from telemetry.schema import DEFAULT_WORKSPACE_ID

if TYPE_CHECKING:
    from gateway.inbound_routes import Handler
    from gateway.proxy import Exchange, Proxy

ROUTE: Final = "/v1/responses"
ITEM_ROUTE: Final = "/v1/responses/{id}"
FORMAT: Final = ResponsesCall(None)
"""The format errors take before a request has its own (a refused method, say)."""
_PREFIX: Final = "/responses/"


def create_handler(proxy: Proxy) -> Handler:
    async def create(exchange: Exchange, receive: Any, send: InboundSend) -> None:
        exchange.operation = OPERATION
        call = ResponsesCall(proxy.responses)
        send.api = call
        send.prepare = call.prepare
        await proxy._pipeline(exchange, receive, send, "chat", validate_chat, inbound=send)

    return ("POST", create, ROUTE, FORMAT)


def item_handler(proxy: Proxy, path: str, method: str) -> Handler | None:
    """`GET` or `DELETE /v1/responses/{id}`; None for a path that is not one."""
    if not path.startswith(_PREFIX):
        return None
    response_id = path[len(_PREFIX) :]
    if not response_id or "/" in response_id:
        return None

    async def retrieve(exchange: Exchange, receive: Any, send: Any) -> None:
        await proxy._authenticate(exchange)
        store = proxy.responses
        found = await store.load(_workspace(exchange), response_id) if store else None
        if found is None:
            raise response_not_found(response_id)
        exchange.requested_model = found.model
        await proxy._respond(exchange, send, 200, msgspec.json.encode(found.as_response()))

    async def delete(exchange: Exchange, receive: Any, send: Any) -> None:
        await proxy._authenticate(exchange)
        store = proxy.responses
        if store is None or not await store.delete(_workspace(exchange), response_id):
            raise response_not_found(response_id)
        body = {"id": response_id, "object": "response.deleted", "deleted": True}
        await proxy._respond(exchange, send, 200, msgspec.json.encode(body))

    if method == "DELETE":
        return ("DELETE", delete, ITEM_ROUTE, FORMAT)
    return ("GET", retrieve, ITEM_ROUTE, FORMAT)


def _workspace(exchange: Exchange) -> str:
    key = exchange.key
    return key.workspace_id if key is not None else DEFAULT_WORKSPACE_ID

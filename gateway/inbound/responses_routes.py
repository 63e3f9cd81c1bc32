"""The routes of the Responses API: `POST /v1/responses` on the chat pipeline; `GET` and
`DELETE /v1/responses/{id}` and `GET /v1/responses/{id}/input_items` on the workspace's stored
responses.

A stored response of another workspace is answered exactly like one that never existed (404),
so ids say nothing across workspaces.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import msgspec

from gateway.entry.answers import respond
from gateway.inbound import passthrough
from gateway.inbound.api import InboundSend
from gateway.inbound.responses import OPERATION, ResponsesCall, response_not_found
from gateway.inbound.responses_items import Page, input_items_page
from telemetry.schema import DEFAULT_WORKSPACE_ID

if TYPE_CHECKING:
    from gateway.exchange import Exchange
    from gateway.inbound.routes import Handler
    from gateway.proxy import Proxy

ROUTE: Final = "/v1/responses"
ITEM_ROUTE: Final = "/v1/responses/{id}"
ITEMS_ROUTE: Final = "/v1/responses/{id}/input_items"
_ITEMS: Final = "input_items"
FORMAT: Final = ResponsesCall(None)
"""The format errors take before a request has its own (a refused method, say)."""
_PREFIX: Final = "/responses/"


def create_handler(proxy: Proxy) -> Handler:
    async def create(exchange: Exchange, receive: Any, send: InboundSend) -> None:
        exchange.operation = OPERATION
        call = ResponsesCall(proxy.responses)
        send.api = call
        send.prepare = call.prepare
        passthrough.offer(exchange, send, OPERATION)
        await proxy.pipeline.run(exchange, receive, send, "chat", inbound=send)

    return ("POST", create, ROUTE, FORMAT)


def item_handler(proxy: Proxy, path: str, method: str, query: bytes) -> Handler | None:
    """`GET` or `DELETE /v1/responses/{id}`, `GET /v1/responses/{id}/input_items`; None for a
    path that is none of them."""
    if not path.startswith(_PREFIX):
        return None
    response_id, _, rest = path[len(_PREFIX) :].partition("/")
    if not response_id or rest not in ("", _ITEMS):
        return None

    async def input_items(exchange: Exchange, receive: Any, send: Any) -> None:
        await proxy.entry.authenticate(exchange)
        page = Page(query)
        store = proxy.responses
        found = await store.load(_workspace(exchange), response_id) if store else None
        if found is None:
            raise response_not_found(response_id)
        exchange.requested_model = found.model
        listing = input_items_page(response_id, found.input_items, page)
        await respond(exchange, send, 200, msgspec.json.encode(listing))

    if rest:
        return ("GET", input_items, ITEMS_ROUTE, FORMAT)

    async def retrieve(exchange: Exchange, receive: Any, send: Any) -> None:
        await proxy.entry.authenticate(exchange)
        store = proxy.responses
        found = await store.load(_workspace(exchange), response_id) if store else None
        if found is None:
            raise response_not_found(response_id)
        exchange.requested_model = found.model
        await respond(exchange, send, 200, msgspec.json.encode(found.as_response()))

    async def delete(exchange: Exchange, receive: Any, send: Any) -> None:
        await proxy.entry.authenticate(exchange)
        store = proxy.responses
        if store is None or not await store.delete(_workspace(exchange), response_id):
            raise response_not_found(response_id)
        body = {"id": response_id, "object": "response.deleted", "deleted": True}
        await respond(exchange, send, 200, msgspec.json.encode(body))

    if method == "DELETE":
        return ("DELETE", delete, ITEM_ROUTE, FORMAT)
    return ("GET", retrieve, ITEM_ROUTE, FORMAT)


def _workspace(exchange: Exchange) -> str:
    key = exchange.key
    return key.workspace_id if key is not None else DEFAULT_WORKSPACE_ID

"""The OpenAI-compatible routes under `/v1`: the product's hot path, as a raw ASGI app.

A request is dispatched to its route; the chat, embeddings and inbound routes run the pipeline
(`gateway.pipeline`: entry, steering, limits, guardrails, cache, upstream), and every request ends
by handing one trace bundle to the recorder. Nothing here touches the database except the key
lookup on a cache miss; telemetry is a single enqueue.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

import msgspec

from gateway.cache.response_cache import ResponseCache
from gateway.cache.stage import CacheStage
from gateway.entry.answers import fail, respond
from gateway.entry.auth import Authenticator
from gateway.entry.stage import EntryStage
from gateway.errors import GatewayError, internal_error, method_not_allowed, not_found
from gateway.exchange import ClientGone, Exchange, Receive, Scope, Send, decode_headers
from gateway.guardrails.engine import Guardrails
from gateway.guardrails.stage import GuardrailStage
from gateway.inbound import routes as inbound_routes
from gateway.inbound.api import InboundApi, InboundSend
from gateway.inbound.responses_store import ResponseStore
from gateway.limits.admission import Admission
from gateway.limits.stage import LimitsStage
from gateway.pipeline import request_path
from gateway.recording import Recording
from gateway.steering.stage import RuleSource, SteeringStage
from gateway.upstream.answer_hold import FinalMessageHold
from gateway.upstream.health import DeploymentHealth, InProcessHealth
from gateway.upstream.routing import Router
from gateway.upstream.stage import UpstreamStage
from telemetry import metrics
from telemetry.records import TraceBundle

logger = logging.getLogger("steerway.proxy")

Handler = tuple[str, Callable[..., Awaitable[None]], str, "InboundApi | None"]
"""A route's method, run, recorded route and inbound API (None: answered in OpenAI's shapes)."""


class Backpressure(Protocol):
    """The recorder's signal that it is far behind (see `Recorder.room`)."""

    @property
    def congested(self) -> bool: ...

    async def room(self) -> None: ...


class Proxy:
    """The ASGI app mounted at `/v1`."""

    def __init__(
        self,
        *,
        router: Router,
        authenticator: Authenticator,
        record: Callable[[TraceBundle], bool],
        store_content: bool,
        max_body_bytes: int,
        health: DeploymentHealth | None = None,
        backpressure: Backpressure | None = None,
        rules: RuleSource | None = None,
        cache: ResponseCache | None = None,
        cache_enabled: bool = True,
        cache_ttl: int = 3600,
        admission: Admission | None = None,
        guardrails: Guardrails | None = None,
        unauthenticated_traces_per_minute: int = 0,
        durable: Callable[[], Awaitable[None]] | None = None,
        responses: ResponseStore | None = None,
    ) -> None:
        self.router = router
        self.authenticator = authenticator
        self.responses = responses
        """The Responses API's stored responses (None: nothing is stored or found)."""
        self.durable = durable
        self.backpressure = backpressure
        self.entry = EntryStage(authenticator, max_body_bytes)
        guarding = GuardrailStage(guardrails, record)
        caching = CacheStage(
            cache,
            enabled=cache_enabled,
            ttl=cache_ttl,
            store_content=store_content,
            guardrails=guarding,
        )
        self.pipeline = request_path(
            entry=self.entry,
            steering=SteeringStage(router, rules, admission),
            limits=LimitsStage(admission) if admission is not None else None,
            guardrails=guarding,
            cache=caching,
            upstream=UpstreamStage(
                router=router,
                health=health or InProcessHealth(),
                store_content=store_content,
                guardrails=guarding,
                cache=caching,
            ),
        )
        self.recording = Recording(record, router, unauthenticated_traces_per_minute)
        self._handlers: dict[str, Handler] = {
            "/chat/completions": ("POST", self._chat, "/v1/chat/completions", None),
            "/embeddings": ("POST", self._embeddings, "/v1/embeddings", None),
            "/models": ("GET", self._models, "/v1/models", None),
            **inbound_routes.handlers(self),
        }
        self._models_body = msgspec.json.encode(
            {
                "object": "list",
                "data": [
                    {"id": name, "object": "model", "created": 0, "owned_by": "steerway"}
                    for name in router.model_names
                ],
            }
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"].rstrip("/") or "/"
        handler = self._handlers.get(path) or inbound_routes.by_prefix(self, path, scope)
        # The route is a metric label and a stored column: never the client's own path.
        route = handler[2] if handler is not None else metrics.UNMATCHED_ROUTE
        exchange = Exchange(route, decode_headers(scope["headers"]), scope["method"])
        hold = None
        if self.durable is not None:
            hold = FinalMessageHold(send)
            send = hold.send
        if handler is not None and handler[3] is not None:
            send = InboundSend(handler[3], send)
        try:
            if handler is None:
                raise not_found(scope["method"], "/v1" + path)
            method, run, _, _ = handler
            if scope["method"] != method:
                raise method_not_allowed(scope["method"], route)
            pressure = self.backpressure
            if pressure is not None and pressure.congested:
                await pressure.room()
            await run(exchange, receive, send)
        except GatewayError as error:
            await fail(exchange, send, error)
        except ClientGone:
            exchange.status = "cancelled"
            exchange.http_status = 499
            exchange.error_type = "client_disconnected"
        except Exception:
            logger.exception("unhandled error on %s (trace %s)", route, exchange.trace.trace_id)
            await fail(exchange, send, internal_error())
        finally:
            self.recording.finish(exchange)
            if hold is not None:
                await self._answer_once_recorded(hold)

    async def _answer_once_recorded(self, hold: FinalMessageHold) -> None:
        assert self.durable is not None
        try:
            await self.durable()
        finally:
            await hold.release()

    # --- routes -----------------------------------------------------------------------------

    async def _chat(self, exchange: Exchange, receive: Receive, send: Send) -> None:
        await self.pipeline.run(exchange, receive, send, "chat")

    async def _embeddings(self, exchange: Exchange, receive: Receive, send: Send) -> None:
        exchange.operation = "embeddings"
        await self.pipeline.run(exchange, receive, send, "embeddings")

    async def _models(self, exchange: Exchange, receive: Receive, send: Send) -> None:
        await self.entry.authenticate(exchange)
        await respond(exchange, send, 200, self._models_body)

"""The cache stage: answer from the cache when the policy allows and an answer is there (through
the output guardrails, as a stream when one was asked for), or mark the request's answer to be
stored once the provider gives it."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import msgspec

from gateway.cache import response_cache
from gateway.cache.response_cache import CacheDecision, CachedResponse, ResponseCache
from gateway.cache.stream import replay_events
from gateway.entry.answers import SSE, respond, start
from gateway.errors import GatewayError, invalid_request
from gateway.exchange import Exchange, Receive, Send
from gateway.guardrails.stage import GuardrailStage
from providers.usage import Usage
from telemetry.ids import uuid7_hex
from telemetry.records import InteractionRecord
from telemetry.schema import DEFAULT_WORKSPACE_ID

if TYPE_CHECKING:
    from gateway.upstream.routing import Route, Target


class CacheStage:
    """Left out of the pipeline when there is no cache; `store` then never has a key to use."""

    __slots__ = ("cache", "enabled", "guardrails", "store_content", "ttl")

    def __init__(
        self,
        cache: ResponseCache | None,
        *,
        enabled: bool,
        ttl: int,
        store_content: bool,
        guardrails: GuardrailStage,
    ) -> None:
        self.cache = cache
        self.enabled = enabled
        self.ttl = ttl
        self.store_content = store_content
        self.guardrails = guardrails

    def _decision(
        self, exchange: Exchange, payload: dict[str, Any], operation: str
    ) -> CacheDecision:
        steering = exchange.steering
        try:
            return response_cache.resolve_policy(
                operation=operation,
                default_ttl=self.ttl,
                enabled=self.enabled,
                rule=steering.cache if steering is not None else None,
                header=exchange.headers.get(response_cache.HEADER),
                payload=payload,
            )
        except ValueError as error:
            raise invalid_request(
                str(error), param=response_cache.HEADER, code="invalid_cache_header"
            ) from None

    async def run(self, exchange: Exchange, receive: Receive, send: Send) -> bool:
        """Answer from the cache when the policy allows and an answer is there; otherwise
        note whether the provider's answer is to be stored. True when answered."""
        if self.cache is None:
            return False
        route = exchange.steered
        assert route is not None
        payload = exchange.payload
        operation = exchange.call
        decision = self._decision(exchange, payload, operation)
        exchange.cache_status = decision.status
        if not decision.active:
            response_cache.count_request(operation, decision.status)
            return False
        started = time.perf_counter()
        key = response_cache.cache_key(
            exchange.key.workspace_id if exchange.key else DEFAULT_WORKSPACE_ID,
            route.name,
            operation,
            payload,
        )
        lookup = await self.cache.get(key) if decision.read else None
        ended = time.perf_counter()
        if lookup is not None and lookup.refused:
            exchange.cache_status = None
            exchange.trace.add_decision(
                "cache_decision",
                "cache",
                input={"read": decision.read, "write": decision.write, "ttl": decision.ttl},
                output={"status": "unavailable", "degraded": True},
                reasoning="Redis unavailable and cache.on_redis_error is closed: refused",
                evaluation_us=(ended - started) * 1e6,
            )
            raise GatewayError(
                503,
                "The response cache is unavailable.",
                type="server_error",
                code="limits_unavailable",
            )
        entry = lookup.entry if lookup is not None else None
        status = response_cache.HIT if entry is not None else decision.status
        exchange.cache_status = status
        response_cache.count_request(operation, status)
        degraded = lookup is not None and lookup.degraded
        exchange.trace.add_decision(
            "cache_decision",
            "cache",
            input={"read": decision.read, "write": decision.write, "ttl": decision.ttl},
            output={"status": status, "degraded": degraded},
            reasoning=decision.reason
            + ("; Redis unavailable: served without the cache" if degraded else ""),
            evaluation_us=(ended - started) * 1e6,
        )
        if entry is None:
            if decision.write and not degraded:
                exchange.cache_key = key
                exchange.cache_ttl = decision.ttl
            return False
        await self._answer(exchange, route, payload, operation, entry, send, started)
        return True

    async def _answer(
        self,
        exchange: Exchange,
        route: Route,
        payload: dict[str, Any],
        operation: str,
        entry: CachedResponse,
        send: Send,
        started: float,
    ) -> None:
        exchange.provider = entry.provider
        exchange.provider_model = entry.provider_model
        usage = entry.usage
        if operation == "chat" and exchange.guard_context is not None:
            guarded = await self.guardrails.guard_answer(exchange, entry.body)
            entry = msgspec.structs.replace(entry, body=guarded)
        if exchange.stream and operation == "chat":
            options = payload.get("stream_options")
            events = replay_events(
                entry,
                model=route.name,
                include_usage=isinstance(options, dict) and options.get("include_usage") is True,
            )
            await start(exchange, send, 200, SSE, provider_headers=True)
            await send({"type": "http.response.body", "body": b"".join(events), "more_body": False})
        else:
            await respond(exchange, send, 200, entry.body, provider_headers=True)
        ended = time.perf_counter()
        response_cache.count_saved(entry.provider, route.name, entry.cost_usd)
        exchange.trace.interactions.append(
            InteractionRecord(
                interaction_id=uuid7_hex(),
                trace_id=exchange.trace.trace_id,
                workspace_id="",
                api_key_id=exchange.key.key_id if exchange.key else None,
                provider=entry.provider,
                requested_model=route.name,
                provider_model=entry.provider_model,
                deployment="cache",
                attempt=1,
                operation=exchange.operation,
                stream=exchange.stream,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                cached_tokens=usage.cached_tokens,
                total_tokens=usage.total_tokens,
                cost_usd=Decimal(0),
                cost_saved_usd=entry.cost_usd,
                started_at=exchange.trace.wall(started),
                ended_at=exchange.trace.wall(ended),
                status="ok",
                http_status=200,
                cache_hit=True,
                prompt=payload.get("messages", payload.get("input"))
                if self.store_content
                else None,
            )
        )

    async def store(self, exchange: Exchange, target: Target, body: bytes, usage: Usage) -> None:
        """Keep the provider's answer when this stage marked the request for it."""
        key = exchange.cache_key
        if key is None or self.cache is None:
            return
        exchange.cache_key = None
        interaction = exchange.trace.interactions[-1] if exchange.trace.interactions else None
        entry = CachedResponse(
            body=body,
            provider=target.provider,
            provider_model=target.provider_model,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
            cost_usd=interaction.cost_usd if interaction is not None else None,
        )
        await self.cache.set(key, entry, exchange.cache_ttl)

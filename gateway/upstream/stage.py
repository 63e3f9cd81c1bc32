"""The upstream stage: the provider's answer, from the steered model's deployments, retrying and
then falling back as configured (or as a steering rule said), streamed through or whole, through
the output guardrails, and kept in the cache when the cache stage asked for it."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from gateway.cache.stage import CacheStage
from gateway.cache.stream import StreamAccumulator
from gateway.entry.answers import SSE, fail, respond, start
from gateway.errors import GatewayError, no_deployment
from gateway.exchange import ClientGone, DisconnectWatch, Exchange, Receive, Send
from gateway.guardrails import engine as guards
from gateway.guardrails.moderation_stream import ModerationStream
from gateway.guardrails.stage import GuardrailStage
from gateway.guardrails.stream import StreamGuard
from gateway.upstream.attempts import (
    Opening,
    StreamState,
    capacity_tokens,
    client_error,
    failed_attempt,
    failure_type,
    inspect_event,
    record_attempt,
)
from gateway.upstream.health import DeploymentHealth
from gateway.upstream.reliability import (
    AttemptFailed,
    classify,
    cooldown_policy,
    counts_against_health,
    fallback_trigger,
    retry_delay,
)
from gateway.upstream.routing import Route, Router, Target
from providers.base import ChatResult, EmbeddingResult, ProviderStream
from providers.errors import UpstreamFailure
from providers.http_client import UpstreamResponse
from providers.usage import UNKNOWN_USAGE, estimated_prompt_tokens, estimated_usage
from telemetry import metrics
from telemetry.ids import span_id_hex

_streams_cancelled = metrics.Labelled(metrics.streams_cancelled)
_retries = metrics.Labelled(metrics.retries_total)
_fallbacks = metrics.Labelled(metrics.fallbacks_total)
_cooldowns = metrics.Labelled(metrics.cooldowns_total)


class UpstreamStage:
    """The pipeline's last stage: it always answers (or raises the error the client gets)."""

    __slots__ = ("cache", "guardrails", "health", "router", "store_content")

    def __init__(
        self,
        *,
        router: Router,
        health: DeploymentHealth,
        store_content: bool,
        guardrails: GuardrailStage,
        cache: CacheStage,
    ) -> None:
        self.router = router
        self.health = health
        self.store_content = store_content
        self.guardrails = guardrails
        self.cache = cache

    async def run(self, exchange: Exchange, receive: Receive, send: Send) -> bool:
        """Answer from the route's deployments, retrying and then falling back as configured
        (or as a steering rule said)."""
        primary = exchange.steered
        assert primary is not None
        payload = exchange.payload
        operation = exchange.call
        fallbacks = exchange.fallbacks
        tokens = capacity_tokens(exchange, payload)
        avoid: set[str] = set()
        error: GatewayError | None = None
        previous = primary.name
        chain = primary.config.fallbacks if fallbacks is None else fallbacks
        for position, name in enumerate((primary.name, *chain)):
            route = self.router.resolve(name) if position else primary
            if position:
                exchange.trace.add_decision(
                    "fallback",
                    "reliability",
                    input={"from": previous, "error": error.message if error else None},
                    output={"to": name},
                    reasoning=f"'{previous}' could not answer; trying fallback '{name}'",
                    evaluation_us=0.0,
                )
                _fallbacks(previous, name).inc()
            outcome = await self._try_route(
                exchange, route, payload, operation, tokens, avoid, receive, send
            )
            if outcome is None:
                return True
            error, kind = outcome
            trigger = fallback_trigger(kind)
            if trigger is None or trigger not in route.config.fallback_on:
                break
            previous = name
        raise error or no_deployment(primary.name)

    async def _try_route(
        self,
        exchange: Exchange,
        route: Route,
        payload: dict[str, Any],
        operation: str,
        tokens: int,
        avoid: set[str],
        receive: Receive,
        send: Send,
    ) -> tuple[GatewayError, str] | None:
        """Attempts on one model's deployments; None once answered, else the last error and its kind."""
        policy = route.config.retries
        for retry in range(policy.attempts + 1):
            target = self._select(exchange, route, tokens, avoid)
            if target is None:
                return no_deployment(route.name), "retryable"
            try:
                await self._call(exchange, target, payload, operation, tokens, receive, send)
            except AttemptFailed as failed:
                avoid.add(target.id)
                kind = classify(failed.failure)
                if counts_against_health(kind) and len(route.targets) > 1:
                    # A model with one deployment has nowhere else to go: cooling it down
                    # would only turn one provider error into many.
                    await self._note_failure(exchange, route, target)
                if kind != "retryable" or retry == policy.attempts:
                    return failed.error, kind
                delay = retry_delay(policy, retry, failed.failure)
                if delay is None and len(route.targets) == 1:
                    # The only deployment asked for a longer wait than we may spend here.
                    return failed.error, kind
                exchange.trace.add_decision(
                    "retry",
                    "reliability",
                    input={
                        "deployment": target.id,
                        "attempt": exchange.attempts,
                        "error": failed.failure.message,
                        "status": failed.failure.status,
                    },
                    output={"retry": retry + 1, "delay_s": delay},
                    reasoning=(
                        f"attempt {exchange.attempts} failed ({failure_type(failed.failure)}); "
                        + (
                            f"retrying in {delay:.3f}s"
                            if delay is not None
                            else "the provider asked for a longer wait than max_backoff: "
                            "retrying on another deployment"
                        )
                    ),
                    evaluation_us=0.0,
                )
                _retries(route.name).inc()
                if delay:
                    await self._pause(delay, receive)
                continue
            await self.health.success(target.id)
            return None
        return no_deployment(route.name), "retryable"

    async def _note_failure(self, exchange: Exchange, route: Route, target: Target) -> None:
        until = await self.health.failure(target.id, cooldown_policy(route.config.cooldown))
        if until is None:
            return
        exchange.trace.add_decision(
            "cooldown",
            "reliability",
            input={"deployment": target.id, "failures": route.config.cooldown.failures},
            output={"cooling_down_until": until},
            reasoning=(
                f"{target.id} failed {route.config.cooldown.failures} times in a row: out of "
                f"rotation for {route.config.cooldown.period:g}s, then probed back in"
            ),
            evaluation_us=0.0,
        )
        _cooldowns(target.id).inc()

    async def _pause(self, seconds: float, receive: Receive) -> None:
        """Wait before a retry, unless the client leaves meanwhile."""
        watch = DisconnectWatch(receive)
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            watch.absorb()
            raise ClientGone() from None
        finally:
            watch.close()

    def _select(
        self, exchange: Exchange, route: Route, tokens: int, avoid: set[str]
    ) -> Target | None:
        started = time.perf_counter()
        selection = route.select(self.health, tokens=tokens, avoid=avoid)
        ended = time.perf_counter()
        if selection is None:
            exchange.trace.add_decision(
                "model_selection",
                "router",
                input={
                    "requested_model": exchange.requested_model,
                    "route": route.name,
                    "routed_by": exchange.routed_by,
                    "avoid": sorted(avoid),
                },
                output={},
                reasoning="no deployment is available: all are cooling down or at capacity",
                evaluation_us=(ended - started) * 1e6,
            )
            return None
        target = selection.target
        exchange.provider = target.provider
        exchange.provider_model = target.provider_model
        exchange.trace.add_span(
            "route",
            "gateway",
            started,
            ended,
            attributes={"model.requested": route.name, "deployment": target.id},
        )
        exchange.trace.add_decision(
            "model_selection",
            "router",
            input={
                "requested_model": exchange.requested_model,
                "route": route.name,
                "routed_by": exchange.routed_by,
                "candidates": selection.candidates,
            },
            output={
                "provider": target.provider,
                "model": target.provider_model,
                "deployment": target.id,
            },
            reasoning=selection.reasoning,
            evaluation_us=(ended - started) * 1e6,
        )
        return target

    async def _call(
        self,
        exchange: Exchange,
        target: Target,
        payload: dict[str, Any],
        operation: str,
        tokens: int,
        receive: Receive,
        send: Send,
    ) -> None:
        """One attempt on one deployment; AttemptFailed when another attempt may help."""
        exchange.attempts += 1
        target.load.started(tokens, int(time.time() // 60))
        latency_ms = None
        try:
            native = exchange.native
            if native is not None:
                latency_ms = await native.attempt(self, exchange, target, payload, receive, send)
            elif exchange.stream and operation == "chat":
                latency_ms = await self._chat_stream(exchange, target, payload, receive, send)
            else:
                latency_ms = await self._answer_once(
                    exchange, target, payload, operation, receive, send
                )
        finally:
            target.load.finished(latency_ms)

    def _opening(
        self,
        exchange: Exchange,
        target: Target,
        operation: str,
        span_id: str,
        started: float,
        receive: Receive,
    ) -> Opening:
        return Opening(
            exchange, target, operation, span_id, started, receive, store_content=self.store_content
        )

    def _encode(
        self,
        exchange: Exchange,
        target: Target,
        operation: str,
        payload: dict[str, Any],
        span_id: str,
        started: float,
        *,
        stream: bool = False,
    ) -> bytes:
        """The provider's request body; a request it cannot express is the client's 400."""
        adapter = target.adapter
        try:
            if operation == "embeddings":
                return adapter.encode_embeddings(payload, target.provider_model)
            return adapter.encode_chat(payload, target.provider_model, stream=stream)
        except UpstreamFailure as failure:
            raise failed_attempt(
                exchange,
                target,
                operation,
                span_id,
                started,
                failure,
                store_content=self.store_content,
            ) from None

    async def _fetch(
        self,
        exchange: Exchange,
        target: Target,
        operation: str,
        request: bytes,
        span_id: str,
        started: float,
        receive: Receive,
    ) -> bytes:
        """One non-streaming provider attempt, abandoned if the client disconnects meanwhile."""
        adapter = target.adapter
        with self._opening(exchange, target, operation, span_id, started, receive):
            response = await adapter.send(
                operation,
                request,
                provider_model=target.provider_model,
                traceparent=exchange.trace.traceparent_for(span_id),
                timeouts=target.timeout,
            )
            return await adapter.read_body(response)

    async def _answer_once(
        self,
        exchange: Exchange,
        target: Target,
        payload: dict[str, Any],
        operation: str,
        receive: Receive,
        send: Send,
    ) -> float:
        """A non-streaming attempt (chat or embeddings); answers the client and returns the
        provider's latency in ms."""
        adapter = target.adapter
        span_id = span_id_hex()
        started = time.perf_counter()
        request = self._encode(exchange, target, operation, payload, span_id, started)
        raw = await self._fetch(exchange, target, operation, request, span_id, started, receive)
        try:
            if operation == "embeddings":
                result: ChatResult | EmbeddingResult = adapter.parse_embeddings(
                    raw, target.public_model, encoding_format=payload.get("encoding_format")
                )
            else:
                result = adapter.parse_chat(raw, target.public_model)
        except UpstreamFailure as failure:
            raise failed_attempt(
                exchange,
                target,
                operation,
                span_id,
                started,
                failure,
                store_content=self.store_content,
            ) from None
        ended = time.perf_counter()
        exchange.upstream_seconds = ended - started
        if isinstance(result, ChatResult):
            record_attempt(
                exchange,
                target,
                operation,
                span_id,
                started,
                store_content=self.store_content,
                ended=ended,
                usage=result.usage,
                finish_reason=",".join(r or "" for r in result.finish_reasons) or None,
                prompt=payload.get("messages"),
                response=result.messages,
            )
        else:
            record_attempt(
                exchange,
                target,
                operation,
                span_id,
                started,
                store_content=self.store_content,
                ended=ended,
                usage=result.usage,
                prompt=payload.get("input"),
            )
        answer = result.body
        if isinstance(result, ChatResult) and exchange.guard_context is not None:
            answer = await self.guardrails.guard_answer(exchange, answer)
        await respond(exchange, send, 200, answer, provider_headers=True)
        if exchange.cache_key is not None:
            await self.cache.store(exchange, target, result.body, result.usage)
        return (ended - started) * 1000.0

    async def _open_stream(
        self,
        exchange: Exchange,
        target: Target,
        request: bytes,
        span_id: str,
        started: float,
        receive: Receive,
    ) -> tuple[UpstreamResponse, ProviderStream, list[bytes]]:
        """Send a streaming request and wait for its first events (within the first-token
        timeout). Nothing has reached the client yet, so a failure here may be retried."""
        adapter = target.adapter
        with self._opening(exchange, target, "chat", span_id, started, receive) as opening:
            response = opening.response = await adapter.send(
                "chat",
                request,
                provider_model=target.provider_model,
                stream=True,
                traceparent=exchange.trace.traceparent_for(span_id),
                timeouts=target.timeout,
            )
            events = adapter.stream_events(response, target.public_model)
            try:
                async with asyncio.timeout(target.first_token_timeout):
                    first = await anext(events)
            except TimeoutError:
                raise UpstreamFailure("timeout", "no first event in time") from None
            except StopAsyncIteration:
                raise UpstreamFailure("malformed", "the provider sent an empty stream") from None
            return response, events, first

    async def _chat_stream(
        self,
        exchange: Exchange,
        target: Target,
        payload: dict[str, Any],
        receive: Receive,
        send: Send,
    ) -> float | None:
        """A streaming attempt. Once the first byte is out, a failure ends the stream with an
        error event instead of being retried."""
        options = payload.get("stream_options")
        client_wants_usage = isinstance(options, dict) and options.get("include_usage") is True
        span_id = span_id_hex()
        started = time.perf_counter()
        request = self._encode(exchange, target, "chat", payload, span_id, started, stream=True)
        response, events, first = await self._open_stream(
            exchange, target, request, span_id, started, receive
        )
        exchange.upstream_seconds = time.perf_counter() - started
        state = StreamState(StreamAccumulator() if exchange.cache_key is not None else None)
        guard = self.guardrails.stream_guard(exchange)
        moderation = self.guardrails.moderation_stream(exchange)
        watch = DisconnectWatch(receive)
        failure: UpstreamFailure | None = None
        blocked = False
        try:
            await start(exchange, send, 200, SSE, provider_headers=True)
            blocked = await self._forward(first, state, send, client_wants_usage, guard, moderation)
            if not blocked:
                async for batch in events:
                    if await self._forward(
                        batch, state, send, client_wants_usage, guard, moderation
                    ):
                        blocked = True
                        break
        except asyncio.CancelledError:
            watch.absorb()
        except UpstreamFailure as broken:
            failure = broken
        finally:
            watch.close()
            if failure is None and not watch.gone and response.at_eof():
                response.release()  # read to the end: the connection goes back to the pool
            else:
                response.close()  # abandoned midway: drop the connection, the provider stops
        state.client_gone = watch.gone and not state.done_sent
        ended = time.perf_counter()
        if blocked:
            state.finish_reason = guards.CONTENT_FILTER
            state.accumulator = None  # an answer cut short is not one to keep
        if guard is not None:
            self.guardrails.note_verdicts(exchange, guard.verdicts(), ended, "output")
        usage = state.usage or UNKNOWN_USAGE
        cut_short = blocked or state.client_gone or failure is not None
        usage_estimated = cut_short and state.usage is None and state.first_output is not None
        if usage_estimated:
            # Cut before the provider's usage chunk: the provider bills what it generated, so
            # a guess beats charging nothing.
            usage = estimated_usage(
                estimated_prompt_tokens(payload, len(request)),
                state.output_chars,
                reported=events.reported_usage(),
            )
        record_attempt(
            exchange,
            target,
            "chat",
            span_id,
            started,
            store_content=self.store_content,
            ended=ended,
            usage=usage,
            usage_estimated=usage_estimated,
            finish_reason=state.finish_reason,
            first_output=state.first_output,
            failure=failure,
            cancelled=state.client_gone,
            prompt=payload.get("messages"),
            response=(
                [
                    {"index": i, "content": "".join(parts)}
                    for i, parts in sorted(state.texts.items())
                ]
                if self.store_content
                else None
            ),
        )
        if state.client_gone:
            exchange.status = "cancelled"
            exchange.http_status = 499
            exchange.error_type = "client_disconnected"
            exchange.error_message = "the client disconnected mid-stream; upstream cancelled"
            _streams_cancelled(target.public_model).inc()
            await self.guardrails.moderated_stream(exchange, moderation, ended)
            return None
        if failure is not None:
            await fail(exchange, send, client_error(target, failure))
            await self.guardrails.moderated_stream(exchange, moderation, ended)
            return None
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        await self.guardrails.moderated_stream(exchange, moderation, ended)
        if state.accumulator is not None:
            complete = state.accumulator.result()
            if complete is not None:
                await self.cache.store(exchange, target, complete, usage)
        return (ended - started) * 1000.0

    async def _forward(
        self,
        events: list[bytes],
        state: StreamState,
        send: Send,
        client_wants_usage: bool,
        guard: StreamGuard | None = None,
        moderation: ModerationStream | None = None,
    ) -> bool:
        """Pass the provider's events on, reading usage and finish reasons as they go by (and
        through the output guardrails, when any). True when a guardrail ended the stream."""
        keep_text = self.store_content
        kept = [
            event for event in events if inspect_event(event, state, client_wants_usage, keep_text)
        ]
        blocked = False
        if moderation is not None:
            kept, blocked = await moderation.process(kept)
        if guard is not None and not blocked:
            kept, blocked = guard.process(kept)
        if kept:
            out = b"".join(event + b"\n\n" for event in kept)
            await send({"type": "http.response.body", "body": out, "more_body": True})
            if not blocked and kept[-1].endswith(b"[DONE]"):
                state.done_sent = True
        return blocked

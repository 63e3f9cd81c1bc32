"""The OpenAI-compatible routes under `/v1`: the product's hot path, as a raw ASGI app.

One request: authenticate, read and validate the body, pick a deployment, call the provider,
answer, and hand one trace bundle to the recorder. Nothing here touches the database except the
key lookup on a cache miss; telemetry is a single enqueue.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, Protocol

import aiohttp
import msgspec

from gateway import cache as response_cache
from gateway import guardrails as guards
from gateway import inbound_passthrough, inbound_routes
from gateway.admission import Admission, Admitted
from gateway.answer_hold import FinalMessageHold
from gateway.auth import Authenticator
from gateway.cache import CacheDecision, CachedResponse, ResponseCache
from gateway.cache_stream import StreamAccumulator, replay_events
from gateway.errors import (
    GatewayError,
    body_too_large,
    internal_error,
    invalid_request,
    method_not_allowed,
    no_deployment,
    not_found,
    upstream_error,
    upstream_timeout,
)
from gateway.guardrail_model import CheckContext, Verdict
from gateway.guardrail_moderation import ModerationCall
from gateway.guardrail_moderation import record_calls as record_moderation_calls
from gateway.guardrail_moderation_record import moderation_bundle
from gateway.guardrail_moderation_stream import ModerationStream
from gateway.guardrail_stream import StreamGuard
from gateway.guardrails import Guardrails, InputOutcome, Selection
from gateway.health import DeploymentHealth, InProcessHealth
from gateway.inbound import InboundApi, InboundSend, decoded_body
from gateway.inbound_responses_store import ResponseStore
from gateway.keys import KeyInfo
from gateway.reliability import (
    AttemptFailed,
    classify,
    cooldown_policy,
    counts_against_health,
    fallback_trigger,
    retry_delay,
)
from gateway.routing import Route, Router, Target
from gateway.validation import decode_object, validate_chat, validate_embeddings
from providers.base import ChatResult, EmbeddingResult, ProviderStream
from providers.errors import UpstreamFailure
from providers.openai_format import event_data, read_chunk
from providers.usage import (
    UNKNOWN_USAGE,
    Usage,
    estimated_prompt_tokens,
    estimated_usage,
    requested_output,
)
from rules.context import RequestContext, routing_features
from rules.engine import Evaluation, RuleSet, apply_parameters
from telemetry import metrics
from telemetry.ids import span_id_hex, uuid7_hex
from telemetry.records import InteractionRecord, TraceBundle, TraceRecord
from telemetry.sampling import PerMinuteSampler
from telemetry.schema import DEFAULT_WORKSPACE_ID
from telemetry.trace import RequestTrace

logger = logging.getLogger("steerway.proxy")

_operation_duration = metrics.Labelled(metrics.operation_duration)
_token_usage = metrics.Labelled(metrics.token_usage)
_time_to_first_token = metrics.Labelled(metrics.time_to_first_token)
_cost_total = metrics.Labelled(metrics.cost_total)
_upstream_errors = metrics.Labelled(metrics.upstream_errors)
_requests_total = metrics.Labelled(metrics.requests_total)
_gateway_overhead = metrics.Labelled(metrics.gateway_overhead)
_streams_cancelled = metrics.Labelled(metrics.streams_cancelled)
_retries = metrics.Labelled(metrics.retries_total)
_fallbacks = metrics.Labelled(metrics.fallbacks_total)
_cooldowns = metrics.Labelled(metrics.cooldowns_total)
_rule_matches = metrics.Labelled(metrics.rule_matches_total)
_rules_denied = metrics.Labelled(metrics.rules_denied_total)
_unauthenticated = metrics.Labelled(metrics.unauthenticated_requests)
_rule_evaluation = metrics.rule_evaluation_seconds

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Handler = tuple[str, Callable[..., Awaitable[None]], str, "InboundApi | None"]
"""A route's method, run, recorded route and inbound API (None: answered in OpenAI's shapes)."""

MAX_TAGS = 32
MAX_TAG_LENGTH = 64
MAX_METADATA_BYTES = 8192
_JSON = b"application/json"
_SSE = b"text/event-stream"
_PASS_STATUSES = frozenset({400, 404, 409, 413, 422, 429})


class RuleSource(Protocol):
    """Where the steering rules in force come from (see `gateway.rulebook.Rulebook`)."""

    @property
    def current(self) -> RuleSet: ...


class Backpressure(Protocol):
    """The recorder's signal that it is far behind (see `Recorder.room`)."""

    @property
    def congested(self) -> bool: ...

    async def room(self) -> None: ...


class ClientGone(Exception):
    """The client disconnected before the gateway could answer."""


class Exchange:
    """The state of one request as it moves through the pipeline."""

    __slots__ = (
        "admitted",
        "attempts",
        "cache_key",
        "cache_status",
        "cache_ttl",
        "end_user",
        "error_message",
        "error_type",
        "features",
        "guard_context",
        "guard_input",
        "guard_pending",
        "guard_verdicts",
        "guarded",
        "headers",
        "http_status",
        "key",
        "metadata",
        "method",
        "native",
        "operation",
        "overhead_ms",
        "provider",
        "provider_model",
        "rate_headers",
        "request_id",
        "requested_model",
        "responded_at",
        "response_started",
        "route",
        "routed_by",
        "rules",
        "status",
        "steering",
        "stream",
        "tags",
        "trace",
        "upstream_seconds",
    )

    def __init__(self, route: str, headers: dict[str, str], method: str = "POST") -> None:
        self.route = route
        self.method = method[:10]  # the width of traces.method
        self.headers = headers
        self.trace = RequestTrace(headers.get("traceparent"))
        self.request_id = _request_id(headers.get("x-request-id"))
        self.key: KeyInfo | None = None
        self.operation = "chat"
        """The API the client called, as recorded and as rules' `operation` reads it."""
        self.native: inbound_passthrough.NativeRequest | None = None
        """An inbound request that may pass through untranslated (`gateway.inbound_passthrough`)."""
        self.attempts = 0
        self.requested_model: str | None = None
        self.provider: str | None = None
        self.provider_model: str | None = None
        self.stream = False
        self.end_user: str | None = None
        self.status = "ok"
        self.http_status = 200
        self.error_type: str | None = None
        self.error_message: str | None = None
        self.upstream_seconds = 0.0
        self.overhead_ms: float | None = None
        self.response_started = False
        self.responded_at = 0.0
        self.tags: list[str] = []
        self.metadata: dict[str, Any] = {}
        self.features: dict[str, Any] = {}
        self.rules: list[str] = []
        self.cache_status: str | None = None
        self.cache_key: str | None = None
        """Set when the answer is to be stored in the cache (with `cache_ttl`)."""
        self.cache_ttl = 0
        self.admitted: Admitted | None = None
        self.rate_headers: dict[str, str] | None = None
        self.steering: Evaluation | None = None
        self.routed_by: str | None = None
        self.guarded: Selection | None = None
        self.guard_input: InputOutcome | None = None
        self.guard_context: CheckContext | None = None
        self.guard_verdicts: list[Verdict] = []
        self.guard_pending: tuple[str, ...] = ()
        """Output guardrails of a stream that are still checking when the headers go out."""

    def base_headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"x-request-id", self.request_id.encode()),
            (b"x-steerway-trace-id", self.trace.trace_id.encode()),
        ]


class DisconnectWatch:
    """Cancels the running task if the client disconnects, until `close()`.

    ASGI servers report a vanished client only through `receive()`; without watching it, a
    provider call would run (and be paid for) to the end for nobody.
    """

    __slots__ = ("_closed", "_task", "_watcher", "gone")

    def __init__(self, receive: Receive) -> None:
        self.gone = False
        self._closed = False
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self._watcher = asyncio.ensure_future(_wait_for_disconnect(receive))
        self._watcher.add_done_callback(self._on_done)

    def _on_done(self, watcher: asyncio.Future[None]) -> None:
        if not watcher.cancelled() and not self._closed:
            self.gone = True
            self._task.cancel()

    def absorb(self) -> None:
        """Called in `except CancelledError`: re-raises unless the cancel was ours."""
        if not self.gone:
            raise
        self._task.uncancel()

    def close(self) -> None:
        self._closed = True
        self._watcher.remove_done_callback(self._on_done)
        self._watcher.cancel()


class StreamState:
    __slots__ = (
        "accumulator",
        "client_gone",
        "done_sent",
        "finish_reason",
        "first_output",
        "output_chars",
        "texts",
        "usage",
    )

    def __init__(self, accumulator: StreamAccumulator | None = None) -> None:
        self.accumulator = accumulator
        self.client_gone = False
        self.done_sent = False
        """The provider's `[DONE]` went out to the client: a disconnect after it cuts nothing."""
        self.first_output: float | None = None
        self.output_chars = 0
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.texts: dict[int, list[str]] = {}


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
        self.admission = admission
        self.responses = responses
        """The Responses API's stored responses (None: nothing is stored or found)."""
        self.durable = durable
        self.guardrails = guardrails
        self.router = router
        self.rules = rules
        self.cache = cache
        self.cache_enabled = cache_enabled
        self.cache_ttl = cache_ttl
        self.backpressure = backpressure
        self.health: DeploymentHealth = health or InProcessHealth()
        self.authenticator = authenticator
        self.record = record
        self.store_content = store_content
        self.max_body_bytes = max_body_bytes
        self._refused_sample = (
            PerMinuteSampler(unauthenticated_traces_per_minute)
            if unauthenticated_traces_per_minute > 0
            else None
        )
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
        exchange = Exchange(route, _decode_headers(scope["headers"]), scope["method"])
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
            await self._fail(exchange, send, error)
        except ClientGone:
            exchange.status = "cancelled"
            exchange.http_status = 499
            exchange.error_type = "client_disconnected"
        except Exception:
            logger.exception("unhandled error on %s (trace %s)", route, exchange.trace.trace_id)
            await self._fail(exchange, send, internal_error())
        finally:
            self._finish(exchange)
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
        await self._pipeline(exchange, receive, send, "chat", validate_chat)

    async def _embeddings(self, exchange: Exchange, receive: Receive, send: Send) -> None:
        exchange.operation = "embeddings"
        await self._pipeline(exchange, receive, send, "embeddings", validate_embeddings)

    async def _pipeline(
        self,
        exchange: Exchange,
        receive: Receive,
        send: Send,
        operation: str,
        validate: Callable[[dict[str, Any]], str],
        inbound: InboundSend | None = None,
    ) -> None:
        """auth → body → rules → admission → input guardrails → cache → provider (→ output
        guardrails), and settle whatever happened. An inbound API's body is first turned into
        the chat request (see `gateway.inbound`)."""
        await self._authenticate(exchange)
        body = await self._read_body(exchange, receive)
        payload = decode_object(body)
        if inbound is not None and inbound.prepare is not None:
            await inbound.prepare(payload, exchange.key)
        payload = decoded_body(payload, inbound)
        model = validate(payload)
        self._note_request(exchange, payload, model, len(body))
        route, fallbacks = await self._steer(exchange, payload, model)
        await self._admit(exchange, route, fallbacks, payload)
        try:
            if self.guardrails is not None:
                await self._guard_input(exchange, self.guardrails, payload, operation)
            if await self._from_cache(exchange, route, payload, operation, send):
                return
            await self._serve(exchange, payload, operation, receive, send, route, fallbacks)
        finally:
            await self._release(exchange)

    async def _models(self, exchange: Exchange, receive: Receive, send: Send) -> None:
        await self._authenticate(exchange)
        await self._respond(exchange, send, 200, self._models_body)

    # --- pipeline stages --------------------------------------------------------------------

    async def _authenticate(self, exchange: Exchange) -> None:
        started = time.perf_counter()
        try:
            exchange.key = await self.authenticator.authenticate(
                exchange.headers.get("authorization")
            )
        except GatewayError:
            exchange.trace.add_span("auth", "gateway", started, time.perf_counter(), status="error")
            raise
        exchange.trace.add_span(
            "auth",
            "gateway",
            started,
            time.perf_counter(),
            attributes={"key.id": exchange.key.key_id, "key.role": exchange.key.role},
        )
        _read_tags_and_metadata(exchange)
        for tag in exchange.key.default_tags:
            if tag not in exchange.tags:
                exchange.tags.append(tag)

    async def _read_body(self, exchange: Exchange, receive: Receive) -> bytes:
        declared = exchange.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise body_too_large(self.max_body_bytes)
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        body: bytes = message.get("body", b"")
        if not message.get("more_body"):
            if len(body) > self.max_body_bytes:
                raise body_too_large(self.max_body_bytes)
            return body
        parts = [body]
        size = len(body)
        while message.get("more_body"):
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise body_too_large(self.max_body_bytes)
            parts.append(chunk)
        return b"".join(parts)

    def _note_request(
        self, exchange: Exchange, payload: dict[str, Any], model: str, body_size: int
    ) -> None:
        exchange.requested_model = model
        exchange.stream = payload.get("stream") is True
        user = payload.get("user")
        exchange.end_user = user if isinstance(user, str) else None
        exchange.features = routing_features(payload, model, body_size)
        if exchange.operation != "chat":
            exchange.features["operation"] = exchange.operation

    async def _steer(
        self, exchange: Exchange, payload: dict[str, Any], model: str
    ) -> tuple[Route, tuple[str, ...] | None]:
        """Run the steering rules: deny, change parameters, tag, and pick the route."""
        ruleset = self.rules.current if self.rules is not None else None
        if ruleset is None or not ruleset.active:
            return self.router.resolve(model), None
        key = exchange.key
        context = RequestContext.from_features(
            exchange.features,
            tags=exchange.tags,
            metadata=exchange.metadata,
            headers=exchange.headers,
            key=key.key_id if key is not None else None,
            key_name=key.name if key is not None else None,
            workspace=key.workspace_id if key is not None else None,
            now=exchange.trace.start_wall,
            messages=payload.get("messages"),
            operation=exchange.operation,
        )
        if ruleset.reads_budget and self.admission is not None:
            context.budget = await self.admission.budget_percent(
                key, exchange.end_user, exchange.trace.start_wall
            )
        evaluation = ruleset.evaluate(context)
        exchange.steering = evaluation
        changes = apply_parameters(payload, evaluation) if not evaluation.deny else {}
        _rule_evaluation.observe(evaluation.elapsed_us / 1e6)
        self._record_rules(exchange, evaluation, changes)
        for tag in evaluation.tags:
            if tag not in exchange.tags:
                exchange.tags.append(tag)
        if evaluation.deny is not None:
            deny = evaluation.deny
            _rules_denied(evaluation.deny_rule or "").inc()
            raise GatewayError(
                deny.status,
                deny.message,
                type="rate_limit_error" if deny.status == 429 else "invalid_request_error",
                code=deny.code,
            )
        target = evaluation.route
        if target is None:
            return self.router.resolve(model), evaluation.fallbacks
        exchange.routed_by = evaluation.route_rule
        if target.provider is not None:
            return self.router.direct(target.provider, target.model), evaluation.fallbacks
        return self.router.resolve(target.model), evaluation.fallbacks

    def _record_rules(
        self,
        exchange: Exchange,
        evaluation: Evaluation,
        changes: dict[str, Any],
    ) -> None:
        trace = exchange.trace
        matched = evaluation.matched
        exchange.rules = [match.rule_id for match in matched]
        outcome = evaluation.effects()
        if changes:
            outcome["parameters_changed"] = changes
        if matched:
            reasoning = (
                f"{len(matched)} of {evaluation.evaluated} evaluated rules matched: "
                + ", ".join(exchange.rules)
            )
        else:
            reasoning = f"none of {evaluation.evaluated} rules matched"
        trace.add_decision(
            "rule_evaluation",
            "rules",
            input={
                "requested_model": exchange.requested_model,
                "rules_evaluated": evaluation.evaluated,
                "rules_matched": len(matched),
                "rules_not_matched": evaluation.evaluated - len(matched),
            },
            output=outcome,
            reasoning=reasoning,
            evaluation_us=evaluation.elapsed_us,
        )
        for match in matched:
            _rule_matches(match.rule_id).inc()
            trace.add_decision(
                "rule_evaluation",
                "rules",
                rule_id=match.rule_id,
                rule_name=match.name,
                input={"matched_on": match.evidence, "source": match.source},
                output=match.actions,
                reasoning="matched: " + "; ".join(match.evidence),
                evaluation_us=0.0,
            )

    # --- admission: allowed models, rate limits, budgets -------------------------------------

    async def _admit(
        self,
        exchange: Exchange,
        route: Route,
        fallbacks: tuple[str, ...] | None,
        payload: dict[str, Any],
    ) -> None:
        admission = self.admission
        key = exchange.key
        if admission is None or key is None:
            return
        limit, choices = requested_output(payload)
        steering = exchange.steering
        admitted = await admission.admit(
            exchange.trace,
            key,
            route,
            route.config.fallbacks if fallbacks is None else fallbacks,
            exchange.requested_model or route.name,
            end_user=exchange.end_user,
            bucket=steering.budget if steering is not None else None,
            input_tokens=int(exchange.features.get("estimated_input_tokens", 0)),
            output_tokens=limit,
            choices=choices,
        )
        if admitted.rate is not None:
            exchange.rate_headers = admitted.headers()
        if admitted.rate is not None or admitted.reservation is not None:
            exchange.admitted = admitted  # something to give back when the request ends

    async def _release(self, exchange: Exchange) -> None:
        """Settle the budget to what the request cost and give back its rate-limit hold."""
        admitted = exchange.admitted
        if admitted is None or self.admission is None:
            return
        exchange.admitted = None
        cost: Decimal | None = Decimal(0)
        tokens = 0
        for interaction in exchange.trace.interactions:
            if interaction.cache_hit:
                continue  # answered from the cache: no provider tokens, no cost
            if interaction.total_tokens is not None:
                tokens += interaction.total_tokens
            if interaction.cost_usd is not None and cost is not None:
                cost += interaction.cost_usd
            elif interaction.prompt_tokens is not None:
                cost = None  # tokens were used at a price we do not know
        try:
            crossed = await asyncio.shield(self.admission.finish(admitted, cost, tokens))
        except asyncio.CancelledError:
            return
        for soft in crossed:
            exchange.trace.add_decision(
                "budget_check",
                "admission",
                input={"scope": soft["scope"], "window": soft["window"]},
                output=soft,
                reasoning=(
                    f"{soft['scope']} budget passed its soft limit of {soft['soft_percent']:g}% "
                    f"({soft['percent_spent']:g}% spent)"
                ),
                evaluation_us=0.0,
            )

    # --- guardrails -------------------------------------------------------------------------

    async def _guard_input(
        self, exchange: Exchange, guardrails: Guardrails, payload: dict[str, Any], operation: str
    ) -> None:
        """Pick the request's guardrails and run the input ones: block, or mask in place."""
        key = exchange.key
        steering = exchange.steering
        selection = guardrails.select(
            workspace=key.workspace_limits.guardrails if key is not None else (),
            key=key.guardrails if key is not None else (),
            rule=steering.guardrails if steering is not None else None,
        )
        if selection is None:
            return
        exchange.guarded = selection
        response_format = payload.get("response_format")
        context = CheckContext(
            direction="input",
            model=exchange.requested_model,
            metadata=exchange.metadata,
            tags=tuple(exchange.tags),
            workspace_id=key.workspace_id if key is not None else None,
            key_name=key.name if key is not None else None,
            estimated_input_tokens=int(exchange.features.get("estimated_input_tokens", 0)),
            response_format=response_format if isinstance(response_format, dict) else None,
        )
        exchange.guard_context = context
        if not selection.input:
            return
        started = time.perf_counter()
        outcome = await guardrails.check_input(selection, payload, operation, context)
        exchange.guard_input = outcome
        self._note_verdicts(exchange, outcome.verdicts, started, "input")
        self._moderation_calls(exchange, outcome.moderation_calls)
        if outcome.blocked is not None:
            raise guards.blocked_error(outcome.blocked)

    def _moderation_calls(self, exchange: Exchange, calls: list[ModerationCall]) -> None:
        """Each moderation call as a span of the request; a judge's chat calls also as their
        own trace (`source = moderation`), handed to the recorder (one enqueue)."""
        if not calls:
            return
        record_moderation_calls(exchange.trace, calls)
        key = exchange.key
        bundle = moderation_bundle(
            calls,
            workspace_id=key.workspace_id if key is not None else DEFAULT_WORKSPACE_ID,
            request_trace_id=exchange.trace.trace_id,
        )
        if bundle is not None:
            try:
                self.record(bundle)
            except Exception:
                logger.exception("could not hand a moderation trace to the recorder")

    def _note_verdicts(
        self,
        exchange: Exchange,
        verdicts: list[Verdict],
        started: float,
        direction: str,
    ) -> None:
        exchange.guard_verdicts.extend(verdicts)
        key = exchange.key
        guards.record(exchange.trace, verdicts, key.key_id if key is not None else None)
        exchange.trace.add_span(
            f"guardrails.{direction}",
            "gateway",
            started,
            time.perf_counter(),
            attributes={"guardrails": [v.guardrail for v in verdicts]},
        )

    async def _guard_answer(self, exchange: Exchange, body: bytes) -> bytes:
        """Run the output guardrails (and unmasking) over a whole chat answer."""
        guardrails = self.guardrails
        context = exchange.guard_context
        if guardrails is None or context is None:
            return body
        started = time.perf_counter()
        calls: list[ModerationCall] = []
        body, verdicts = await guardrails.check_output(
            exchange.guarded,
            exchange.guard_input,
            body,
            msgspec.structs.replace(context, direction="output"),
            calls,
        )
        if verdicts:
            self._note_verdicts(exchange, verdicts, started, "output")
        self._moderation_calls(exchange, calls)
        return body

    def _stream_guard(self, exchange: Exchange) -> StreamGuard | None:
        guardrails = self.guardrails
        context = exchange.guard_context
        selection = exchange.guarded
        if guardrails is None or context is None or selection is None:
            return None
        outcome = exchange.guard_input
        unmasker = outcome.unmasker if outcome is not None else None
        if not selection.local_output and unmasker is None:
            return None
        masking = [g for g in selection.local_output if g.spec.action == "mask"]
        guard = StreamGuard(
            selection.local_output,
            msgspec.structs.replace(context, direction="output"),
            unmasker=unmasker,
            masker=guardrails.masker(masking[0].spec.mask_style) if masking else None,
            window_chars=guardrails.window_chars,
            hold_chars=guardrails.hold_chars,
        )
        exchange.guard_pending = tuple(g.name for g in selection.output)
        return guard

    def _moderation_stream(self, exchange: Exchange) -> ModerationStream | None:
        guardrails = self.guardrails
        selection = exchange.guarded
        if guardrails is None or selection is None or not selection.remote_output:
            return None
        exchange.guard_pending = tuple(g.name for g in selection.output)
        return ModerationStream(selection.remote_output, window_chars=guardrails.window_chars)

    # --- cache ------------------------------------------------------------------------------

    def _cache_decision(
        self, exchange: Exchange, payload: dict[str, Any], operation: str
    ) -> CacheDecision:
        steering = exchange.steering
        try:
            return response_cache.resolve_policy(
                operation=operation,
                default_ttl=self.cache_ttl,
                enabled=self.cache_enabled,
                rule=steering.cache if steering is not None else None,
                header=exchange.headers.get(response_cache.HEADER),
                payload=payload,
            )
        except ValueError as error:
            raise invalid_request(
                str(error), param=response_cache.HEADER, code="invalid_cache_header"
            ) from None

    async def _from_cache(
        self,
        exchange: Exchange,
        route: Route,
        payload: dict[str, Any],
        operation: str,
        send: Send,
    ) -> bool:
        """Answer from the cache when the policy allows and an answer is there; otherwise
        note whether the provider's answer is to be stored. True when answered."""
        if self.cache is None:
            return False
        decision = self._cache_decision(exchange, payload, operation)
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
        await self._answer_from_cache(exchange, route, payload, operation, entry, send, started)
        return True

    async def _answer_from_cache(
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
            guarded = await self._guard_answer(exchange, entry.body)
            entry = msgspec.structs.replace(entry, body=guarded)
        if exchange.stream and operation == "chat":
            options = payload.get("stream_options")
            events = replay_events(
                entry,
                model=route.name,
                include_usage=isinstance(options, dict) and options.get("include_usage") is True,
            )
            await self._start(exchange, send, 200, _SSE, provider_headers=True)
            await send({"type": "http.response.body", "body": b"".join(events), "more_body": False})
        else:
            await self._respond(exchange, send, 200, entry.body, provider_headers=True)
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

    async def _store_in_cache(
        self, exchange: Exchange, target: Target, body: bytes, usage: Usage
    ) -> None:
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

    # --- reliability: retries, fallbacks, cooldowns ------------------------------------------

    async def _serve(
        self,
        exchange: Exchange,
        payload: dict[str, Any],
        operation: str,
        receive: Receive,
        send: Send,
        primary: Route,
        fallbacks: tuple[str, ...] | None = None,
    ) -> None:
        """Answer from the route's deployments, retrying and then falling back as configured
        (or as a steering rule said)."""
        tokens = _capacity_tokens(exchange, payload)
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
                return
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
                        f"attempt {exchange.attempts} failed ({_failure_type(failed.failure)}); "
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
            if exchange.native is not None:
                latency_ms = await inbound_passthrough.attempt(
                    self, exchange, target, payload, receive, send
                )
            elif exchange.stream and operation == "chat":
                latency_ms = await self._chat_stream(exchange, target, payload, receive, send)
            else:
                latency_ms = await self._answer_once(
                    exchange, target, payload, operation, receive, send
                )
        finally:
            target.load.finished(latency_ms)

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
            self._attempt(exchange, target, operation, span_id, started, failure=failure)
            raise AttemptFailed(failure, _client_error(target, failure)) from None

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
        watch = DisconnectWatch(receive)
        try:
            response = await adapter.send(
                operation,
                request,
                provider_model=target.provider_model,
                traceparent=exchange.trace.traceparent_for(span_id),
                timeouts=target.timeout,
            )
            return await adapter.read_body(response)
        except UpstreamFailure as failure:
            self._attempt(exchange, target, operation, span_id, started, failure=failure)
            raise AttemptFailed(failure, _client_error(target, failure)) from None
        except asyncio.CancelledError:
            watch.absorb()
            self._attempt(exchange, target, operation, span_id, started, cancelled=True)
            raise ClientGone() from None
        finally:
            watch.close()

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
            self._attempt(exchange, target, operation, span_id, started, failure=failure)
            raise AttemptFailed(failure, _client_error(target, failure)) from None
        ended = time.perf_counter()
        exchange.upstream_seconds = ended - started
        if isinstance(result, ChatResult):
            self._attempt(
                exchange,
                target,
                operation,
                span_id,
                started,
                ended=ended,
                usage=result.usage,
                finish_reason=",".join(r or "" for r in result.finish_reasons) or None,
                prompt=payload.get("messages"),
                response=result.messages,
            )
        else:
            self._attempt(
                exchange,
                target,
                operation,
                span_id,
                started,
                ended=ended,
                usage=result.usage,
                prompt=payload.get("input"),
            )
        answer = result.body
        if isinstance(result, ChatResult) and exchange.guard_context is not None:
            answer = await self._guard_answer(exchange, answer)
        await self._respond(exchange, send, 200, answer, provider_headers=True)
        if exchange.cache_key is not None:
            await self._store_in_cache(exchange, target, result.body, result.usage)
        return (ended - started) * 1000.0

    async def _open_stream(
        self,
        exchange: Exchange,
        target: Target,
        request: bytes,
        span_id: str,
        started: float,
        receive: Receive,
    ) -> tuple[aiohttp.ClientResponse, ProviderStream, list[bytes]]:
        """Send a streaming request and wait for its first events (within the first-token
        timeout). Nothing has reached the client yet, so a failure here may be retried."""
        adapter = target.adapter
        watch = DisconnectWatch(receive)
        response = None
        try:
            response = await adapter.send(
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
        except UpstreamFailure as failure:
            if response is not None:
                response.close()
            self._attempt(exchange, target, "chat", span_id, started, failure=failure)
            raise AttemptFailed(failure, _client_error(target, failure)) from None
        except asyncio.CancelledError:
            if response is not None:
                response.close()
            watch.absorb()
            self._attempt(exchange, target, "chat", span_id, started, cancelled=True)
            raise ClientGone() from None
        finally:
            watch.close()

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
        guard = self._stream_guard(exchange)
        moderation = self._moderation_stream(exchange)
        watch = DisconnectWatch(receive)
        failure: UpstreamFailure | None = None
        blocked = False
        try:
            await self._start(exchange, send, 200, _SSE, provider_headers=True)
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
            if failure is None and not watch.gone and response.content.at_eof():
                response.release()  # read to the end: the connection goes back to the pool
            else:
                response.close()  # abandoned midway: drop the connection, the provider stops
        state.client_gone = watch.gone and not state.done_sent
        ended = time.perf_counter()
        if blocked:
            state.finish_reason = guards.CONTENT_FILTER
            state.accumulator = None  # an answer cut short is not one to keep
        if guard is not None:
            self._note_verdicts(exchange, guard.verdicts(), ended, "output")
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
        self._attempt(
            exchange,
            target,
            "chat",
            span_id,
            started,
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
            await self._moderated_stream(exchange, moderation, ended)
            return None
        if failure is not None:
            await self._fail(exchange, send, _client_error(target, failure))
            await self._moderated_stream(exchange, moderation, ended)
            return None
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        await self._moderated_stream(exchange, moderation, ended)
        if state.accumulator is not None:
            complete = state.accumulator.result()
            if complete is not None:
                await self._store_in_cache(exchange, target, complete, usage)
        return (ended - started) * 1000.0

    async def _moderated_stream(
        self, exchange: Exchange, moderation: ModerationStream | None, ended: float
    ) -> None:
        """The moderation verdicts of a stream, once the client has all of it: `log` ones
        call their model only now, so the response is not held open for them."""
        if moderation is None:
            return
        moderated = await moderation.verdicts()
        self._note_verdicts(exchange, moderated, ended, "output")
        self._moderation_calls(exchange, moderation.calls)

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
            event for event in events if _inspect_event(event, state, client_wants_usage, keep_text)
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

    # --- answers ----------------------------------------------------------------------------

    async def _start(
        self,
        exchange: Exchange,
        send: Send,
        status: int,
        content_type: bytes,
        *,
        content_length: int | None = None,
        provider_headers: bool = False,
        extra: dict[str, str] | None = None,
    ) -> None:
        headers = exchange.base_headers()
        headers.append((b"content-type", content_type))
        if content_length is not None:
            headers.append((b"content-length", str(content_length).encode()))
        if content_type == _SSE:
            headers.append((b"cache-control", b"no-cache"))
            headers.append((b"x-accel-buffering", b"no"))
        if provider_headers and exchange.provider is not None:
            headers.append((b"x-steerway-provider", exchange.provider.encode()))
            headers.append((b"x-steerway-model", (exchange.provider_model or "").encode()))
            headers.append((b"x-steerway-attempts", str(exchange.attempts).encode()))
        if status < 400:
            elapsed = time.perf_counter() - exchange.trace.start
            overhead = max(elapsed - exchange.upstream_seconds, 0.0) * 1000.0
            exchange.overhead_ms = overhead
            headers.append((b"x-steerway-overhead-ms", f"{overhead:.3f}".encode()))
        if exchange.rules:
            headers.append((b"x-steerway-rules", ",".join(exchange.rules).encode()))
        if exchange.cache_status is not None:
            headers.append((b"x-steerway-cache", exchange.cache_status.encode()))
        if exchange.guard_verdicts or exchange.guard_pending:
            value = guards.header_value(exchange.guard_verdicts, exchange.guard_pending)
            headers.append((guards.HEADER.encode(), value.encode()))
        if exchange.rate_headers:
            extra = {**exchange.rate_headers, **(extra or {})}
        if extra:
            headers.extend((name.encode(), value.encode()) for name, value in extra.items())
        exchange.response_started = True
        exchange.responded_at = time.perf_counter()
        exchange.http_status = status
        await send({"type": "http.response.start", "status": status, "headers": headers})

    async def _respond(
        self,
        exchange: Exchange,
        send: Send,
        status: int,
        body: bytes,
        *,
        provider_headers: bool = False,
        extra: dict[str, str] | None = None,
    ) -> None:
        await self._start(
            exchange,
            send,
            status,
            _JSON,
            content_length=len(body),
            provider_headers=provider_headers,
            extra=extra,
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _fail(self, exchange: Exchange, send: Send, error: GatewayError) -> None:
        exchange.status = "error"
        exchange.error_type = error.code or error.type
        exchange.error_message = error.message
        if exchange.response_started:
            # The status line already went out as 200; the trace keeps what the client got.
            event = b"data: " + error.body() + b"\n\n"
            await send({"type": "http.response.body", "body": event, "more_body": False})
            return
        await self._respond(
            exchange, send, error.status, error.body(), provider_headers=True, extra=error.headers
        )

    # --- telemetry --------------------------------------------------------------------------

    def _attempt(
        self,
        exchange: Exchange,
        target: Target,
        operation: str,
        span_id: str,
        started: float,
        *,
        ended: float | None = None,
        usage: Usage = UNKNOWN_USAGE,
        usage_estimated: bool = False,
        finish_reason: str | None = None,
        first_output: float | None = None,
        failure: UpstreamFailure | None = None,
        cancelled: bool = False,
        prompt: Any = None,
        response: Any = None,
    ) -> None:
        """Record one provider attempt: its span, its interaction row and its metrics."""
        if ended is None:
            ended = time.perf_counter()
        trace = exchange.trace
        status = "cancelled" if cancelled else ("error" if failure is not None else "ok")
        error_type = None if failure is None else _failure_type(failure)
        cost = None
        if target.price is not None and usage.prompt_tokens is not None:
            cost = target.price.cost(
                usage.prompt_tokens,
                usage.completion_tokens if operation == "chat" else 0,
                usage.cached_tokens,
            )
        ttft_ms = None if first_output is None else (first_output - started) * 1000.0
        tokens_per_second = None
        if usage.completion_tokens and first_output is not None and ended > first_output:
            tokens_per_second = usage.completion_tokens / (ended - first_output)
        elif usage.completion_tokens and first_output is None and ended > started:
            tokens_per_second = usage.completion_tokens / (ended - started)
        attempt = len(trace.interactions) + 1
        trace.interactions.append(
            InteractionRecord(
                interaction_id=uuid7_hex(),
                trace_id=trace.trace_id,
                workspace_id="",
                span_id=span_id,
                api_key_id=exchange.key.key_id if exchange.key else None,
                provider=target.provider,
                requested_model=target.public_model,
                provider_model=target.provider_model,
                deployment=target.deployment.id,
                attempt=attempt,
                operation=exchange.operation,
                stream=exchange.stream,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                cached_tokens=usage.cached_tokens,
                total_tokens=usage.total_tokens,
                usage_estimated=usage_estimated,
                cost_usd=cost,
                started_at=trace.wall(started),
                ended_at=trace.wall(ended),
                ttft_ms=ttft_ms,
                tokens_per_second=tokens_per_second,
                status=status,
                http_status=(
                    failure.status if failure is not None else (None if cancelled else 200)
                ),
                finish_reason=finish_reason,
                error_type=error_type,
                error_message=None if failure is None else failure.message,
                prompt=prompt if self.store_content else None,
                response=response if self.store_content else None,
            )
        )
        attributes = {
            "gen_ai.provider.name": target.provider,
            "gen_ai.request.model": target.provider_model,
            "gen_ai.usage.input_tokens": usage.prompt_tokens,
            "gen_ai.usage.output_tokens": usage.completion_tokens,
            "error.type": error_type,
        }
        if usage_estimated:
            attributes["steerway.usage.estimated"] = True
        trace.add_span(
            f"provider.{operation}",
            "provider",
            started,
            ended,
            status=status,
            span_id=span_id,
            attributes=attributes,
        )
        labels = (operation, target.provider, target.public_model)
        _operation_duration(*labels, error_type or "").observe(ended - started)
        if usage.prompt_tokens is not None:
            _token_usage(*labels, "input").observe(usage.prompt_tokens)
        if usage.completion_tokens is not None and operation == "chat":
            _token_usage(*labels, "output").observe(usage.completion_tokens)
        if ttft_ms is not None:
            _time_to_first_token(*labels).observe(ttft_ms / 1000.0)
        if cost is not None:
            _cost_total(target.provider, target.public_model).inc(float(cost))
        if error_type is not None:
            _upstream_errors(target.provider, error_type).inc()

    def _finish(self, exchange: Exchange) -> None:
        ended = time.perf_counter()
        if exchange.key is not None or self._keep_refused(exchange):
            self._record(exchange, ended)
        model = exchange.requested_model
        model_label = model if model is not None and model in self.router else "unknown"
        _requests_total(exchange.route, model_label, str(exchange.http_status)).inc()
        if exchange.overhead_ms is not None:
            _gateway_overhead(exchange.route).observe(exchange.overhead_ms / 1000.0)

    def _keep_refused(self, exchange: Exchange) -> bool:
        """Count a request refused before a key was accepted; whether to store it too.

        Anyone can send these, as fast as they like: stored one by one they would grow the
        database and the recorder's queue at the sender's pace.
        """
        reason = exchange.error_type
        _unauthenticated(
            exchange.route, reason if reason in metrics.REFUSAL_REASONS else "other"
        ).inc()
        sample = self._refused_sample
        return sample is not None and sample.take()

    def _record(self, exchange: Exchange, ended: float) -> None:
        if exchange.response_started:
            exchange.trace.add_span(
                "response",
                "gateway",
                exchange.responded_at,
                ended,
                status=exchange.status,
                attributes={"http.status_code": exchange.http_status, "stream": exchange.stream},
            )
        key = exchange.key
        workspace = key.workspace_id if key is not None else DEFAULT_WORKSPACE_ID
        trace = TraceRecord(
            trace_id=exchange.trace.trace_id,
            workspace_id=workspace,
            api_key_id=key.key_id if key is not None else None,
            request_id=exchange.request_id,
            end_user=exchange.end_user,
            route=exchange.route,
            method=exchange.method,
            started_at=exchange.trace.start_wall,
            ended_at=exchange.trace.wall(ended),
            status=exchange.status,
            http_status=exchange.http_status,
            requested_model=exchange.requested_model,
            provider=exchange.provider,
            provider_model=exchange.provider_model,
            stream=exchange.stream,
            error_type=exchange.error_type,
            error_message=exchange.error_message,
            overhead_ms=exchange.overhead_ms,
            tags=exchange.tags,
            metadata=exchange.metadata,
            features=exchange.features,
            parent_trace_id=exchange.trace.parent_trace_id,
            parent_span_id=exchange.trace.parent_span_id,
        )
        try:
            self.record(exchange.trace.bundle(trace, ended))
        except Exception:
            logger.exception("could not hand trace %s to the recorder", trace.trace_id)


# --- helpers ----------------------------------------------------------------------------------


def _decode_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in raw}


def _request_id(given: str | None) -> str:
    if given and len(given) <= 128 and given.isprintable() and given.isascii():
        return given
    return uuid7_hex()


def _read_tags_and_metadata(exchange: Exchange) -> None:
    tags = exchange.headers.get("x-steerway-tags")
    if tags:
        exchange.tags = [t.strip()[:MAX_TAG_LENGTH] for t in tags.split(",") if t.strip()][
            :MAX_TAGS
        ]
    raw = exchange.headers.get("x-steerway-metadata")
    if raw:
        if len(raw) > MAX_METADATA_BYTES:
            raise invalid_request(
                f"The x-steerway-metadata header is larger than {MAX_METADATA_BYTES} bytes.",
                param="x-steerway-metadata",
            )
        try:
            metadata = msgspec.json.decode(raw)
        except (msgspec.DecodeError, RecursionError):
            metadata = None
        if not isinstance(metadata, dict):
            raise invalid_request(
                "The x-steerway-metadata header must be a JSON object.",
                param="x-steerway-metadata",
            )
        exchange.metadata = metadata


def _capacity_tokens(exchange: Exchange, payload: dict[str, Any]) -> int:
    """Tokens a request may use, for tpm capacity: its estimated input plus its output cap for
    each choice (never less than zero, whatever the body says)."""
    limit, choices = requested_output(payload)
    estimate = max(int(exchange.features.get("estimated_input_tokens", 0)), 0)
    return estimate + (limit or 0) * choices


def _inspect_event(
    event: bytes, state: StreamState, client_wants_usage: bool, keep_text: bool
) -> bool:
    """Read one SSE event; return whether to forward it to the client."""
    data = event_data(event)
    if data is None or data == b"[DONE]":
        return True
    if state.accumulator is not None:
        state.accumulator.feed(data)
    chunk = read_chunk(data)
    if chunk.has_output and state.first_output is None:
        state.first_output = time.perf_counter()
    state.output_chars += chunk.output_chars
    if chunk.finish_reason is not None:
        state.finish_reason = chunk.finish_reason
    if keep_text:
        for index, text in chunk.contents:
            state.texts.setdefault(index, []).append(text)
    if chunk.usage is not None:
        state.usage = chunk.usage
        if chunk.usage_only and not client_wants_usage:
            return False
    return True


async def _wait_for_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


def _failure_type(failure: UpstreamFailure) -> str:
    if failure.kind == "http":
        return f"http_{failure.status}"
    return failure.kind


def _client_error(target: Target, failure: UpstreamFailure) -> GatewayError:
    """The error the client sees for a failed provider attempt."""
    provider = target.provider
    if failure.kind == "timeout":
        return upstream_timeout(provider, failure.message)
    if failure.kind != "http" or failure.status is None:
        return upstream_error(provider, failure.message)
    status = failure.status
    if status in _PASS_STATUSES:
        headers = {}
        if failure.retry_after:
            headers["retry-after"] = failure.retry_after
        if failure.retry_after_ms:
            headers["retry-after-ms"] = failure.retry_after_ms
        return GatewayError(
            status,
            f"{provider}: {failure.message}",
            type=failure.error_type
            or ("rate_limit_error" if status == 429 else "invalid_request_error"),
            code=failure.error_code,
            param=failure.param,
            headers=headers,
        )
    if status in (401, 403):
        return upstream_error(
            provider, f"the provider rejected the gateway's credentials (HTTP {status})"
        )
    return upstream_error(provider, f"HTTP {status}: {failure.message}")

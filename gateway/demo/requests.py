"""One demo request, simulated through the gateway's pipeline and recorded as the proxy records
a real one (`gateway.proxy`): authenticate → steer (the real rules engine) → budgets and rate
limits → input guardrails → cache → provider attempts with retries and fallbacks → output
guardrails → respond. Spans, decisions, attempts and violations carry the names, types, inputs,
outputs and reasoning the proxy writes; costs come from the deployments' prices as the proxy
computes them; statuses, HTTP statuses and error types are the ones a client would have seen.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from gateway.demo.admission import Charge
from gateway.demo.cast import DEMO_MARKER, Deployment, Guardrail, Key, Model
from gateway.demo.draws import lognormal
from gateway.demo.guardrails import blocked_message, check, in_running_order
from gateway.demo.ids import DemoIds
from gateway.demo.trace import DemoTrace
from gateway.demo.upstream import (
    client_error,
    context_failure,
    failing,
    failure_of,
    failure_type,
)
from gateway.limits.admission import DEFAULT_OUTPUT_TOKENS
from gateway.limits.budget_model import reserve_micros
from gateway.upstream.reliability import classify, fallback_trigger
from providers.errors import UpstreamFailure
from rules.engine import apply_parameters
from telemetry.records import InteractionRecord, TraceBundle, TraceRecord

if TYPE_CHECKING:
    from gateway.demo.simulator import Simulator

CHAT_ROUTE = "/v1/chat/completions"
EMBEDDINGS_ROUTE = "/v1/embeddings"
CACHE_TTL = 3600
FALLBACK_ON = ("error", "context_window")
STREAM_DROP_SHARE = 0.0015
WAIT_CANCEL_SHARE = 0.002
TYPO_MODELS = ("gpt4o-mini", "gpt-4o-mini-latest-preview", "claude-3-haiku-20240307", "gpt-5-nano")
MAX_TOKENS_CHOICES = (256, 512, 1024, 2048)


class _Answered(Exception):
    """The request ended before (or instead of) a provider's answer."""

    def __init__(self, status: int, error_type: str, message: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message

    @classmethod
    def upstream(cls, provider: str, failure: UpstreamFailure) -> _Answered:
        error = client_error(provider, failure)
        return cls(error.status, error.error_type, error.message)


class _Cancelled(Exception):
    """The client went away."""


class Request:
    """One request on its way through the simulated pipeline; `clock` is the simulated time."""

    def __init__(
        self, sim: Simulator, rng: random.Random, ids: DemoIds, key: Key, micros: int
    ) -> None:
        self.sim = sim
        self.cast = sim.cast
        self.rng = rng
        self.key = key
        self.t0 = micros / 1e6
        self.clock = self.t0
        self.trace = DemoTrace(ids, self.t0, ids.trace(micros), key.workspace.workspace_id)
        self.request_id = ids.at(self.t0)
        self.status = "ok"
        self.http_status = 200
        self.error_type: str | None = None
        self.error_message: str | None = None
        self.provider: str | None = None
        self.provider_model: str | None = None
        self.overhead_ms: float | None = None
        self.upstream_seconds = 0.0
        self.responded_at: float | None = None
        self.attempts = 0
        self.guardrails: list[Guardrail] | None = None
        self.masked = False  # an input guardrail masked something: the answer is unmasked
        self.failed: dict[str, str] = {}  # provider → how it failed an attempt of this request
        self._draw_request()

    # --- the request itself -----------------------------------------------------------------

    def _draw_request(self) -> None:
        rng, key = self.rng, self.key
        cumulative, names = self.sim.model_choices[key.key_id]
        model = names[bisect_right(cumulative, rng.random() * cumulative[-1])]
        if key.typo_share and rng.random() < key.typo_share:
            model = rng.choice(TYPO_MODELS)
        self.model_name = model
        known = self.cast.models.get(model)
        self.operation = known.operation if known is not None else "chat"
        chat = self.operation == "chat"
        self.stream = chat and rng.random() < key.stream_share
        self.deterministic = not chat or rng.random() < key.deterministic_share
        users = key.end_users
        self.end_user = users[int(len(users) * rng.random() ** 2)] if users else None
        tags = [tag for tag, share in key.request_tags if rng.random() < share]
        self.tags = tags + [tag for tag in key.tags if tag not in tags]
        self.metadata = {name: rng.choice(values) for name, values in key.metadata}
        sigma = 0.6 if chat else 0.5
        self.prompt_tokens = max(8, int(lognormal(rng, key.prompt_tokens, sigma)))
        if key.huge_prompt_share and rng.random() < key.huge_prompt_share:
            self.prompt_tokens = rng.randint(130_000, 190_000)
        self.max_tokens = key.max_tokens if chat else None
        if chat and self.max_tokens is None and rng.random() < 0.3:
            self.max_tokens = rng.choice(MAX_TOKENS_CHOICES)
        self.parent = (
            (f"{rng.getrandbits(128):032x}", f"{rng.getrandbits(64) or 1:016x}")
            if users and rng.random() < 0.25
            else None
        )
        messages = 1 + 2 * int(rng.random() ** 2 * 5) if chat else 0
        self.estimated = self.prompt_tokens + (12 + 4 * messages if chat else 8)
        features: dict[str, Any] = {
            "model": model,
            "stream": self.stream,
            "estimated_input_tokens": self.estimated,
            "user": self.end_user,
        }
        if chat:
            features["message_count"] = messages
            features["has_images"] = rng.random() < 0.02
            features["has_tools"] = rng.random() < 0.08
            features["has_response_format"] = rng.random() < 0.05
            if self.max_tokens is not None:
                features["max_tokens"] = self.max_tokens
            if self.deterministic:
                features["temperature"] = 0
        features[DEMO_MARKER] = True
        self.features = features

    # --- the pipeline -------------------------------------------------------------------------

    def run(self) -> TraceBundle:
        try:
            self._authenticate()
            self.clock += lognormal(self.rng, 40e-6, 0.5) + self.estimated * 4e-9
            route = self._steer()
            self._admit(route)
            try:
                self._guard_input()
                if not self._from_cache(route):
                    self._serve(route)
            finally:
                self._release()
        except _Answered as answer:
            self._fail(answer)
        except _Cancelled:
            self.status, self.http_status = "cancelled", 499
            self.error_type = "client_disconnected"
        return self._finish()

    def _authenticate(self) -> None:
        rng = self.rng
        started = self.t0 + lognormal(rng, 12e-6, 0.4)
        slow = rng.random() < 0.01  # a key lookup that missed the in-process cache
        ended = started + (lognormal(rng, 1.8e-3, 0.5) if slow else lognormal(rng, 45e-6, 0.4))
        self.trace.span(
            "auth",
            "gateway",
            started,
            ended,
            {"key.id": self.key.key_id, "key.role": "user"},
        )
        self.clock = ended

    def _steer(self) -> Model:
        outcome = self.sim.rules.outcome(self.model_name, self.tags, self.metadata)
        evaluation = outcome.evaluation
        trace, at = self.trace, self.clock
        elapsed = lognormal(self.rng, 6.0, 0.35) + 2.5 * len(outcome.matches)
        effects = outcome.effects
        cap = evaluation.cap or evaluation.set
        if cap and evaluation.deny is None:
            payload: dict[str, Any] = {}
            if self.max_tokens is not None:
                payload["max_tokens"] = self.max_tokens
            changes = apply_parameters(payload, evaluation)
            if changes:
                effects = {**effects, "parameters_changed": changes}
            if isinstance(payload.get("max_tokens"), int):
                self.max_tokens = payload["max_tokens"]
        trace.decide(
            at,
            "rule_evaluation",
            "rules",
            outcome.summary_input,
            effects,
            outcome.reasoning(),
            elapsed,
        )
        for rule_id, name, evidence, actions, reasoning in outcome.matches:
            trace.decide(
                at,
                "rule_evaluation",
                "rules",
                evidence,
                actions,
                reasoning,
                rule_id=rule_id,
                rule_name=name,
            )
        self.clock += elapsed / 1e6
        for tag in evaluation.tags:
            if tag not in self.tags:
                self.tags.append(tag)
        self.routed_by: str | None = None
        self.rule_guardrails = evaluation.guardrails
        if evaluation.deny is not None:
            deny = evaluation.deny
            raise _Answered(
                deny.status,
                deny.code
                or ("rate_limit_error" if deny.status == 429 else "invalid_request_error"),
                deny.message,
            )
        target = evaluation.route
        name = self.model_name if target is None else target.model
        if target is not None:
            self.routed_by = evaluation.route_rule
        model = self.cast.models.get(name)
        if model is None:
            shown = name if len(name) <= 200 else f"{name[:200]}..."
            raise _Answered(
                404,
                "model_not_found",
                f"The model `{shown}` does not exist or you do not have access to it.",
            )
        return model

    def _admit(self, route: Model) -> None:
        key, rng, trace = self.key, self.rng, self.trace
        charges = self.sim.charges[key.key_id]
        output = self.max_tokens or DEFAULT_OUTPUT_TOKENS
        if charges:
            most = self._largest_cost(route, output)
            refusal = self.sim.ledger.refusal(charges, most, self.clock)
            elapsed = lognormal(rng, 70.0, 0.4)
            trace.decide(
                self.clock,
                "budget_check",
                "admission",
                {
                    "budgets": [charge.label for charge in charges],
                    "reserved_usd": str(Decimal(reserve_micros(most)).scaleb(-6)),
                    "price_known": True,
                },
                {
                    "allowed": refusal is None,
                    "degraded": False,
                    "unavailable": False,
                    "denied_by": None if refusal is None else refusal.describe(),
                },
                refusal.denial_message()
                if refusal is not None
                else f"within {len(charges)} budget(s)",
                elapsed,
            )
            self.clock += elapsed / 1e6
            if refusal is not None:
                raise _Answered(429, "insufficient_quota", refusal.denial_message())
        if key.rpm_limit is None:
            return
        limited = self.sim.counter.refusal(key, self.clock)
        elapsed = lognormal(rng, 35.0, 0.4)
        trace.decide(
            self.clock,
            "rate_limit",
            "admission",
            {"tokens": self.estimated + (self.max_tokens or 0), "subjects": [f"key:{key.key_id}"]},
            {
                "allowed": limited is None,
                "degraded": False,
                "unavailable": False,
                "retry_after_s": None if limited is None else limited.retry_after,
            },
            "within every rate limit" if limited is None else limited.message(),
            elapsed,
        )
        self.clock += elapsed / 1e6
        if limited is not None:
            raise _Answered(429, "rate_limit_exceeded", limited.message())

    def _largest_cost(self, route: Model, output: int) -> Decimal:
        """What the request may cost at most on any deployment that may serve it."""
        models = [route, *(self.cast.models[name] for name in route.fallbacks)]
        costs = [
            d.price.cost(self.estimated, output) or Decimal(0)
            for model in models
            for d in model.deployments
        ]
        return max(costs)

    def _release(self) -> None:
        """Settle the budgets to what the request cost; note a soft limit it crossed."""
        charges: tuple[Charge, ...] = self.sim.charges[self.key.key_id]
        if not charges:
            return
        cost = Decimal(0)
        for interaction in self.trace.interactions:
            if not interaction.cache_hit and interaction.cost_usd is not None:
                cost += interaction.cost_usd
        for state in self.sim.ledger.settle(charges, cost, self.clock):
            soft = {
                "scope": state.scope,
                "subject": state.subject,
                "window": state.window,
                "percent_spent": round(state.percent_spent, 2),
                "soft_percent": state.soft_percent,
            }
            self.trace.decide(
                self.clock,
                "budget_check",
                "admission",
                {"scope": state.scope, "window": state.window},
                soft,
                f"{state.scope} budget passed its soft limit of {soft['soft_percent']:g}% "
                f"({soft['percent_spent']:g}% spent)",
            )

    # --- guardrails ---------------------------------------------------------------------------

    def _guard_input(self) -> None:
        names = [
            *self.key.workspace.guardrails,
            *self.key.guardrails,
            *(self.rule_guardrails or ()),
        ]
        if not names:
            return
        chosen = [self.cast.guardrails[name] for name in dict.fromkeys(names)]
        self.guardrails = chosen
        checks = in_running_order([g for g in chosen if g.direction == "input"])
        if not checks:
            return
        started = self.clock
        ran: list[str] = []
        blocked: tuple[Guardrail, dict[str, int]] | None = None
        for guardrail in checks:
            ran.append(guardrail.name)
            entities = self._check(guardrail, "input")
            if entities and guardrail.action == "mask":
                self.masked = True
            if entities and guardrail.action == "block":
                blocked = (guardrail, entities)
                break
        self.clock += 15e-6
        self.trace.span("guardrails.input", "gateway", started, self.clock, {"guardrails": ran})
        if blocked is not None:
            guardrail, entities = blocked
            raise _Answered(400, "guardrail_violation", blocked_message(guardrail, entities))

    def _guard_output(self, at_end_of_stream: bool = False) -> None:
        """The output guardrails' verdicts. A stream is checked as it goes by whenever it has
        output guardrails or masked input to restore, and its span is noted at the end even
        when no check ran; a whole answer only when there are checks."""
        checks = [g for g in self.guardrails or () if g.direction == "output"]
        if not checks and not (at_end_of_stream and self.masked):
            return
        started = self.clock
        names = [g.name for g in checks]
        for guardrail in checks:
            self._check(guardrail, "output")
        if at_end_of_stream:
            self.clock = started + 10e-6  # checked chunk by chunk while the answer streamed
        self.trace.span("guardrails.output", "gateway", started, self.clock, {"guardrails": names})

    def _check(self, guardrail: Guardrail, direction: str) -> dict[str, int]:
        entities, self.clock = check(
            self.rng, self.trace, self.clock, guardrail, direction, self.key.key_id
        )
        return entities

    # --- cache --------------------------------------------------------------------------------

    def _from_cache(self, route: Model) -> bool:
        if not self.deterministic:
            return False  # a sampled answer is not cached: no decision is recorded
        rng = self.rng
        hit = rng.random() < self.key.repeat_share
        started = self.clock
        elapsed = lognormal(rng, 18.0, 0.4)
        self.clock += elapsed / 1e6
        self.trace.decide(
            self.clock,
            "cache_decision",
            "cache",
            {"read": True, "write": True, "ttl": CACHE_TTL},
            {"status": "HIT" if hit else "MISS", "degraded": False},
            f"the cache is on; ttl {CACHE_TTL}s from the default ttl",
            elapsed,
        )
        if not hit:
            return False
        deployment = self._pick(route.deployments, ())
        self.provider, self.provider_model = deployment.provider, deployment.model
        prompt, completion, cached, _ = self._usage(route)
        if self.operation == "chat" and self.guardrails:
            self._guard_output()
        self.clock += lognormal(rng, 90e-6, 0.5)
        self._respond(200)
        self.clock += lognormal(rng, 60e-6, 0.5) * (4 if self.stream else 1)
        total = prompt + (completion or 0)
        self.trace.interactions.append(
            InteractionRecord(
                interaction_id=self.trace.ids.at(self.clock),
                trace_id=self.trace.trace_id,
                workspace_id=self.trace.workspace_id,
                api_key_id=self.key.key_id,
                provider=deployment.provider,
                requested_model=route.name,
                provider_model=deployment.model,
                deployment="cache",
                attempt=1,
                operation=self.operation,
                stream=self.stream,
                prompt_tokens=prompt,
                completion_tokens=completion,
                cached_tokens=cached,
                total_tokens=total,
                cost_usd=Decimal(0),
                cost_saved_usd=deployment.price.cost(prompt, completion or 0, cached),
                started_at=started,
                ended_at=self.clock,
                status="ok",
                http_status=200,
                cache_hit=True,
            )
        )
        return True

    # --- provider attempts --------------------------------------------------------------------

    def _serve(self, primary: Model) -> None:
        avoid: set[str] = set()
        failure: UpstreamFailure | None = None
        previous = primary.name
        kind = "retryable"
        for position, name in enumerate((primary.name, *primary.fallbacks)):
            model = self.cast.models[name]
            if position:
                assert failure is not None and self.provider is not None
                self.trace.decide(
                    self.clock,
                    "fallback",
                    "reliability",
                    {"from": previous, "error": client_error(self.provider, failure).message},
                    {"to": name},
                    f"'{previous}' could not answer; trying fallback '{name}'",
                )
            for retry in range(model.retries + 1):
                deployment = self._select(model, avoid)
                failure = self._attempt(model, deployment)
                if failure is None:
                    return
                avoid.add(deployment.id)
                kind = classify(failure)
                if kind != "retryable" or retry == model.retries:
                    break
                delay = self._retry_delay(retry, failure)
                self.trace.decide(
                    self.clock,
                    "retry",
                    "reliability",
                    {
                        "deployment": deployment.id,
                        "attempt": self.attempts,
                        "error": failure.message,
                        "status": failure.status,
                    },
                    {"retry": retry + 1, "delay_s": delay},
                    f"attempt {self.attempts} failed ({failure_type(failure)}); "
                    f"retrying in {delay:.3f}s",
                )
                self.clock += delay
            trigger = fallback_trigger(kind)
            if trigger is None or trigger not in FALLBACK_ON:
                break
            previous = name
        assert failure is not None and self.provider is not None
        raise _Answered.upstream(self.provider, failure)

    def _retry_delay(self, retry: int, failure: UpstreamFailure) -> float:
        if failure.retry_after is not None:
            return float(failure.retry_after)
        return self.rng.uniform(0, min(8.0, 0.25 * 2**retry))

    def _pick(self, deployments: tuple[Deployment, ...], avoid: Any) -> Deployment:
        fresh = [d for d in deployments if d.id not in avoid] or list(deployments)
        if len(fresh) == 1:
            return fresh[0]
        draw = self.rng.random() * sum(d.weight for d in fresh)
        for deployment in fresh:
            draw -= deployment.weight
            if draw < 0:
                return deployment
        return fresh[-1]

    def _select(self, model: Model, avoid: set[str]) -> Deployment:
        rng = self.rng
        deployments = model.deployments
        deployment = self._pick(deployments, avoid)
        fresh = [d for d in deployments if d.id not in avoid] or deployments
        if len(deployments) == 1:
            reason = "the only deployment of this model"
        elif len(fresh) == 1:
            reason = "the only usable deployment left"
        else:
            weights = ":".join(f"{d.weight:g}" for d in fresh)
            reason = f"weighted random among {len(fresh)} deployments (weights {weights})"
        candidates = [
            {
                "deployment": d.id,
                "weight": d.weight,
                "in_flight": int(rng.random() ** 2 * 6),
                "latency_ms": round(lognormal(rng, model.ttft_ms * 2.5, 0.3), 3),
            }
            for d in deployments
        ]
        started = self.clock
        self.clock += lognormal(rng, 25e-6, 0.3)
        self.provider, self.provider_model = deployment.provider, deployment.model
        self.trace.span(
            "route",
            "gateway",
            started,
            self.clock,
            {"model.requested": model.name, "deployment": deployment.id},
        )
        self.trace.decide(
            self.clock,
            "model_selection",
            "router",
            {
                "requested_model": self.model_name,
                "route": model.name,
                "routed_by": self.routed_by,
                "candidates": candidates,
            },
            {
                "provider": deployment.provider,
                "model": deployment.model,
                "deployment": deployment.id,
            },
            reason,
            (self.clock - started) * 1e6,
        )
        return deployment

    def _usage(self, model: Model) -> tuple[int, int | None, int | None, str | None]:
        """Prompt, completion and cached tokens of an answer, and its finish reason."""
        rng = self.rng
        prompt = self.prompt_tokens
        if self.operation == "embeddings":
            return prompt, None, None, None
        completion = max(1, int(lognormal(rng, self.key.completion_tokens, 0.7)))
        finish = "tool_calls" if self.features.get("has_tools") and rng.random() < 0.6 else "stop"
        if self.max_tokens is not None and completion >= self.max_tokens:
            completion, finish = self.max_tokens, "length"
        cached = 0
        if prompt >= 1024 and rng.random() < 0.45:
            cached = min(prompt, 1024 + 128 * int(rng.random() * (prompt - 1024) / 128))
        return prompt, completion, cached, finish

    def _attempt(self, model: Model, deployment: Deployment) -> UpstreamFailure | None:
        """One provider attempt: None once answered, else the failure."""
        rng = self.rng
        self.attempts += 1
        started = self.clock
        span_id = self.trace.ids.span()
        provider = self.cast.providers[deployment.provider]
        failure: UpstreamFailure | None = None
        minute = int(started // 60)
        incident = self.sim.rhythm.incident(provider.name, minute)
        if self.prompt_tokens > model.context_window:
            failure = context_failure(provider.name, model, self.prompt_tokens)
            duration = lognormal(rng, 0.18, 0.4)
        elif (way := failing(rng, provider, incident, self.failed.get(provider.name))) is not None:
            failure, duration = failure_of(rng, provider.name, way)
        else:
            duration = 0.0  # answered: timed below
        if failure is not None:
            self.clock = started + duration
            self.failed[provider.name] = failure_type(failure)
            self._record_attempt(model, deployment, span_id, started, failure=failure)
            return failure
        prompt, completion, cached, finish = self._usage(model)
        slowdown = self.sim.rhythm.slowdown(provider.name, minute)
        if self.operation == "embeddings":
            answering = lognormal(rng, model.ttft_ms / 1000, 0.4) + prompt * 2e-6
            self.clock = started + answering * slowdown
            self.upstream_seconds = self.clock - started
            self._record_attempt(model, deployment, span_id, started, usage=(prompt, None, None))
            self._respond_after_answer()
            return None
        assert completion is not None
        ttft = (lognormal(rng, model.ttft_ms / 1000, 0.35) + prompt * 1.5e-7) * slowdown
        generating = completion / lognormal(rng, model.tokens_per_second, 0.25) * slowdown
        if not self.stream:
            if rng.random() < WAIT_CANCEL_SHARE:
                self.clock = started + (ttft + generating) * rng.uniform(0.2, 0.9)
                self._record_attempt(model, deployment, span_id, started, cancelled=True)
                raise _Cancelled()
            self.clock = started + ttft + generating
            self.upstream_seconds = self.clock - started
            self._record_attempt(
                model,
                deployment,
                span_id,
                started,
                usage=(prompt, completion, cached),
                finish=finish,
            )
            self._respond_after_answer()
            return None
        self._stream(
            model,
            deployment,
            span_id,
            started,
            ttft,
            generating,
            (prompt, completion, cached),
            finish,
        )
        return None

    def _stream(
        self,
        model: Model,
        deployment: Deployment,
        span_id: str,
        started: float,
        ttft: float,
        generating: float,
        usage: tuple[int, int | None, int | None],
        finish: str | None,
    ) -> None:
        rng = self.rng
        first_output = started + ttft
        self.upstream_seconds = ttft * 0.97
        self.clock = started + self.upstream_seconds + lognormal(rng, 80e-6, 0.4)
        self._respond(200)
        cancelled = rng.random() < self.key.cancel_share
        dropped = not cancelled and rng.random() < STREAM_DROP_SHARE
        if cancelled or dropped:
            share = rng.uniform(0.05, 0.9)
            self.clock = first_output + generating * share
            completion = usage[1]
            partial = max(1, int((completion or 1) * share))
            estimated = (self.estimated, partial, None)
            failure = (
                UpstreamFailure("disconnected", "the provider closed the stream early")
                if dropped
                else None
            )
            self._record_attempt(
                model,
                deployment,
                span_id,
                started,
                usage=estimated,
                estimated=True,
                first_output=first_output,
                failure=failure,
                cancelled=cancelled,
            )
            if cancelled:
                self.error_message = "the client disconnected mid-stream; upstream cancelled"
                raise _Cancelled()
            assert failure is not None
            self._guard_output(at_end_of_stream=True)
            raise _Answered.upstream(deployment.provider, failure)
        self.clock = first_output + generating
        self._record_attempt(
            model,
            deployment,
            span_id,
            started,
            usage=usage,
            finish=finish,
            first_output=first_output,
        )
        self._guard_output(at_end_of_stream=True)
        self.clock += lognormal(rng, 60e-6, 0.4)

    def _respond_after_answer(self) -> None:
        if self.operation == "chat":
            self._guard_output()
        self.clock += lognormal(self.rng, 70e-6, 0.5)
        self._respond(200)
        self.clock += lognormal(self.rng, 90e-6, 0.5)

    def _record_attempt(
        self,
        model: Model,
        deployment: Deployment,
        span_id: str,
        started: float,
        *,
        usage: tuple[int, int | None, int | None] | None = None,
        estimated: bool = False,
        finish: str | None = None,
        first_output: float | None = None,
        failure: UpstreamFailure | None = None,
        cancelled: bool = False,
    ) -> None:
        """The attempt's interaction and span (`gateway.upstream.attempts.record_attempt`)."""
        ended = self.clock
        status = "cancelled" if cancelled else ("error" if failure is not None else "ok")
        error_type = None if failure is None else failure_type(failure)
        prompt, completion, cached = usage if usage is not None else (None, None, None)
        chat = self.operation == "chat"
        cost = None
        if prompt is not None:
            cost = deployment.price.cost(prompt, completion if chat else 0, cached)
        ttft_ms = None if first_output is None else (first_output - started) * 1000.0
        tokens_per_second = None
        if completion and first_output is not None and ended > first_output:
            tokens_per_second = completion / (ended - first_output)
        elif completion and first_output is None and ended > started:
            tokens_per_second = completion / (ended - started)
        trace = self.trace
        trace.interactions.append(
            InteractionRecord(
                interaction_id=trace.ids.at(ended),
                trace_id=trace.trace_id,
                workspace_id=trace.workspace_id,
                span_id=span_id,
                api_key_id=self.key.key_id,
                provider=deployment.provider,
                requested_model=model.name,
                provider_model=deployment.model,
                deployment=deployment.id,
                attempt=len(trace.interactions) + 1,
                operation=self.operation,
                stream=self.stream,
                prompt_tokens=prompt,
                completion_tokens=completion,
                cached_tokens=cached,
                total_tokens=None if prompt is None else prompt + (completion or 0),
                usage_estimated=estimated,
                cost_usd=cost,
                started_at=started,
                ended_at=ended,
                ttft_ms=ttft_ms,
                tokens_per_second=tokens_per_second,
                status=status,
                http_status=failure.status if failure is not None else (None if cancelled else 200),
                finish_reason=finish,
                error_type=error_type,
                error_message=None if failure is None else failure.message,
            )
        )
        attributes: dict[str, Any] = {
            "gen_ai.provider.name": deployment.provider,
            "gen_ai.request.model": deployment.model,
            "gen_ai.usage.input_tokens": prompt,
            "gen_ai.usage.output_tokens": completion,
            "error.type": error_type,
        }
        if estimated:
            attributes["steerway.usage.estimated"] = True
        trace.span(
            f"provider.{self.operation}",
            "provider",
            started,
            ended,
            attributes,
            status=status,
            span_id=span_id,
        )

    # --- the answer ---------------------------------------------------------------------------

    def _respond(self, status: int) -> None:
        self.responded_at = self.clock
        self.http_status = status
        if status < 400:
            self.overhead_ms = max((self.clock - self.t0) - self.upstream_seconds, 0.0) * 1000.0

    def _fail(self, answer: _Answered) -> None:
        self.status = "error"
        self.error_type = answer.error_type
        self.error_message = answer.message
        if self.responded_at is not None:
            return  # the stream's status line already went out as 200
        self.clock += lognormal(self.rng, 30e-6, 0.5)
        self._respond(answer.status)
        self.clock += lognormal(self.rng, 60e-6, 0.5)

    def _finish(self) -> TraceBundle:
        ended = self.clock
        trace = self.trace
        if self.responded_at is not None:
            ended += lognormal(self.rng, 15e-6, 0.4)
            trace.span(
                "response",
                "gateway",
                self.responded_at,
                ended,
                {"http.status_code": self.http_status, "stream": self.stream},
                status=self.status,
            )
        parent_trace, parent_span = self.parent if self.parent is not None else (None, None)
        record = TraceRecord(
            trace_id=trace.trace_id,
            workspace_id=trace.workspace_id,
            api_key_id=self.key.key_id,
            request_id=self.request_id,
            end_user=self.end_user,
            route=CHAT_ROUTE if self.operation == "chat" else EMBEDDINGS_ROUTE,
            started_at=self.t0,
            ended_at=ended,
            status=self.status,
            http_status=self.http_status,
            requested_model=self.model_name,
            provider=self.provider,
            provider_model=self.provider_model,
            stream=self.stream,
            error_type=self.error_type,
            error_message=self.error_message,
            overhead_ms=self.overhead_ms,
            tags=self.tags,
            metadata=self.metadata,
            features=self.features,
            parent_trace_id=parent_trace,
            parent_span_id=parent_span,
        )
        return trace.bundle(record)

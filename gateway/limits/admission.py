"""Admission: whether a steered request may go on, and what it holds while it runs.

After the rules and before the cache and the provider, a request must pass, in this order:
the key's allowed models; every budget that applies (key, workspace, end user, the bucket a
rule named), by reserving its largest possible cost; and its key's and workspace's rate limits
(requests, tokens, parallel). Budgets go first because a reservation can be released in full:
a request refused by either check consumes nothing of the other. What it acquired is given back in `finish`: the parallel slots, the
token estimate corrected to the tokens used, and the reservation settled to the actual cost.
Every check leaves a decision in the trace.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from gateway.config.file import BudgetSpec
from gateway.errors import GatewayError
from gateway.keys.limits import BudgetLimit
from gateway.keys.store import KeyInfo
from gateway.limits.budgets import BudgetLedger, Charge, Reservation, reserve_micros, settle_micros
from gateway.limits.ratelimit import LimitSubject, RateDecision, RateLimiter, rate_limit_error
from gateway.upstream.routing import Route, Router
from telemetry.trace import RequestTrace

DEFAULT_OUTPUT_TOKENS = 4096
"""The output a request without `max_tokens` is assumed to reach when reserving its cost."""
LIMITS_UNAVAILABLE = "limits_unavailable"


def budget_limits(specs: Sequence[BudgetSpec]) -> tuple[BudgetLimit, ...]:
    """The config's budgets (`budgets.end_user`, `budgets.buckets`) as ledger limits."""
    return tuple(
        BudgetLimit.from_json(
            {
                "limit_usd": str(spec.limit_usd),
                "window": spec.window,
                "soft_percent": spec.soft_percent,
            }
        )
        for spec in specs
    )


class Admitted:
    """What one admitted request holds until `Admission.finish`."""

    __slots__ = ("rate", "reservation", "tokens")

    def __init__(
        self, rate: RateDecision | None, reservation: Reservation | None, tokens: int
    ) -> None:
        self.rate = rate
        self.reservation = reservation
        self.tokens = tokens

    def headers(self) -> dict[str, str]:
        return self.rate.headers() if self.rate is not None else {}


class Admission:
    def __init__(
        self,
        *,
        limiter: RateLimiter | None,
        ledger: BudgetLedger | None,
        router: Router | None = None,
        timezone: str = "UTC",
        end_user_budgets: tuple[BudgetLimit, ...] = (),
        buckets: Mapping[str, tuple[BudgetLimit, ...]] | None = None,
    ) -> None:
        self.limiter = limiter
        self.ledger = ledger
        self.router = router
        self.timezone = timezone
        self.end_user_budgets = end_user_budgets
        self.buckets = dict(buckets or {})
        self.finishes_in_place = (limiter is None or limiter.releases_in_place) and (
            ledger is None or ledger.settles_in_place
        )
        """Whether `finish` runs to its end without waiting on anything (limits and budgets held
        in this worker): nothing can cancel it halfway, so it needs no shield."""

    def charges(self, key: KeyInfo, end_user: str | None, bucket: str | None) -> list[Charge]:
        workspace = key.workspace_id
        found = [
            Charge("key", key.key_id, workspace, limit, self.timezone) for limit in key.budgets
        ]
        found += [
            Charge("workspace", workspace, workspace, limit, self.timezone)
            for limit in key.workspace_limits.budgets
        ]
        if end_user:
            found += [
                Charge("end_user", end_user, workspace, limit, self.timezone)
                for limit in self.end_user_budgets
            ]
        if bucket:
            found += [
                Charge("bucket", bucket, workspace, limit, self.timezone)
                for limit in self.buckets.get(bucket, ())
            ]
        return found

    async def budget_percent(
        self, key: KeyInfo | None, end_user: str | None, now: float
    ) -> dict[str, float]:
        """Budget used in percent per scope, for the rules' `budget.*` fields."""
        if self.ledger is None or key is None:
            return {}
        charges = self.charges(key, end_user, None)
        if not charges:
            return {}
        return await self.ledger.percent_used(charges, now)

    async def admit(
        self,
        trace: RequestTrace,
        key: KeyInfo,
        route: Route,
        fallbacks: Sequence[str],
        requested_model: str,
        *,
        end_user: str | None,
        bucket: str | None,
        input_tokens: int,
        output_tokens: int | None,
        choices: int = 1,
    ) -> Admitted:
        """`route` and its `fallbacks` are what the request may be served by: a reservation
        covers the dearest of their deployments."""
        if not key.allows_model(requested_model):
            trace.add_decision(
                "guardrail",
                "admission",
                input={"model": requested_model, "allowed_models": list(key.allowed_models or ())},
                output={"allowed": False},
                reasoning=f"key '{key.name}' may not use model '{requested_model}'",
                evaluation_us=0.0,
            )
            raise GatewayError(
                403,
                f"This API key may not use the model '{requested_model}'.",
                type="invalid_request_error",
                code="model_not_allowed",
                param="model",
            )
        # Counts below one are no counts: nothing a request carries may shrink a reservation.
        input_tokens = max(input_tokens, 0)
        if output_tokens is not None and output_tokens < 1:
            output_tokens = None
        output = (output_tokens or DEFAULT_OUTPUT_TOKENS) * max(choices, 1)
        reservation = await self._reserve(
            trace, key, route, fallbacks, end_user, bucket, input_tokens, output
        )
        tokens = input_tokens + (output_tokens or 0) * max(choices, 1)
        try:
            rate = await self._rate(trace, key, tokens)
        except BaseException:
            if reservation is not None and self.ledger is not None:
                await self.ledger.release(reservation)
            raise
        return Admitted(rate, reservation, tokens)

    async def finish(
        self, admitted: Admitted, cost_usd: Decimal | None, tokens: int | None
    ) -> list[dict[str, Any]]:
        """Give back what the request held; the soft budget limits its cost crossed."""
        if admitted.rate is not None and self.limiter is not None:
            await self.limiter.release(admitted.rate, tokens)
        reservation = admitted.reservation
        if reservation is None or self.ledger is None:
            return []
        if cost_usd is None:
            await self.ledger.release(reservation)
            return []
        settlement = await self.ledger.settle(reservation, settle_micros(cost_usd))
        return [
            {
                "scope": state.scope,
                "subject": state.subject,
                "window": state.window,
                "percent_spent": round(state.percent_spent, 2),
                "soft_percent": state.soft_percent,
            }
            for state in settlement.soft_limits
        ]

    async def _rate(self, trace: RequestTrace, key: KeyInfo, tokens: int) -> RateDecision | None:
        if self.limiter is None:
            return None
        limits = key.workspace_limits
        subjects = []
        if key.rpm_limit or key.tpm_limit or key.max_parallel:
            subjects.append(
                LimitSubject("key", key.key_id, key.rpm_limit, key.tpm_limit, key.max_parallel)
            )
        if limits.rpm_limit or limits.tpm_limit or limits.max_parallel:
            subjects.append(
                LimitSubject(
                    "workspace",
                    key.workspace_id,
                    limits.rpm_limit,
                    limits.tpm_limit,
                    limits.max_parallel,
                )
            )
        if not subjects:
            return None
        started = time.perf_counter()
        decision = await self.limiter.acquire(subjects, tokens)
        evaluation_us = (time.perf_counter() - started) * 1e6
        refusal = decision.refusal
        trace.add_decision(
            "rate_limit",
            "admission",
            input={"tokens": tokens, "subjects": [f"{s.scope}:{s.subject}" for s in subjects]},
            output={
                "allowed": decision.allowed,
                "degraded": decision.degraded,
                "unavailable": decision.unavailable,
                "retry_after_s": decision.retry_after if refusal is not None else None,
            },
            reasoning=(
                refusal.message()
                if refusal is not None
                else "rate limits unavailable (Redis): refused"
                if decision.unavailable
                else "rate limits unavailable (Redis): served unchecked"
                if decision.degraded
                else "within every rate limit"
            ),
            evaluation_us=evaluation_us,
        )
        error = rate_limit_error(decision)
        if error is not None:
            raise error
        return decision

    async def _reserve(
        self,
        trace: RequestTrace,
        key: KeyInfo,
        route: Route,
        fallbacks: Sequence[str],
        end_user: str | None,
        bucket: str | None,
        input_tokens: int,
        output_tokens: int,
    ) -> Reservation | None:
        if self.ledger is None:
            return None
        charges = self.charges(key, end_user, bucket)
        if not charges:
            return None
        started = time.perf_counter()
        routes = [route]
        if self.router is not None:
            routes += [self.router.resolve(name) for name in fallbacks if name in self.router]
        most = _largest_cost(routes, input_tokens, output_tokens)
        amount = reserve_micros(most) if most is not None else 0
        reservation = await self.ledger.reserve(charges, amount, time.time())
        evaluation_us = (time.perf_counter() - started) * 1e6
        denied = reservation.denied
        trace.add_decision(
            "budget_check",
            "admission",
            input={
                "budgets": [f"{c.scope}:{c.subject}:{c.limit.window}" for c in charges],
                "reserved_usd": str(Decimal(amount).scaleb(-6)),
                "price_known": most is not None,
            },
            output={
                "allowed": reservation.ok,
                "degraded": reservation.degraded,
                "unavailable": reservation.unavailable,
                "denied_by": None if denied is None else denied.describe(),
            },
            reasoning=(
                denied.denial_message()
                if denied is not None
                else "budgets unavailable (Redis): refused"
                if reservation.unavailable
                else "budgets unavailable (Redis): served unchecked"
                if reservation.degraded
                else f"within {len(charges)} budget(s)"
            ),
            evaluation_us=evaluation_us,
        )
        if reservation.unavailable:
            raise GatewayError(
                503,
                "Budgets cannot be checked right now. Try again shortly.",
                type="server_error",
                code=LIMITS_UNAVAILABLE,
            )
        if denied is not None:
            raise GatewayError(
                429,
                denied.denial_message(),
                type="insufficient_quota",
                code="insufficient_quota",
                # Waiting seconds will not help: tell the OpenAI SDK not to retry.
                headers={"x-should-retry": "false"},
            )
        return reservation


def _largest_cost(routes: Sequence[Route], input_tokens: int, output_tokens: int) -> Decimal | None:
    """The most this request can cost on any deployment that may serve it; None when one has
    no price (its cost cannot be bounded, so nothing is reserved)."""
    costs = []
    for target in (target for route in routes for target in route.targets):
        if target.price is None:
            return None
        cost = target.price.cost(input_tokens, output_tokens)
        if cost is None:
            return None
        costs.append(cost)
    return max(costs) if costs else None

"""The limits stage: the request is admitted through its allowed models, rate limits and budgets,
holds what it was admitted with while it runs, and settles it when it ends."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from gateway.exchange import Exchange, Receive, Send
from gateway.limits.admission import Admission
from providers.usage import requested_output


class LimitsStage:
    """Admits a steered request; `settle` gives back what it held, whatever happened after."""

    __slots__ = ("admission",)

    def __init__(self, admission: Admission) -> None:
        self.admission = admission

    async def run(self, exchange: Exchange, receive: Receive, send: Send) -> bool:
        key = exchange.key
        route = exchange.steered
        if key is None or route is None:
            return False
        payload = exchange.payload
        fallbacks = exchange.fallbacks
        limit, choices = requested_output(payload)
        steering = exchange.steering
        admitted = await self.admission.admit(
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
        return False

    async def settle(self, exchange: Exchange) -> None:
        """Settle the budget to what the request cost and give back its rate-limit hold."""
        admitted = exchange.admitted
        if admitted is None:
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
        finishing = self.admission.finish(admitted, cost, tokens)
        if self.admission.finishes_in_place:
            crossed = await finishing
        else:
            try:
                crossed = await asyncio.shield(finishing)
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

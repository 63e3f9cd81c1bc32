"""Two views of where the money goes: the token waterfall and the cache's return.

**Token waterfall.** The roll-ups keep each request's tokens (input, of which cached, and output)
and its cost, but not the cost of each kind of token. The panel apportions each deployment's
actual cost over its three kinds in proportion to what the deployment's list price charges for
each: with P input tokens of which C cached, O output tokens, and prices p_in, p_cached (p_in
when the model has none) and p_out, the shares are (P - C) * p_in, C * p_cached and O * p_out. The
shares always add up to the cost recorded, whatever price overrides or snapshots applied when
the request was priced; a deployment without a known price keeps its cost "not apportioned".
Answers from the gateway's own cache cost nothing and are left out (the cache panel counts
them).

**Cache return.** Hits of the gateway's cache, what they would have cost (`cost_saved`, priced
when the answer was stored), and that against what was spent: the bill without the cache would
have been spent + saved.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Final

from admin_ui.panel_providers import deployment_prices, price_of
from gateway.config.file import GatewayConfig
from providers.pricing import ModelPrice, PriceTable
from telemetry.analytics import AnalyticsQuery, AnalyticsResult

Run = Callable[[AnalyticsQuery], Awaitable[AnalyticsResult]]

TOKEN_MEASURES: Final = ("input_tokens", "cached_tokens", "output_tokens", "cost")
PARTS: Final = (
    ("input", "Input tokens", "uncached prompt tokens"),
    ("cached", "Cached input tokens", "prompt tokens the provider's cache served"),
    ("output", "Output tokens", "completion tokens"),
)


def _decimal(value: float | Decimal | None) -> Decimal:
    if value is None:
        return Decimal(0)
    return value if isinstance(value, Decimal) else Decimal(str(value))


@dataclass(frozen=True, slots=True)
class WaterfallPart:
    name: str
    title: str
    description: str
    tokens: int
    cost: Decimal
    start_fraction: float
    """Where the part's bar starts, as a fraction of the whole cost."""
    fraction: float

    @property
    def per_1k(self) -> Decimal | None:
        """The effective price per 1,000 tokens of this kind."""
        return self.cost * 1000 / self.tokens if self.tokens else None


@dataclass(frozen=True, slots=True)
class Waterfall:
    parts: list[WaterfallPart]
    unapportioned: Decimal
    """Cost of deployments without a known price: in the total, in no part."""
    total_cost: Decimal
    total_tokens: int

    @property
    def empty(self) -> bool:
        return not self.total_tokens and not self.total_cost


def apportion(
    prompt: int, cached: int, completion: int, cost: Decimal, price: ModelPrice | None
) -> tuple[Decimal, Decimal, Decimal] | None:
    """`cost` split into (input, cached input, output) by list-price weights; None when the
    price is unknown or weighs nothing."""
    if price is None:
        return None
    cached = min(cached, prompt)
    cached_price = price.cached_input_per_million
    if cached_price is None:
        cached_price = price.input_per_million
    weights = (
        (prompt - cached) * price.input_per_million,
        cached * cached_price,
        completion * price.output_per_million,
    )
    whole = sum(weights, Decimal(0))
    if whole <= 0:
        return None
    input_cost = cost * weights[0] / whole
    cached_cost = cost * weights[1] / whole
    return input_cost, cached_cost, cost - input_cost - cached_cost


async def read_waterfall(run: Run, base: AnalyticsQuery, config: GatewayConfig | None) -> Waterfall:
    """`base`: the range, step and filters; each measure is read by deployment."""
    filters = dict(base.filters)
    filters["cache_hit"] = ("false",)
    queries = [
        replace(base, metric=measure, group_by=("deployment",), filters=filters, top=None)
        for measure in TOKEN_MEASURES
    ]
    results = await asyncio.gather(*(run(query) for query in queries))
    by_deployment: dict[str, list[Decimal]] = {}
    for position, result in enumerate(results):
        for series in result.series:
            sums = by_deployment.setdefault(series.group.get("deployment", ""), [Decimal(0)] * 4)
            sums[position] += _decimal(series.total)
    table = config.price_table() if config is not None else PriceTable.shipped()
    prices = deployment_prices(config)
    tokens = [0, 0, 0]
    costs = [Decimal(0), Decimal(0), Decimal(0)]
    unapportioned = Decimal(0)
    for deployment, (prompt, cached, completion, cost) in by_deployment.items():
        tokens[0] += int(prompt - min(cached, prompt))
        tokens[1] += int(min(cached, prompt))
        tokens[2] += int(completion)
        split = apportion(
            int(prompt), int(cached), int(completion), cost, price_of(deployment, prices, table)
        )
        if split is None:
            unapportioned += cost
            continue
        for position, amount in enumerate(split):
            costs[position] += amount
    total = sum(costs, unapportioned)
    parts = []
    running = Decimal(0)
    for (name, title, description), count, cost in zip(PARTS, tokens, costs, strict=True):
        parts.append(
            WaterfallPart(
                name=name,
                title=title,
                description=description,
                tokens=count,
                cost=cost,
                start_fraction=float(running / total) if total else 0.0,
                fraction=float(cost / total) if total else 0.0,
            )
        )
        running += cost
    return Waterfall(
        parts=parts, unapportioned=unapportioned, total_cost=total, total_tokens=sum(tokens)
    )


@dataclass(frozen=True, slots=True)
class CacheReturn:
    hits: int
    requests: int
    saved: Decimal
    spent: Decimal
    saved_series: AnalyticsResult
    spent_series: AnalyticsResult

    @property
    def hit_rate(self) -> float | None:
        return self.hits / self.requests if self.requests else None

    @property
    def without_cache(self) -> Decimal:
        return self.spent + self.saved

    @property
    def saved_fraction(self) -> float | None:
        """Saved as a part of what the bill would have been without the cache."""
        whole = self.without_cache
        return float(self.saved / whole) if whole else None

    @property
    def saved_per_spent(self) -> float | None:
        return float(self.saved / self.spent) if self.spent else None

    @property
    def empty(self) -> bool:
        return not self.requests


async def read_cache_return(run: Run, base: AnalyticsQuery) -> CacheReturn:
    def asking(metric: str) -> AnalyticsQuery:
        return replace(base, metric=metric, group_by=(), top=None)

    hits, requests, saved, spent = await asyncio.gather(
        run(asking("cache_hits")),
        run(asking("requests")),
        run(asking("cost_saved")),
        run(asking("cost")),
    )
    return CacheReturn(
        hits=int(hits.total or 0),
        requests=int(requests.total or 0),
        saved=_decimal(saved.total),
        spent=_decimal(spent.total),
        saved_series=saved,
        spent_series=spent,
    )

"""The providers table: one row per public model and the deployment that served it, with its price
and what it did over the page's range — the table a user reads to choose where to send traffic.

Numbers come from the roll-ups grouped by (model, deployment), one query per measure, all over
the same range and filters. Prices per 1,000 tokens are the deployment's own (`price:` in the
config), else the price table's for the deployment's provider model (config `prices` on top of
the shipped table). A configured deployment without traffic in the range is listed too (when
the page is not filtered), so its price can be compared with the others'. Answers from the
gateway's cache and requests refused before any provider call have no deployment to compare and
are left out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

from gateway.config.file import GatewayConfig
from providers.pricing import ModelPrice, PriceTable
from telemetry.analytics import AnalyticsQuery, AnalyticsResult

MEASURES: Final = (
    "requests",
    "error_rate",
    "latency_p50",
    "latency_p95",
    "ttft_p50",
    "cost",
)
CACHE_DEPLOYMENT: Final = "cache"
"""The deployment the roll-ups record for answers from the gateway's cache."""
_THOUSAND: Final = Decimal(1000)


@dataclass(frozen=True, slots=True)
class ProviderRow:
    model: str
    deployment: str
    provider: str
    input_per_1k: Decimal | None
    output_per_1k: Decimal | None
    values: dict[str, float | Decimal | None] = field(default_factory=dict)
    configured: bool = True

    def value(self, measure: str) -> float | Decimal | None:
        return self.values.get(measure)


def deployment_prices(config: GatewayConfig | None) -> dict[str, ModelPrice | None]:
    """Each configured deployment id's price."""
    if config is None:
        return {}
    table = config.price_table()
    return {
        deployment.id: deployment.price_in(table)
        for route in config.models.values()
        for deployment in route.deployments
    }


def price_of(
    deployment: str, prices: dict[str, ModelPrice | None], table: PriceTable
) -> ModelPrice | None:
    if deployment in prices:
        return prices[deployment]
    if deployment in ("", CACHE_DEPLOYMENT):
        return None
    return table.lookup(deployment)


def _per_1k(price: Decimal | None) -> Decimal | None:
    return None if price is None else price / _THOUSAND


def _provider_of(deployment: str) -> str:
    provider, slash, _ = deployment.partition("/")
    return provider if slash else ""


async def read_providers(
    run: Callable[[AnalyticsQuery], Awaitable[AnalyticsResult]],
    base: AnalyticsQuery,
    config: GatewayConfig | None,
    *,
    include_idle: bool,
) -> list[ProviderRow]:
    """`base`: the range, step and filters; its metric and grouping are replaced."""
    queries = [
        AnalyticsQuery(
            metric=measure,
            start=base.start,
            end=base.end,
            step=base.step,
            group_by=("model", "deployment"),
            filters=base.filters,
        )
        for measure in MEASURES
    ]
    results = await asyncio.gather(*(run(query) for query in queries))
    table = config.price_table() if config is not None else PriceTable.shipped()
    prices = deployment_prices(config)
    found: dict[tuple[str, str], dict[str, float | Decimal | None]] = {}
    for measure, result in zip(MEASURES, results, strict=True):
        for series in result.series:
            key = (series.group.get("model", ""), series.group.get("deployment", ""))
            found.setdefault(key, {})[measure] = series.total
    if include_idle and config is not None:
        for name, route in config.models.items():
            for configured in route.deployments:
                found.setdefault((name, configured.id), {})
    rows = []
    for (model, deployment), values in found.items():
        if deployment in ("", CACHE_DEPLOYMENT):
            continue
        price = price_of(deployment, prices, table)
        rows.append(
            ProviderRow(
                model=model,
                deployment=deployment,
                provider=_provider_of(deployment),
                input_per_1k=_per_1k(price.input_per_million if price else None),
                output_per_1k=_per_1k(price.output_per_million if price else None),
                values=values,
                configured=deployment in prices,
            )
        )
    rows.sort(key=lambda row: (-float(row.values.get("requests") or 0), row.model, row.deployment))
    return rows


def measure_units() -> Sequence[tuple[str, str, str]]:
    """(measure, column title, unit) in the table's order."""
    return (
        ("requests", "Requests", "count"),
        ("error_rate", "Error rate", "percent"),
        ("latency_p50", "Latency p50", "ms"),
        ("latency_p95", "Latency p95", "ms"),
        ("ttft_p50", "TTFT p50", "ms"),
        ("cost", "Cost", "usd"),
    )

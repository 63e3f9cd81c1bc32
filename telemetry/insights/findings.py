"""Every insight of one scope and range, read one after the other (each is a few bounded
statements; one at a time keeps the load on the database small next to the gateway's)."""

from __future__ import annotations

from dataclasses import dataclass

from providers.pricing import PriceTable
from telemetry.insights.cheaper_models import (
    DEFAULT_MARGIN,
    DEFAULT_MIN_SAMPLES,
    CheaperModels,
    find_cheaper_models,
)
from telemetry.insights.errors import Errors, ErrorSummariser, find_errors
from telemetry.insights.max_tokens import MaxTokens, find_max_tokens
from telemetry.insights.repeats import Repeats, find_repeats
from telemetry.insights.scope import InsightScope


@dataclass(frozen=True, slots=True)
class Insights:
    scope: InsightScope
    cheaper_models: CheaperModels
    repeats: Repeats
    max_tokens: MaxTokens
    errors: Errors


async def read_insights(
    scope: InsightScope,
    prices: PriceTable,
    *,
    margin: float = DEFAULT_MARGIN,
    min_samples: int = DEFAULT_MIN_SAMPLES,
    summarise_errors: ErrorSummariser | None = None,
) -> Insights:
    return Insights(
        scope=scope,
        cheaper_models=await find_cheaper_models(
            scope, prices, margin=margin, min_samples=min_samples
        ),
        repeats=await find_repeats(scope),
        max_tokens=await find_max_tokens(scope),
        errors=await find_errors(scope, summarise=summarise_errors),
    )

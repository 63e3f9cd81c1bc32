"""A recorded history for the analytics API tests, and the raw rows it left, read back so that
expected numbers come from traces and interactions, never from the roll-ups under test.

The history is the search corpus (two workspaces, three keys, tags, rules, guardrail findings,
retries, denials, all within an hour) plus a few hundred requests spread over three days with
latencies drawn from a wide distribution, so that steps, grains and percentiles have something
to measure.
"""

from __future__ import annotations

import asyncio
import math
import random
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from telemetry.db import create_engine
from telemetry.schema import (
    DEFAULT_WORKSPACE_ID,
    ROLLUP_LATENCY_BOUNDS_MS,
    ai_interactions,
    traces,
)
from telemetry.writers import BatchWriter
from tests.telemetry import make_bundle
from tests.telemetry.search_corpus import Corpus, make_corpus

SPREAD_START = datetime(2024, 3, 2, tzinfo=UTC)
SPREAD_DAYS = 3
FIRST = datetime(2024, 3, 1, tzinfo=UTC)
"""Every request of the history falls between FIRST and LAST."""
LAST = datetime(2024, 3, 6, tzinfo=UTC)
SPREAD_MODELS = {"gpt-4o": "openai", "gpt-4o-mini": "openai", "claude-3-5": "anthropic"}


@dataclass
class History:
    corpus: Corpus
    traces: list[dict[str, Any]]
    interactions: list[dict[str, Any]]

    def requests(self, where: Callable[[dict[str, Any]], bool] = lambda t: True) -> int:
        return sum(1 for trace in self.traces if where(trace))

    def count_by(self, column: str) -> dict[Any, int]:
        """Requests per value of a trace column."""
        return dict(Counter(trace[column] for trace in self.traces))

    def trace_ids(self, where: Callable[[dict[str, Any]], bool]) -> set[str]:
        return {trace["trace_id"] for trace in self.traces if where(trace)}

    def interaction_sum(
        self, column: str, where: Callable[[dict[str, Any]], bool] = lambda t: True
    ) -> Any:
        chosen = self.trace_ids(where)
        values = [i[column] for i in self.interactions if i["trace_id"] in chosen]
        start: Any = Decimal(0) if column == "cost_usd" else 0
        return sum((value for value in values if value is not None), start)


async def _spread(engine: Any, corpus: Corpus, count: int, seed: int) -> None:
    chooser = random.Random(seed)
    owners = [
        (DEFAULT_WORKSPACE_ID if name != "search-key-three" else corpus.other_workspace, key_id)
        for key_id, name in sorted(corpus.keys.items(), key=lambda item: item[1])
    ]
    seconds = SPREAD_DAYS * 86400
    bundles = []
    for _ in range(count):
        workspace, key_id = chooser.choice(owners)
        model = chooser.choice(sorted(SPREAD_MODELS))
        priced = chooser.random() < 0.9
        bundles.append(
            make_bundle(
                started_at=SPREAD_START.timestamp() + chooser.uniform(0, seconds),
                latency_ms=min(chooser.lognormvariate(math.log(400), 1.2), 250_000.0),
                cost=Decimal(chooser.randint(1, 90_000)).scaleb(-8) if priced else None,
                status=chooser.choice(("ok", "ok", "ok", "error")),
                prompt_tokens=chooser.randint(1, 4000),
                completion_tokens=chooser.randint(0, 900),
                cached_tokens=chooser.choice((None, 0, 128)),
                api_key_id=key_id,
                provider=SPREAD_MODELS[model],
                model=model,
                workspace_id=workspace,
            )
        )
    await BatchWriter(engine).write(bundles)


async def _rows(engine: Any, select: sa.Select[Any]) -> list[dict[str, Any]]:
    async with engine.connect() as connection:
        return [dict(row._mapping) for row in (await connection.execute(select)).all()]


def record_history(database_url: str, *, corpus_size: int = 90, spread: int = 300) -> History:
    async def run() -> History:
        engine = create_engine(database_url)
        try:
            corpus = await make_corpus(engine, count=corpus_size)
            await _spread(engine, corpus, spread, seed=11)
            trace_rows = await _rows(
                engine,
                sa.select(
                    traces.c.trace_id,
                    traces.c.workspace_id,
                    traces.c.api_key_id,
                    traces.c.requested_model,
                    traces.c.status,
                    traces.c.cache_hit,
                    traces.c.duration_ms,
                    traces.c.ttft_ms,
                    traces.c.tags,
                    traces.c.started_at,
                ),
            )
            interaction_rows = await _rows(
                engine,
                sa.select(
                    ai_interactions.c.trace_id,
                    ai_interactions.c.cost_usd,
                    ai_interactions.c.prompt_tokens,
                    ai_interactions.c.completion_tokens,
                    ai_interactions.c.cached_tokens,
                ),
            )
            return History(corpus, trace_rows, interaction_rows)
        finally:
            await engine.dispose()

    history = asyncio.run(run())
    for trace in history.traces:
        started = trace["started_at"]
        trace["started_at"] = started if started.tzinfo else started.replace(tzinfo=UTC)
        assert FIRST <= trace["started_at"] < LAST
    return history


def having(column: str, value: Any) -> Callable[[dict[str, Any]], bool]:
    """A trace predicate: `column` equals `value`."""
    return lambda trace: bool(trace[column] == value)


def tagged(tag: str) -> Callable[[dict[str, Any]], bool]:
    return lambda trace: tag in trace["tags"]


def exact_percentile(values: Iterable[float], fraction: float) -> float:
    """The nearest-rank percentile: the smallest value with at least `fraction` of them at or
    below it."""
    ordered = sorted(values)
    rank = max(math.ceil(fraction * len(ordered)), 1)
    return ordered[rank - 1]


def bucket_width(value: float) -> float:
    """The width of the roll-up histogram bucket `value` falls in."""
    position = bisect_left(ROLLUP_LATENCY_BOUNDS_MS, value)
    if position >= len(ROLLUP_LATENCY_BOUNDS_MS):
        return math.inf
    lower = ROLLUP_LATENCY_BOUNDS_MS[position - 1] if position else 0
    return float(ROLLUP_LATENCY_BOUNDS_MS[position] - lower)

"""Aggregating a batch's interactions into per-minute roll-up rows."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from telemetry.rollups import aggregate, latency_bucket
from telemetry.schema import ROLLUP_BUCKET_COLUMNS, ROLLUP_LATENCY_BOUNDS_MS
from tests.telemetry import MINUTE, make_bundle


@pytest.mark.parametrize(
    ("latency_ms", "bucket"),
    [
        (0.0, 0),
        (10.0, 0),
        (10.001, 1),
        (250.0, 4),
        (60_000.0, len(ROLLUP_LATENCY_BOUNDS_MS) - 1),
        (60_000.5, len(ROLLUP_LATENCY_BOUNDS_MS)),
        (float("inf"), len(ROLLUP_LATENCY_BOUNDS_MS)),
        (float("nan"), len(ROLLUP_LATENCY_BOUNDS_MS)),
        (-3.0, 0),
    ],
)
def test_latency_bucket_uses_inclusive_upper_bounds(latency_ms: float, bucket: int) -> None:
    assert latency_bucket(latency_ms) == bucket


def test_aggregate_groups_by_minute_key_provider_and_model() -> None:
    bundles = [
        make_bundle(started_at=MINUTE, cost=Decimal("0.1")),
        make_bundle(started_at=MINUTE + 59.999, cost=None, status="error", prompt_tokens=None),
        make_bundle(started_at=MINUTE + 60.0),
        make_bundle(started_at=MINUTE, provider="anthropic"),
        make_bundle(started_at=MINUTE, model="other"),
        make_bundle(started_at=MINUTE, api_key_id=None),
    ]
    rows = aggregate(i for b in bundles for i in b.interactions)
    keys = [(row["bucket_start"], row["api_key_id"], row["provider"], row["model"]) for row in rows]
    assert keys == sorted(keys)
    minute = datetime.fromtimestamp(MINUTE, UTC)
    assert len(rows) == 5
    (first,) = [
        r
        for r in rows
        if r["bucket_start"] == minute
        and (r["api_key_id"], r["provider"], r["model"]) == ("key1", "openai", "gpt-4o-mini")
    ]
    assert first["requests"] == 2
    assert first["errors"] == 1
    assert first["prompt_tokens"] == 10  # None counts as 0
    assert first["cost_usd"] == Decimal("0.1")  # unknown cost adds nothing
    assert sum(first[c] for c in ROLLUP_BUCKET_COLUMNS) == 2
    assert any(r["api_key_id"] == "" for r in rows)


def test_aggregate_of_nothing_is_empty() -> None:
    assert aggregate([]) == []

"""Summing a batch's requests into roll-up rows (minute, hour and day) and breakdown rows."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from telemetry.records import TraceBundle
from telemetry.rollups import (
    BREAKDOWN_KEY_COLUMNS,
    KEY_COLUMNS,
    OTHER,
    SUM_COLUMNS,
    TOTAL_KINDS,
    Aggregate,
    NameCaps,
    aggregate,
    aggregate_yielding,
    latency_bucket,
)
from telemetry.schema import (
    DEFAULT_WORKSPACE_ID,
    ROLLUP_BUCKET_COLUMNS,
    ROLLUP_LATENCY_BOUNDS_MS,
    ROLLUP_TTFT_BUCKET_COLUMNS,
)
from tests.telemetry import MINUTE
from tests.telemetry.request_bundles import FAILED, Attempt, Finding, request

WORKSPACE = DEFAULT_WORKSPACE_ID
OTHER_WORKSPACE = "f" * 32
BASE_DIMENSIONS: dict[str, Any] = {
    "workspace_id": WORKSPACE,
    "api_key_id": "key1",
    "source": "proxy",
    "provider": "openai",
    "model": "gpt-4o-mini",
    "served_model": "gpt-4o-mini-2024",
    "deployment": "primary",
    "status": "ok",
    "error_type": "",
    "cache_hit": False,
}
DIMENSIONS = tuple(BASE_DIMENSIONS)
LAST = len(ROLLUP_LATENCY_BOUNDS_MS)


def t(day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """A time in November 2023, UTC."""
    return datetime(2023, 11, day, hour, minute, second, tzinfo=UTC)


def at(day: int, hour: int = 0, minute: int = 0, second: int = 0) -> float:
    return t(day, hour, minute, second).timestamp()


def grain(summed: Aggregate, name: str = "minute") -> list[dict[str, Any]]:
    return [row for row in summed.rollups if row["grain"] == name]


def only(summed: Aggregate, **where: Any) -> dict[str, Any]:
    """The one minute row of `aggregate` whose columns have the given values."""
    (row,) = [r for r in grain(summed) if all(r[name] == value for name, value in where.items())]
    return row


def filled(buckets: tuple[str, ...], row: dict[str, Any]) -> dict[str, int]:
    return {name: row[name] for name in buckets if row[name]}


@pytest.mark.parametrize(
    ("latency_ms", "bucket"),
    [
        (0.0, 0),
        (1.0, 0),
        (1.001, 1),
        (250.0, ROLLUP_LATENCY_BOUNDS_MS.index(250)),
        (250.5, ROLLUP_LATENCY_BOUNDS_MS.index(300)),
        (300_000.0, LAST - 1),
        (300_000.5, LAST),
        (float("inf"), LAST),
        (float("nan"), LAST),
        (-3.0, 0),
    ],
)
def test_latency_bucket_uses_inclusive_upper_bounds(latency_ms: float, bucket: int) -> None:
    assert latency_bucket(latency_ms) == bucket


def test_bucket_columns_are_named_by_their_bounds() -> None:
    assert ROLLUP_BUCKET_COLUMNS[latency_bucket(250.0)] == "latency_le_250"
    assert ROLLUP_BUCKET_COLUMNS[LAST] == "latency_le_inf"
    assert ROLLUP_TTFT_BUCKET_COLUMNS[latency_bucket(7.0)] == "ttft_le_7"
    assert len(ROLLUP_BUCKET_COLUMNS) == len(ROLLUP_TTFT_BUCKET_COLUMNS) == LAST + 1


def test_aggregate_of_nothing_is_empty() -> None:
    assert aggregate([]) == Aggregate(rollups=[], breakdowns=[])


def test_each_dimension_makes_its_own_row() -> None:
    variants: dict[str, tuple[TraceBundle, dict[str, Any]]] = {
        "workspace": (request(workspace_id=OTHER_WORKSPACE), {"workspace_id": OTHER_WORKSPACE}),
        "no key": (request(api_key_id=None), {"api_key_id": ""}),
        "source": (request(source="otlp"), {"source": "otlp"}),
        "provider": (request(attempts=(Attempt(provider="azure"),)), {"provider": "azure"}),
        "model": (request(model="fast"), {"model": "fast"}),
        "served": (request(attempts=(Attempt(served="mini-v2"),)), {"served_model": "mini-v2"}),
        "deployment": (request(attempts=(Attempt(deployment="eu"),)), {"deployment": "eu"}),
        "error": (
            request(status="error", error_type="timeout", attempts=(FAILED,)),
            {"status": "error", "error_type": "timeout"},
        ),
        "error type": (
            request(status="error", error_type="upstream_5xx", attempts=(FAILED,)),
            {"status": "error", "error_type": "upstream_5xx"},
        ),
        "denied": (  # refused before any provider was called: no provider, no deployment
            request(status="error", error_type="invalid_api_key", attempts=()),
            {
                "status": "denied",
                "error_type": "invalid_api_key",
                "provider": "",
                "served_model": "",
                "deployment": "",
            },
        ),
        "cancelled": (
            request(status="cancelled", attempts=(Attempt(status="cancelled"),)),
            {"status": "cancelled"},
        ),
        "cache hit": (
            request(attempts=(Attempt(cache_hit=True, deployment="cache", cost=Decimal(0)),)),
            {"cache_hit": True, "deployment": "cache"},
        ),
    }
    bundles = [request(), request(), *(bundle for bundle, _ in variants.values())]
    random.Random(5).shuffle(bundles)
    summed = aggregate(bundles)

    assert KEY_COLUMNS[2:] == DIMENSIONS
    assert len(grain(summed)) == len(variants) + 1
    assert only(summed, **BASE_DIMENSIONS)["requests"] == 2
    for name, (_, changed) in variants.items():
        row = only(summed, **(BASE_DIMENSIONS | changed))
        assert row["requests"] == 1, name
        assert row["errors"] == (1 if row["status"] == "error" else 0), name
        assert row["cache_hits"] == (1 if row["cache_hit"] else 0), name
    for name in ("hour", "day"):
        assert len(grain(summed, name)) == len(variants) + 1


def test_the_answering_attempt_names_the_provider_served_model_and_deployment() -> None:
    fell_back = request(
        model="fell-back",
        attempts=(FAILED, Attempt(provider="anthropic", served="claude-3", deployment="backup")),
    )
    all_failed = request(
        model="all-failed",
        status="error",
        error_type="timeout",
        attempts=(
            FAILED,
            Attempt(
                provider="azure",
                served="gpt-eu",
                deployment="eu",
                status="error",
                prompt=None,
                completion=None,
                cost=None,
            ),
        ),
    )
    answered_first = request(
        model="answered-first",
        attempts=(Attempt(), Attempt(status="error", provider="azure", prompt=3, cost=None)),
    )  # an ok attempt followed by a failed one (a hedge lost): the ok one answered
    unanswered = request(model="refused", status="error", error_type="rate_limited", attempts=())
    unanswered.trace.provider, unanswered.trace.provider_model = "openai", "routed-to"
    summed = aggregate([fell_back, all_failed, answered_first, unanswered])

    def served(model: str) -> tuple[str, str, str]:
        row = only(summed, model=model)
        return row["provider"], row["served_model"], row["deployment"]

    assert served("fell-back") == ("anthropic", "claude-3", "backup")
    assert served("all-failed") == ("azure", "gpt-eu", "eu")
    assert served("answered-first") == ("openai", "gpt-4o-mini-2024", "primary")
    assert served("refused") == ("openai", "routed-to", "")  # the trace's own, no deployment


def test_tokens_and_cost_are_summed_over_every_attempt() -> None:
    summed = aggregate(
        [
            request(
                attempts=(
                    Attempt(
                        status="error",
                        prompt=10,
                        completion=0,
                        cost=Decimal("0.25"),
                        error_type="timeout",
                    ),
                    Attempt(prompt=20, completion=7, cached=3, cost=Decimal("0.5")),
                )
            ),
            request(attempts=(Attempt(prompt=None, completion=None, cost=Decimal("0.125")),)),
        ]
    )
    row = only(summed)
    assert row["requests"] == 2
    assert row["attempts"] == 3
    assert (row["prompt_tokens"], row["completion_tokens"], row["cached_tokens"]) == (30, 7, 3)
    assert row["cost_usd"] == Decimal("0.875")
    assert row["unpriced"] == 0


def test_an_unknown_price_counts_as_unpriced_and_adds_no_cost() -> None:
    summed = aggregate(
        [
            request(model="no-price", attempts=(Attempt(cost=None),)),
            request(
                model="partly",  # one attempt priced, the other used tokens at an unknown price
                attempts=(Attempt(status="error", cost=None, error_type="x"), Attempt()),
            ),
            request(model="priced"),
        ]
    )
    no_price = only(summed, model="no-price")
    assert (no_price["unpriced"], no_price["cost_usd"], no_price["prompt_tokens"]) == (
        1,
        Decimal(0),
        10,
    )
    partly = only(summed, model="partly")
    assert (partly["unpriced"], partly["cost_usd"]) == (1, Decimal("0.001"))
    assert only(summed, model="priced")["unpriced"] == 0


def test_a_failure_without_usage_or_a_cache_hit_is_not_unpriced() -> None:
    """A provider error that reported no tokens cost nothing (the budget settles it at 0); a
    cache hit costs nothing by definition. Neither is a request whose price is unknown."""
    summed = aggregate(
        [
            request(model="failed", status="error", error_type="timeout", attempts=(FAILED,)),
            request(model="failed", status="error", error_type="timeout", attempts=(FAILED,) * 2),
            request(
                model="cached",
                attempts=(Attempt(cache_hit=True, cost=None, cost_saved=Decimal("0.3")),),
            ),
            request(model="refused", status="error", error_type="invalid_api_key", attempts=()),
        ]
    )
    failed = only(summed, model="failed")
    assert (failed["requests"], failed["errors"], failed["attempts"]) == (2, 2, 3)
    assert failed["unpriced"] == 0 and failed["cost_usd"] == 0
    cached = only(summed, model="cached")
    assert cached["unpriced"] == 0 and cached["attempts"] == 0
    assert cached["cost_saved_usd"] == Decimal("0.3")
    assert only(summed, model="refused")["unpriced"] == 0


def test_cache_hits_count_what_they_saved_and_no_attempt() -> None:
    hit = Attempt(cache_hit=True, deployment="cache", cost=Decimal(0), cost_saved=Decimal("0.02"))
    summed = aggregate([request(attempts=(hit,)) for _ in range(3)] + [request()])
    cached = only(summed, cache_hit=True)
    assert (cached["requests"], cached["cache_hits"], cached["attempts"]) == (3, 3, 0)
    assert cached["cost_saved_usd"] == Decimal("0.06")
    assert cached["cost_usd"] == 0
    missed = only(summed, cache_hit=False)
    assert (missed["cache_hits"], missed["attempts"], missed["cost_saved_usd"]) == (0, 1, 0)


def test_retries_and_fallbacks_are_counted_from_the_decisions() -> None:
    summed = aggregate(
        [
            request(
                decisions=("retry", "retry", "fallback", "model_selection"),
                attempts=(FAILED, FAILED, Attempt(provider="anthropic")),
            ),
            request(decisions=("fallback",), attempts=(FAILED, Attempt(provider="anthropic"))),
            request(attempts=(Attempt(provider="anthropic"),)),
        ]
    )
    row = only(summed, provider="anthropic")
    assert (row["requests"], row["attempts"], row["retries"], row["fallbacks"]) == (3, 6, 2, 2)


def test_latency_is_the_requests_whole_duration() -> None:
    summed = aggregate(
        [
            request(duration_ms=250.0, attempts=(Attempt(), Attempt())),
            request(duration_ms=500.0),
            request(duration_ms=400_000.0),
        ]
    )
    row = only(summed)
    assert row["latency_ms_sum"] == pytest.approx(400_750.0)
    assert filled(ROLLUP_BUCKET_COLUMNS, row) == {
        "latency_le_250": 1,
        "latency_le_500": 1,
        "latency_le_inf": 1,
    }


def test_time_to_first_token_is_the_answering_attempts() -> None:
    summed = aggregate(
        [
            request(attempts=(Attempt(ttft_ms=250.0),)),
            request(
                attempts=(
                    Attempt(
                        status="error",
                        ttft_ms=5.0,
                        cost=None,
                        prompt=None,
                        error_type="stream_broken",
                    ),
                    Attempt(ttft_ms=38.5),
                )
            ),
            request(attempts=(Attempt(ttft_ms=None),)),  # not streamed
            request(
                model="failed",
                status="error",
                error_type="stream_broken",
                attempts=(Attempt(status="error", ttft_ms=9.0, cost=None, prompt=None),),
            ),
        ]
    )
    row = only(summed, model="gpt-4o-mini")
    assert (row["ttft_count"], row["ttft_ms_sum"]) == (2, pytest.approx(288.5))
    assert filled(ROLLUP_TTFT_BUCKET_COLUMNS, row) == {"ttft_le_250": 1, "ttft_le_40": 1}
    failed = only(summed, model="failed")
    assert failed["ttft_count"] == 0
    assert not filled(ROLLUP_TTFT_BUCKET_COLUMNS, failed)


def test_overhead_is_summed_where_it_was_measured() -> None:
    summed = aggregate(
        [request(overhead_ms=0.25), request(overhead_ms=0.5), request(overhead_ms=None)]
    )
    row = only(summed)
    assert (row["requests"], row["overhead_count"]) == (3, 2)
    assert row["overhead_ms_sum"] == pytest.approx(0.75)


def test_every_request_counts_once_in_each_grain_at_its_buckets_start() -> None:
    bundles = [
        request(at=at(14, 22, 34, 56) + 0.5),
        request(at=at(14, 22, 44, 5)),
        request(at=at(14, 23, 59, 59) + 0.999),
        request(at=at(15, 0, 0, 0)),
    ]
    summed = aggregate(bundles)
    starts = {
        name: {row["bucket_start"]: row["requests"] for row in grain(summed, name)}
        for name in ("minute", "hour", "day")
    }

    assert starts["minute"] == {
        t(14, 22, 34): 1,
        t(14, 22, 44): 1,
        t(14, 23, 59): 1,
        t(15, 0, 0): 1,
    }
    assert starts["hour"] == {t(14, 22): 2, t(14, 23): 1, t(15): 1}
    assert starts["day"] == {t(14): 3, t(15): 1}
    assert all(row["bucket_start"].tzinfo is not None for row in summed.rollups)
    assert {row["grain"] for row in summed.rollups} == {"minute", "hour", "day"}
    for name in SUM_COLUMNS:
        totals = {g: sum(row[name] for row in grain(summed, g)) for g in ("minute", "hour", "day")}
        assert totals["minute"] == totals["hour"] == totals["day"], name


def breakdowns(
    summed: Aggregate, name: str = "hour"
) -> dict[tuple[str, str, str], tuple[Any, ...]]:
    return {
        (row["kind"], row["name"], row["detail"]): (
            row["events"],
            row["errors"],
            row["cost_usd"],
            row["tokens"],
        )
        for row in summed.breakdowns
        if row["grain"] == name
    }


def test_breakdowns_by_tag_end_user_rule_guardrail_and_entity() -> None:
    answered = request(
        tags=("prod", "search", "prod"),
        end_user="alice",
        rules=("r1", "r2"),
        findings=(Finding("pii", "mask", {"EMAIL": 2, "PHONE": 1}),),
        attempts=(Attempt(prompt=10, completion=5, cost=Decimal("0.25")),),
    )
    failed = request(
        tags=("prod",),
        end_user="bob",
        rules=("r1",),
        status="error",
        error_type="timeout",
        attempts=(FAILED,),
        findings=(Finding("pii", "block", {"EMAIL": 1}), Finding("injection", "log")),
    )
    plain = request()
    summed = aggregate([answered, failed, plain])
    shared = (Decimal("0.25"), 15)
    expected = {
        ("tag", "prod", ""): (2, 1, *shared),
        ("tag", "search", ""): (1, 0, *shared),
        ("end_user", "alice", ""): (1, 0, *shared),
        ("end_user", "bob", ""): (1, 1, Decimal(0), 0),
        ("rule", "r1", ""): (2, 1, *shared),
        ("rule", "r2", ""): (1, 0, *shared),
        ("guardrail", "pii", "mask"): (1, 0, Decimal(0), 0),
        ("guardrail", "pii", "block"): (1, 0, Decimal(0), 0),
        ("guardrail", "injection", "log"): (1, 0, Decimal(0), 0),
        ("entity", "pii", "EMAIL"): (3, 0, Decimal(0), 0),
        ("entity", "pii", "PHONE"): (1, 0, Decimal(0), 0),
        ("tag_total", "", ""): (3, 1, Decimal("0.50"), 30),
        ("end_user_total", "", ""): (2, 1, *shared),
    }
    assert breakdowns(summed, "hour") == expected
    assert breakdowns(summed, "day") == expected
    assert {row["grain"] for row in summed.breakdowns} == {"hour", "day"}
    assert {(row["bucket_start"], row["api_key_id"]) for row in summed.breakdowns} == {
        (t(14, 22), "key1"),
        (t(14), "key1"),
    }
    assert aggregate([plain]).breakdowns == []


def named(summed: Aggregate) -> list[dict[str, Any]]:
    """The breakdown rows of names (without the tags' and end users' totals)."""
    return [row for row in summed.breakdowns if row["kind"] not in TOTAL_KINDS.values()]


def test_name_caps_keep_the_first_names_of_a_workspace_and_day() -> None:
    caps = NameCaps(limits={"tag": 2, "end_user": 1})
    day = MINUTE
    first = aggregate(
        [
            request(at=day, tags=("a", "b"), end_user="u1"),
            request(at=day + 1, tags=("c",), end_user="u2"),
            request(at=day + 2, tags=("a", "d"), end_user="u1"),
            request(at=day + 3, tags=("c",), end_user="u3", workspace_id=OTHER_WORKSPACE),
        ],
        caps,
    )
    mine = {
        (row["workspace_id"] == WORKSPACE, row["kind"], row["name"]): row["events"]
        for row in first.breakdowns
        if row["grain"] == "hour"
    }
    assert mine == {
        (True, "tag", "a"): 2,
        (True, "tag", "b"): 1,
        (True, "tag", OTHER): 2,  # c and d
        (True, "end_user", "u1"): 2,
        (True, "end_user", OTHER): 1,
        (False, "tag", "c"): 1,  # another workspace keeps its own names
        (False, "end_user", "u3"): 1,
        (True, "tag_total", ""): 5,  # every name, kept or not
        (True, "end_user_total", ""): 3,
        (False, "tag_total", ""): 1,
        (False, "end_user_total", ""): 1,
    }
    later = aggregate([request(at=day + 60, tags=("b", "e"))], caps)  # the caps hold on
    assert {(r["name"], r["events"]) for r in named(later) if r["grain"] == "hour"} == {
        ("b", 1),
        (OTHER, 1),
    }
    next_day = aggregate([request(at=day + 86_400, tags=("e", "f", "g"))], caps)
    assert {r["name"] for r in named(next_day)} == {"e", "f", OTHER}


def test_a_late_request_is_named_by_its_own_days_caps() -> None:
    """A request of yesterday written after today's first (a spill file replayed, requests
    finishing out of order at midnight) keeps yesterday's names and leaves today's alone."""
    caps = NameCaps(limits={"tag": 1})
    yesterday, today = MINUTE, MINUTE + 86_400
    aggregate([request(at=yesterday, tags=("old",))], caps)
    aggregate([request(at=today, tags=("new",))], caps)
    late = aggregate(
        [request(at=yesterday + 5, tags=("old",)), request(at=yesterday, tags=("x",))], caps
    )
    assert {r["name"]: r["events"] for r in named(late) if r["grain"] == "day"} == {
        "old": 1,
        OTHER: 1,
    }
    again = aggregate([request(at=today + 5, tags=("new", "x"))], caps)
    assert {r["name"] for r in named(again)} == {"new", OTHER}


def test_long_names_are_cut_to_their_columns() -> None:
    summed = aggregate(
        [request(tags=("t" * 300,), end_user="u" * 300, model="m" * 300, error_type="e" * 100)]
    )
    row = grain(summed)[0]
    assert len(row["model"]) == 256 and len(row["error_type"]) == 64
    assert {len(r["name"]) for r in named(summed)} == {256}


def test_rows_come_sorted_by_key_whatever_the_order_of_the_batch() -> None:
    bundles = [
        request(
            at=MINUTE + n * 37.0,
            workspace_id=(WORKSPACE, OTHER_WORKSPACE)[n % 2],
            api_key_id=(None, "key1", "key2")[n % 3],
            model=("b", "a", "c")[n % 3],
            status=("ok", "error")[n % 2],
            attempts=(Attempt(),) if n % 2 == 0 else (FAILED,),
            tags=(f"tag{n % 4}",),
            end_user=f"user{n % 5}",
        )
        for n in range(60)
    ]
    summed = aggregate(bundles)
    keys = [tuple(row[c] for c in KEY_COLUMNS) for row in summed.rollups]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    breakdown_keys = [tuple(row[c] for c in BREAKDOWN_KEY_COLUMNS) for row in summed.breakdowns]
    assert breakdown_keys == sorted(breakdown_keys)
    assert len(set(breakdown_keys)) == len(breakdown_keys)
    for seed in range(3):
        shuffled = bundles[:]
        random.Random(seed).shuffle(shuffled)
        assert aggregate(shuffled) == summed


@pytest.mark.parametrize("fold", [True, False])
async def test_aggregating_in_chunks_sums_what_aggregating_at_once_does(fold: bool) -> None:
    draw = random.Random(20)
    bundles = [
        request(
            at=MINUTE + draw.uniform(0, 7200),
            model=draw.choice(["gpt-4o-mini", "fast"]),
            status=draw.choice(["ok", "ok", "error"]),
            tags=draw.choice([(), ("prod",), ("prod", "eu")]),
            end_user=draw.choice([None, "u1", "u2"]),
            duration_ms=draw.uniform(10, 3000),
        )
        for _ in range(300)
    ]
    at_once = aggregate(bundles, NameCaps(), fold=fold)
    in_chunks = await aggregate_yielding(bundles, NameCaps(), fold=fold, chunk=7)
    assert in_chunks == at_once
    assert at_once.rollups and at_once.breakdowns

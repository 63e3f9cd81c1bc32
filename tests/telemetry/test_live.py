"""The live feed's hub in process: summaries, filters, per-viewer queues, rates and statistics."""

from __future__ import annotations

import asyncio
import math
import random
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from gateway.config.settings import SERVE_WORKERS_VARIABLE, serve_workers
from telemetry import metrics
from telemetry.db import create_engine
from telemetry.ids import uuid7_hex
from telemetry.live import PENDING_LIMIT, LiveHub, TooManyViewers
from telemetry.live_filter import LiveFilter, outcome
from telemetry.live_stats import RollingStats
from telemetry.live_summary import LiveTrace, summarise
from telemetry.recorder import Recorder
from telemetry.records import DecisionRecord, GuardrailViolationRecord, TraceBundle
from tests.telemetry import MINUTE, make_bundle


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _summaries_made() -> float:
    return metrics.live_summaries_total._value.get()


def _violation(bundle: TraceBundle, guardrail: str, action: str) -> GuardrailViolationRecord:
    return GuardrailViolationRecord(
        violation_id=uuid7_hex(),
        trace_id=bundle.trace.trace_id,
        workspace_id=bundle.trace.workspace_id,
        guardrail=guardrail,
        kind="pii",
        direction="input",
        action=action,
        entities={"EMAIL": 1},
        score=1.0,
        latency_us=3.0,
        created_at=MINUTE,
    )


def _rule_match(bundle: TraceBundle, rule_id: str | None) -> DecisionRecord:
    return DecisionRecord(
        decision_id=uuid7_hex(),
        trace_id=bundle.trace.trace_id,
        workspace_id=bundle.trace.workspace_id,
        sequence=1,
        type="rule_evaluation",
        component="rules",
        rule_id=rule_id,
        created_at=MINUTE,
    )


def _retried_bundle() -> TraceBundle:
    """A request whose first attempt failed and whose second, on a fallback model, answered."""
    failed = make_bundle(status="error", cost=None, prompt_tokens=None, completion_tokens=None)
    served = make_bundle(cost=Decimal("0.0000125"), model="fallback-model", prompt_tokens=7)
    first = msgspec.structs.replace(
        failed.interactions[0], trace_id=served.trace.trace_id, ttft_ms=None, deployment="first"
    )
    second = msgspec.structs.replace(
        served.interactions[0],
        attempt=2,
        deployment="second",
        prompt=[{"role": "user", "content": "confidential words"}],
        response={"content": "confidential answer"},
    )
    bundle = msgspec.structs.replace(served, interactions=[first, second])
    bundle.trace.requested_model = "gpt-4o-mini"
    bundle.decisions.extend([_rule_match(bundle, None), _rule_match(bundle, "route-cheap")])
    bundle.violations.extend(
        [
            _violation(bundle, "pii", "log"),
            _violation(bundle, "emails", "mask"),
            _violation(bundle, "pii", "log"),
        ]
    )
    return bundle


def test_a_summary_reads_the_bundle_like_the_trace_columns() -> None:
    bundle = _retried_bundle()
    trace = summarise(bundle, "host:1")
    assert trace.trace_id == bundle.trace.trace_id
    assert trace.worker == "host:1"
    assert trace.time.endswith("Z") and trace.time.startswith("2023-11-14T22:14:01.4")
    assert (trace.requested_model, trace.served_model) == ("gpt-4o-mini", "fallback-model")
    assert trace.deployment == "second"
    assert trace.attempts == 2
    assert (trace.prompt_tokens, trace.completion_tokens) == (7, 5)  # the failed one had none
    assert trace.cost_usd == "0.0000125"
    assert trace.ttft_ms == 12.5
    assert trace.rules_matched == ["route-cheap"]  # the summary decision has no rule id
    assert trace.guardrail_action == "mask"
    assert trace.guardrails_triggered == ["pii", "emails"]
    assert trace.key_name is None
    # No content, tags or metadata reach the feed.
    encoded = msgspec.json.encode(trace)
    assert b"confidential" not in encoded
    assert b"search" not in encoded and b"prod" not in encoded


def test_a_summary_without_attempts_or_prices() -> None:
    bundle = msgspec.structs.replace(make_bundle(), interactions=[], decisions=[])
    trace = summarise(bundle, "w")
    assert trace.served_model is None and trace.deployment is None
    assert trace.cost_usd is None and trace.total_tokens is None and trace.ttft_ms is None
    assert trace.cache_hit is False and trace.attempts == 0
    free = summarise(make_bundle(cost=Decimal("0E-10")), "w")
    assert free.cost_usd == "0"


def _trace(**changes: object) -> LiveTrace:
    return msgspec.structs.replace(summarise(make_bundle(), "w"), **changes)


def test_filters() -> None:
    trace = _trace(
        workspace_id="ws1", api_key_id="k1", http_status=200, rules_matched=["r"], end_user="u"
    )
    assert LiveFilter().matches(trace)
    assert LiveFilter(workspace_id="ws1", key_ids=frozenset({"k1"})).matches(trace)
    assert not LiveFilter(workspace_id="ws2").matches(trace)
    assert LiveFilter(model="gpt-4o-mini-2024").matches(trace)  # the provider's model name
    assert not LiveFilter(model="gpt-4o").matches(trace)
    assert LiveFilter(min_duration_ms=100).matches(trace)
    assert not LiveFilter(min_duration_ms=1000).matches(trace)
    assert LiveFilter(rule="r", end_user="u", cache_hit=False, stream=False).matches(trace)
    assert not LiveFilter(guardrail="pii").matches(trace)
    denied = _trace(status="error", http_status=429)
    failed = _trace(status="error", http_status=502)
    assert (outcome(denied), outcome(failed), outcome(trace)) == ("denied", "error", "ok")
    assert LiveFilter(statuses=frozenset({"denied"})).matches(denied)
    assert not LiveFilter(statuses=frozenset({"denied"})).matches(failed)
    assert LiveFilter(statuses=frozenset({"error"})).matches(denied)
    assert not LiveFilter(statuses=frozenset({"error", "cancelled"})).matches(trace)


def test_rolling_statistics_over_the_last_minute() -> None:
    stats = RollingStats(started=0.0)
    generator = random.Random(7)
    durations = [generator.uniform(1, 1000) for _ in range(2000)]
    for index, duration in enumerate(durations):
        stats.add(index * 0.01, duration, error=index % 10 == 0)
    figures = stats.snapshot(20.0)
    exact = sorted(durations)[math.ceil(0.95 * len(durations)) - 1]
    assert figures["requests"] == 2000 and figures["errors"] == 200
    assert figures["window_seconds"] == 20.0
    assert figures["requests_per_second"] == 100.0
    assert figures["error_rate"] == 0.1
    assert abs(figures["p95_ms"] - exact) / exact < 0.03
    # Later, only the last 60 one-second buckets count: seconds 11 to 70.
    later = stats.snapshot(70.0)
    assert later["requests"] == 900 and later["window_seconds"] == 60.0
    assert stats.snapshot(200.0) == {
        "window_seconds": 60.0,
        "requests": 0,
        "requests_per_second": 0.0,
        "errors": 0,
        "error_rate": 0.0,
        "p95_ms": None,
        "not_shown": 0,
    }


async def test_nobody_watching_costs_the_recorder_one_read(tmp_path: Path) -> None:
    hub = LiveHub(worker="w")
    hub.start()
    engine = create_engine(f"sqlite:///{tmp_path / 'unused.db'}")
    recorder = Recorder(engine, live=hub)
    before = _summaries_made()
    assert hub.watched is False
    recorder.record(make_bundle())
    assert hub._pending == []
    await asyncio.sleep(0)
    assert _summaries_made() == before

    viewer = hub.attach(LiveFilter())
    assert hub.watched is True
    recorder.record(make_bundle())
    await asyncio.sleep(0)
    assert len(await viewer.next_batch(0.5)) == 1
    assert _summaries_made() == before + 1

    hub.detach(viewer)
    assert hub.watched is False
    recorder.record(make_bundle())
    await asyncio.sleep(0)
    assert _summaries_made() == before + 1
    await engine.dispose()


async def test_each_viewer_gets_what_its_filter_and_workspace_allow() -> None:
    hub = LiveHub(worker="w")
    hub.start()
    everything = hub.attach(LiveFilter())
    mine = hub.attach(LiveFilter(workspace_id="ws-a"))
    errors_only = hub.attach(LiveFilter(statuses=frozenset({"error"})))
    bundles = [
        make_bundle(workspace_id="ws-a"),
        make_bundle(workspace_id="ws-b"),
        make_bundle(workspace_id="ws-b", status="error"),
    ]
    for bundle in bundles:
        hub.publish(bundle)
    batch = await everything.next_batch(1.0)
    assert [t.trace_id for t in batch] == [b.trace.trace_id for b in bundles]
    assert [t.workspace_id for t in await mine.next_batch(0)] == ["ws-a"]
    assert [t.status for t in await errors_only.next_batch(0)] == ["error"]
    assert everything.stats.snapshot(hub._clock())["requests"] == 3
    for viewer in (everything, mine, errors_only):
        hub.detach(viewer)


async def test_a_viewer_that_falls_behind_is_dropped_and_held_no_more() -> None:
    hub = LiveHub(worker="w", viewer_queue=3)
    hub.start()
    slow = hub.attach(LiveFilter())
    reading = hub.attach(LiveFilter())
    dropped_before = metrics.live_viewers_dropped_total._value.get()
    received = 0
    for _ in range(10):
        hub.publish(make_bundle())
        await asyncio.sleep(0)
        received += len(await reading.next_batch(0))
    assert received == 10
    assert slow.ended == "dropped" and slow.queued == 0
    assert hub.viewers == 1
    assert metrics.live_viewers_dropped_total._value.get() == dropped_before + 1
    assert await slow.next_batch(5.0) == []  # at once: the viewer has ended
    hub.close()
    assert reading.ended == "shutdown" and hub.viewers == 0 and not hub.watched


async def test_rows_past_the_rate_are_counted_not_sent() -> None:
    clock = Clock()
    hub = LiveHub(worker="w", rows_per_second=2, clock=clock)
    hub.start()
    viewer = hub.attach(LiveFilter())
    for _ in range(5):
        hub.publish(make_bundle())
    await asyncio.sleep(0)
    assert len(await viewer.next_batch(0)) == 2
    clock.now += 1.0  # a second later two more may go
    for _ in range(5):
        hub.publish(make_bundle())
    await asyncio.sleep(0)
    assert len(await viewer.next_batch(0)) == 2
    figures = viewer.stats.snapshot(clock.now)
    assert figures["requests"] == 10 and figures["not_shown"] == 6
    hub.detach(viewer)


async def test_limits_on_viewers_and_on_waiting_bundles() -> None:
    hub = LiveHub(worker="w", max_viewers=1)
    hub.start()
    viewer = hub.attach(LiveFilter())
    with pytest.raises(TooManyViewers):
        hub.attach(LiveFilter())
    for _ in range(PENDING_LIMIT + 50):
        hub.publish(make_bundle(workspace_id="elsewhere"))
    assert len(hub._pending) == PENDING_LIMIT
    await asyncio.sleep(0)
    assert hub._pending == []
    hub.detach(viewer)


async def test_a_bundle_that_cannot_be_summarised_is_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hub = LiveHub(worker="w")
    hub.start()
    viewer = hub.attach(LiveFilter())
    broken = make_bundle()
    broken.interactions[0].cost_usd = "not money"  # type: ignore[assignment]
    hub.publish(broken)
    hub.publish(make_bundle())
    hub.publish(broken)
    await asyncio.sleep(0)
    assert len(await viewer.next_batch(0)) == 1
    assert caplog.text.count("could not summarise") == 1
    hub.detach(viewer)


def test_a_feed_is_complete_with_one_worker_or_shared_ones() -> None:
    assert LiveHub(worker="w").complete is True
    several = LiveHub(worker="w", workers=2)
    assert several.complete is False and several.shared is False
    assert serve_workers({SERVE_WORKERS_VARIABLE: "4"}) == 4
    assert serve_workers({SERVE_WORKERS_VARIABLE: "x"}) == serve_workers({}) == 1

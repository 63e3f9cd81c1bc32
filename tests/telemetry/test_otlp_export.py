"""The OTLP exporter hung off a real recorder (SQLite and Postgres) and sending to a real local
receiver that decodes the protobuf: what arrives, retries, a dead collector, a full queue,
sampling, refusals and partial successes."""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.ids import uuid7_hex
from telemetry.otlp_export import OtlpExporter
from telemetry.otlp_spans import ProviderInfo, SpanEncoder, sampled
from telemetry.recorder import Recorder
from telemetry.records import TraceBundle
from tests.otlp_receiver import Answer, OtlpReceiver, attributes_of
from tests.ports import closed_port
from tests.telemetry import count
from tests.telemetry.otlp_bundles import proxied

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


class CountingObserver:
    def __init__(self) -> None:
        self.exported_spans = 0
        self.dropped_by: dict[str, int] = {}
        self.failures: list[str] = []
        self.depths: list[int] = []

    def exported(self, spans: int) -> None:
        self.exported_spans += spans

    def dropped(self, reason: str, spans: int) -> None:
        self.dropped_by[reason] = self.dropped_by.get(reason, 0) + spans

    def failed(self, reason: str) -> None:
        self.failures.append(reason)

    def queue_depth(self, depth: int) -> None:
        self.depths.append(depth)


def _exporter(url: str, **options: Any) -> OtlpExporter:
    encoder = SpanEncoder(
        service_name="steerway-test",
        providers={"mock": ProviderInfo(gen_ai_name="openai", address="127.0.0.1", port=9)},
    )
    options.setdefault("flush_interval", 0.01)
    options.setdefault("first_backoff", 0.01)
    return OtlpExporter(encoder, url=f"{url}/v1/traces", **options)


def _spans(bundles: list[TraceBundle]) -> int:
    return sum(len(b.spans) for b in bundles)


async def test_every_bundle_the_writer_takes_is_exported_with_headers_and_gzip(
    engine: AsyncEngine,
) -> None:
    token = "otlp-" + secrets.token_hex(8)
    with OtlpReceiver() as receiver:
        exporter = _exporter(receiver.url, headers={"authorization": f"Bearer {token}"})
        recorder = Recorder(engine, flush_interval=0.01, also_to=exporter)
        await exporter.start()
        await recorder.start()
        bundles = [
            proxied(),
            proxied(traceparent=f"00-{CALLER_TRACE}-{CALLER_SPAN}-01", rule="cheap"),
            proxied(failed=True),
        ]
        for bundle in bundles:
            assert recorder.record(bundle)
        await recorder.flush()
        await exporter.flush()
        await recorder.stop()
        await exporter.stop()

        assert await count(engine, "traces") == 3
        assert await count(engine, "spans") == _spans(bundles)
        (sent,) = receiver.received
        assert sent.path == "/v1/traces"
        assert sent.headers["authorization"] == f"Bearer {token}"
        assert sent.headers["content-encoding"] == "gzip"
        assert sent.headers["content-type"] == "application/x-protobuf"
        got = receiver.spans()
        assert len(got) == _spans(bundles)
        resource = got[0][0]
        assert resource["service.name"] == "steerway-test"
        assert resource["service.version"] and resource["service.instance.id"]

    by_id = {span.span_id.hex(): span for _, span in got}
    assert set(by_id) == {s.span_id for b in bundles for s in b.spans}
    for bundle in bundles:
        expected_trace = bundle.trace.parent_trace_id or bundle.trace.trace_id
        for record in bundle.spans:
            span = by_id[record.span_id]
            assert span.trace_id.hex() == expected_trace
            assert span.parent_span_id.hex() == (record.parent_span_id or "")
    caller_root = by_id[bundles[1].spans[0].span_id]
    assert caller_root.parent_span_id.hex() == CALLER_SPAN
    assert attributes_of(caller_root.attributes)["steerway.trace_id"] == bundles[1].trace.trace_id
    assert exporter.stats.exported_spans == _spans(bundles)
    assert exporter.stats.dropped_spans == {}


async def test_503_and_429_are_retried_honouring_retry_after(engine: AsyncEngine) -> None:
    answers = [
        Answer(503, {"retry-after": "0"}),
        Answer(429, {"retry-after": "Mon, 01 Jan 2001 00:00:00 GMT"}),  # a date past: at once
        Answer(200),
    ]
    observer = CountingObserver()
    with OtlpReceiver(answers) as receiver:
        exporter = _exporter(receiver.url, observer=observer, max_backoff=0.05)
        await exporter.start()
        bundle = proxied()
        exporter.offer([bundle])
        await exporter.flush()
        await exporter.stop()
    assert [r.status for r in receiver.received] == [503, 429, 200]
    assert receiver.received[0].request == receiver.received[2].request
    assert len(receiver.spans()) == len(bundle.spans)
    assert observer.failures == ["unavailable", "throttled"]
    assert exporter.stats.exported_spans == len(bundle.spans)
    assert exporter.stats.dropped_spans == {}


async def test_a_dead_collector_costs_spans_not_records(engine: AsyncEngine) -> None:
    observer = CountingObserver()
    exporter = _exporter(f"http://127.0.0.1:{closed_port()}", observer=observer, max_attempts=2)
    recorder = Recorder(engine, flush_interval=0.01, also_to=exporter)
    await exporter.start()
    await recorder.start()
    bundles = [proxied() for _ in range(5)]
    for bundle in bundles:
        assert recorder.record(bundle)
    await recorder.flush()
    assert await count(engine, "traces") == 5
    await exporter.flush()
    await recorder.stop()
    await exporter.stop()
    assert exporter.stats.exported_spans == 0
    assert exporter.stats.dropped_spans == {"failed": _spans(bundles)}
    assert observer.dropped_by == {"failed": _spans(bundles)}
    assert set(observer.failures) == {"connection"}


async def test_a_full_queue_drops_and_counts_what_does_not_fit() -> None:
    observer = CountingObserver()
    with OtlpReceiver() as receiver:
        exporter = _exporter(receiver.url, observer=observer, queue_size=2)
        bundles = [proxied() for _ in range(5)]
        exporter.offer(bundles)  # not started yet: nothing leaves the queue meanwhile
        assert exporter.stats.queue_depth == 2
        assert observer.dropped_by == {"queue_full": _spans(bundles[2:])}
        await exporter.start()
        await exporter.flush()
        await exporter.stop()
        assert {s.span_id.hex() for _, s in receiver.spans()} == {
            s.span_id for b in bundles[:2] for s in b.spans
        }
    assert observer.depths[-1] == 0


async def test_sampling_ratio_zero_sends_nothing_and_one_sends_everything() -> None:
    bundles = [proxied() for _ in range(20)]
    with OtlpReceiver() as receiver:
        nothing = _exporter(receiver.url, sampling_ratio=0.0)
        await nothing.start()
        nothing.offer(bundles)
        await nothing.flush()
        await nothing.stop()
        assert receiver.received == []
        everything = _exporter(receiver.url, sampling_ratio=1.0)
        await everything.start()
        everything.offer(bundles)
        await everything.flush()
        await everything.stop()
        assert len(receiver.spans()) == _spans(bundles)


async def test_a_ratio_keeps_or_drops_whole_traces_by_their_id() -> None:
    kept_id = "4bf92f3577b34da6a3fffffffffffff0"  # rightmost 56 bits: near the top
    dropped_id = "4bf92f3577b34da6a30000000000000f"
    assert sampled(kept_id, 0.5) and not sampled(dropped_id, 0.5)
    assert sampled(dropped_id, 1.0) and not sampled(kept_id, 0.0)
    at_threshold = "4bf92f3577b34da6a3" + "80000000000000"  # (1 - 0.5) x 2^56
    below = "4bf92f3577b34da6a3" + "7fffffffffffff"
    assert sampled(at_threshold, 0.5) and not sampled(below, 0.5)
    kept = proxied(traceparent=f"00-{kept_id}-{CALLER_SPAN}-01")
    dropped = proxied(traceparent=f"00-{dropped_id}-{CALLER_SPAN}-01")
    with OtlpReceiver() as receiver:
        exporter = _exporter(receiver.url, sampling_ratio=0.5)
        await exporter.start()
        exporter.offer([kept, dropped])
        await exporter.flush()
        await exporter.stop()
        got = receiver.spans()
    assert {s.trace_id.hex() for _, s in got} == {kept_id}
    assert len(got) == len(kept.spans)


async def test_a_refusal_is_not_retried_and_a_partial_success_counts_rejected_spans() -> None:
    observer = CountingObserver()
    with OtlpReceiver([Answer(400), Answer(200, rejected_spans=2)]) as receiver:
        exporter = _exporter(receiver.url, observer=observer, compression="none")
        await exporter.start()
        first, second = proxied(), proxied()
        exporter.offer([first])
        await exporter.flush()
        exporter.offer([second])
        await exporter.flush()
        await exporter.stop()
    assert [r.status for r in receiver.received] == [400, 200]
    assert "content-encoding" not in receiver.received[0].headers
    assert observer.failures == ["refused"]
    assert exporter.stats.dropped_spans == {"failed": len(first.spans), "rejected": 2}
    assert exporter.stats.exported_spans == len(second.spans) - 2


async def test_traces_that_came_in_through_otlp_ingest_are_not_sent_back() -> None:
    with OtlpReceiver() as receiver:
        exporter = _exporter(receiver.url)
        await exporter.start()
        exporter.offer([proxied(source="otlp")])
        await exporter.flush()
        await exporter.stop()
    assert receiver.received == []
    assert exporter.stats.queued_traces == 0


async def test_stop_drops_what_a_dead_collector_still_holds() -> None:
    observer = CountingObserver()
    exporter = _exporter(
        f"http://127.0.0.1:{closed_port()}",
        observer=observer,
        max_attempts=1000,
        max_backoff=0.05,
        stop_timeout=0.3,
    )
    await exporter.start()
    bundles = [proxied() for _ in range(3)]
    exporter.offer(bundles)
    await exporter.stop()
    assert exporter.stats.exported_spans == 0
    assert sum(exporter.stats.dropped_spans.values()) == _spans(bundles)
    assert exporter.stats.queue_depth == 0


def test_a_ratio_keeps_about_that_share_of_the_gateways_own_trace_ids() -> None:
    ids = [uuid7_hex() for _ in range(20_000)]
    kept = sum(sampled(trace_id, 0.25) for trace_id in ids)
    # 25 % of 20,000 with a standard deviation of 61: 14 deviations either side
    assert 4_150 < kept < 5_850

"""`python -m benchmarks otlp`: what the OTLP span export costs, in process.

Rounds take turns between a recorder without an exporter and one with an exporter attached
(sending to a local receiver that decodes every request, in a thread of this process, so the
receiver's CPU is charged too: a pessimistic figure). Each round records chat-sized bundles and
measures `Recorder.record` per call (the request path's share) and the writer's bundles per
second into a fresh SQLite file until everything is written and exported; it also times the
exporter's encoding (protobuf and gzip) per trace. Prints medians and the with/without ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import migrations
from benchmarks.writer import chat_bundles
from telemetry.db import create_engine
from telemetry.otlp_export import OtlpExporter
from telemetry.otlp_spans import SpanEncoder
from telemetry.recorder import Recorder
from tests.otlp_receiver import OtlpReceiver


async def _round(url: str, bundles: int, receiver: OtlpReceiver | None) -> tuple[float, float]:
    """(µs per `record` call, bundles per second written and exported)."""
    engine = create_engine(url)
    exporter = None
    if receiver is not None:
        exporter = OtlpExporter(
            SpanEncoder(service_name="bench"),
            url=f"{receiver.url}/v1/traces",
            queue_size=bundles,
            flush_interval=0.2,
        )
        await exporter.start()
    recorder = Recorder(engine, queue_size=bundles, also_to=exporter)
    await recorder.start()
    batch = chat_bundles(bundles)
    started = time.perf_counter()
    for bundle in batch:
        recorder.record(bundle)
    recorded = time.perf_counter()
    await recorder.flush()
    if exporter is not None:
        await exporter.flush()
    done = time.perf_counter()
    await recorder.stop()
    if exporter is not None:
        await exporter.stop()
        assert exporter.stats.dropped_spans == {}, exporter.stats.dropped_spans
    await engine.dispose()
    return (recorded - started) / bundles * 1e6, bundles / (done - started)


def _encoding_us(traces: int) -> float:
    encoder = SpanEncoder(service_name="bench")
    batch = chat_bundles(traces)
    exporter = OtlpExporter(encoder, url="http://127.0.0.1:9/v1/traces")
    started = time.perf_counter()
    exporter._encode(batch)
    return (time.perf_counter() - started) / traces * 1e6


async def _measure(rounds: int, bundles: int) -> None:
    record_us: dict[str, list[float]] = {"off": [], "on": []}
    rates: dict[str, list[float]] = {"off": [], "on": []}
    encoding: list[float] = []
    with tempfile.TemporaryDirectory() as folder, OtlpReceiver() as receiver:
        for number in range(rounds):
            for variant in ("off", "on") if number % 2 == 0 else ("on", "off"):
                path = Path(folder) / f"r{number}-{variant}.db"
                url = f"sqlite:///{path}"
                await asyncio.to_thread(migrations.upgrade, url)
                per_call, rate = await _round(url, bundles, receiver if variant == "on" else None)
                record_us[variant].append(per_call)
                rates[variant].append(rate)
            encoding.append(_encoding_us(512))
    off_us, on_us = statistics.median(record_us["off"]), statistics.median(record_us["on"])
    off_rate, on_rate = statistics.median(rates["off"]), statistics.median(rates["on"])
    print(f"rounds {rounds}, {bundles} bundles a round, SQLite")
    print(
        f"record() per call: without {off_us:.2f} µs, with {on_us:.2f} µs, ratio {on_us / off_us:.2f}"
    )
    print(
        f"written (and exported) per second: without {off_rate:,.0f}, with {on_rate:,.0f}, "
        f"ratio {on_rate / off_rate:.2f}"
    )
    print(
        f"encoding (protobuf + gzip), batches of 512: {statistics.median(encoding):.1f} µs a trace"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks otlp", description=__doc__)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--bundles", type=int, default=5000)
    options = parser.parse_args(argv)
    asyncio.run(_measure(options.rounds, options.bundles))
    return 0

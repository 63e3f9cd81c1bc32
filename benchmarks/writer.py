"""`python -m benchmarks writer`: the telemetry writer's throughput, in process.

Writes batches of chat-sized trace bundles with `BatchWriter` into a fresh SQLite file and a
fresh Postgres database, in rounds that take turns between three variants: the writer as it is,
the writer with escaping (`telemetry.escaping`) switched off, and the writer given batches in
which one bundle holds a NUL (what escaping costs when it has work to do). Prints the median
bundles per second of each; taking turns in one process keeps a busy machine's drift out of
the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path

import asyncpg

import migrations
from telemetry import writers
from telemetry.db import create_engine
from telemetry.ids import span_id_hex, uuid7_hex
from telemetry.records import (
    DecisionRecord,
    InteractionRecord,
    SpanRecord,
    TraceBundle,
    TraceRecord,
)
from telemetry.schema import DEFAULT_WORKSPACE_ID

_DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
Escape = Callable[[Sequence[TraceBundle]], list[TraceBundle]]


def chat_bundle(now: float) -> TraceBundle:
    """One chat request's records as the gateway makes them: a prompt and an answer of about a
    kilobyte each, two spans, a decision; nothing to escape."""
    trace_id, span_id = uuid7_hex(), span_id_hex()
    return TraceBundle(
        trace=TraceRecord(
            trace_id=trace_id,
            workspace_id=DEFAULT_WORKSPACE_ID,
            api_key_id="bench-key",
            request_id=f"req-{trace_id[-8:]}",
            end_user="user-7",
            route="/v1/chat/completions",
            started_at=now,
            ended_at=now + 0.125,
            requested_model="gpt-4o-mini",
            provider="openai",
            provider_model="gpt-4o-mini-2024-07-18",
            overhead_ms=0.42,
            tags=["prod"],
            metadata={"team": "search"},
            features={"estimated_input_tokens": 270, "has_tools": False},
        ),
        spans=[
            SpanRecord(
                trace_id=trace_id,
                workspace_id=DEFAULT_WORKSPACE_ID,
                span_id=span_id,
                name="gateway.request",
                component="gateway",
                started_at=now,
                ended_at=now + 0.125,
            ),
            SpanRecord(
                trace_id=trace_id,
                workspace_id=DEFAULT_WORKSPACE_ID,
                span_id=span_id_hex(),
                parent_span_id=span_id,
                name="provider.chat",
                component="providers",
                started_at=now + 0.001,
                ended_at=now + 0.124,
                attributes={"gen_ai.system": "openai"},
            ),
        ],
        decisions=[
            DecisionRecord(
                trace_id=trace_id,
                workspace_id=DEFAULT_WORKSPACE_ID,
                decision_id=uuid7_hex(),
                sequence=0,
                type="model_selection",
                component="router",
                output={"provider": "openai", "model": "gpt-4o-mini"},
                reasoning="the only deployment",
                created_at=now,
            )
        ],
        interactions=[
            InteractionRecord(
                trace_id=trace_id,
                workspace_id=DEFAULT_WORKSPACE_ID,
                interaction_id=uuid7_hex(),
                span_id=span_id,
                api_key_id="bench-key",
                provider="openai",
                requested_model="gpt-4o-mini",
                provider_model="gpt-4o-mini-2024-07-18",
                deployment="default",
                operation="chat",
                prompt_tokens=270,
                completion_tokens=600,
                total_tokens=870,
                cost_usd=Decimal("0.000400500"),
                started_at=now + 0.001,
                ended_at=now + 0.124,
                ttft_ms=20.0,
                finish_reason="stop",
                prompt=[{"role": "user", "content": "lorem ipsum dolor\n" * 60}],
                response=[{"role": "assistant", "content": "x y z " * 200}],
            )
        ],
    )


def chat_bundles(count: int) -> list[TraceBundle]:
    now = time.time()
    return [chat_bundle(now) for _ in range(count)]


def _with_nul(batch: list[TraceBundle]) -> list[TraceBundle]:
    batch[len(batch) // 2].trace.end_user = "user\x00nul"
    return batch


VARIANTS: dict[str, tuple[bool, bool]] = {
    # name: (escaping on, one bundle of each batch holds a NUL)
    "as is": (True, False),
    "no escaping": (False, False),
    "one NUL a batch": (True, True),
}


class _TimedEscape:
    """`escape_bundles` with the time spent in it added up."""

    def __init__(self, escape: Escape) -> None:
        self.escape = escape
        self.seconds = 0.0

    def __call__(self, bundles: Sequence[TraceBundle]) -> list[TraceBundle]:
        started = time.perf_counter()
        try:
            return self.escape(bundles)
        finally:
            self.seconds += time.perf_counter() - started


Measured = tuple[dict[str, list[float]], dict[str, list[float]]]


async def _rates(url: str, rounds: int, batches: int, batch_size: int) -> Measured:
    """Bundles per second of each variant, and the share of the writing time spent escaping."""
    await asyncio.to_thread(migrations.upgrade, url)
    engine = create_engine(url)
    writer = writers.BatchWriter(engine)
    escape: Escape = writers.escape_bundles
    rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
    shares: dict[str, list[float]] = {name: [] for name in VARIANTS}
    try:
        for round_number in range(rounds):
            names = list(VARIANTS)
            names = names[round_number % len(names) :] + names[: round_number % len(names)]
            for name in names:
                escaping, nul = VARIANTS[name]
                timed = _TimedEscape(escape if escaping else list)
                writers.escape_bundles = timed
                data = [chat_bundles(batch_size) for _ in range(batches)]
                if nul:
                    data = [_with_nul(batch) for batch in data]
                started = time.perf_counter()
                for batch in data:
                    await writer.write(batch)
                elapsed = time.perf_counter() - started
                rates[name].append(batch_size * batches / elapsed)
                shares[name].append(timed.seconds / elapsed)
    finally:
        writers.escape_bundles = escape  # type: ignore[assignment]
        await engine.dispose()
    return rates, shares


async def _postgres_rates(maintenance_url: str, *args: int) -> Measured:
    name = f"steerway_bench_writer_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(maintenance_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        return await _rates(f"{maintenance_url.rpartition('/')[0]}/{name}", *args)
    finally:
        admin = await asyncpg.connect(maintenance_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def _report(backend: str, measured: Measured) -> None:
    rates, shares = measured
    medians = {name: statistics.median(values) for name, values in rates.items()}
    base = medians["as is"]
    for name, values in rates.items():
        print(
            f"{backend:8} {name:16} median {medians[name]:7,.0f} bundles/s "
            f"({medians[name] / base:.3f} of as is; escaping "
            f"{100 * statistics.median(shares[name]):.1f}% of the time; {len(values)} rounds)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks writer", description=__doc__)
    parser.add_argument("--rounds", type=int, default=16, help="rounds per variant (default 16)")
    parser.add_argument("--batches", type=int, default=8, help="batches per round (default 8)")
    parser.add_argument("--batch-size", type=int, default=256, help="bundles a batch (256)")
    parser.add_argument("--postgres-url", default=_DEFAULT_POSTGRES)
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args(argv)
    sizes = (args.rounds, args.batches, args.batch_size)
    for backend in args.backends.split(","):
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as folder:
                url = f"sqlite:///{Path(folder) / 'writer.db'}"
                _report(backend, asyncio.run(_rates(url, *sizes)))
        elif backend == "postgres":
            _report(backend, asyncio.run(_postgres_rates(args.postgres_url, *sizes)))
        else:
            parser.error(f"unknown backend {backend!r}; choose sqlite, postgres")
    return 0

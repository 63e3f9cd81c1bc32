"""`python -m benchmarks ingest`: the recorder's ingestion rate into Postgres, held or ramped.

    python -m benchmarks ingest --rate 20000 --seconds 60
    python -m benchmarks ingest --ramp --ramp-start 1000 --ramp-factor 1.3 --seconds 30

Without `--database-url` a fresh database is made on `--postgres-url`'s server, migrated, and
dropped after the run. The report is printed and, unless `--no-save`, written to
`benchmarks/results/<date>-ingest[-ramp].md`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import shlex
import statistics
import sys
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

import migrations
from benchmarks.cli import positive_float, positive_int
from benchmarks.ingest import IngestRun, RecorderSettings, StepResult, ramp_rates, run_ingest
from benchmarks.ingest_bundles import TABLES
from benchmarks.machine import describe_machine, load_average
from benchmarks.stores import create_database, drop_database
from telemetry.db import create_engine

RESULTS_DIR = Path(__file__).parent / "results"
_DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
RAMP_MISSES = 2
"""The ramp ends after this many steps in a row were not kept up with."""


def step_line(step: StepResult) -> str:
    """One step as a progress line."""
    return (
        f"[ingest] {step.target_rate:>7,.0f}/s offered {step.offered_rate:>7,.0f} "
        f"written {step.written_rate:>7,.0f} interactions/s, {step.written_rows / step.seconds:>8,.0f} "
        f"rows/s; queue max {step.max_depth:,} end {step.end_depth:,} growing "
        f"{step.queue_growth:,.0f}/s; congested "
        f"{100 * step.congested_share:.0f}%; dropped {step.dropped}; batch p50 "
        f"{step.batch_percentile(50):.1f} p95 {step.batch_percentile(95):.1f} ms; CPU process "
        f"{100 * step.process_cpu_s / step.seconds:.0f}% (feeder "
        f"{100 * step.feeder_s / step.seconds:.0f}%), server "
        f"{100 * step.server_cpu_s / step.seconds:.0f}%, machine {100 * step.machine_busy:.0f}% "
        f"of 2 cores; {'kept up' if step.kept_up else 'BEHIND'}"
    )


def _steps_table(steps: list[StepResult]) -> list[str]:
    lines = [
        "| offered interactions/s | written interactions/s | rows/s written | queue max / at end "
        "| queue growth bundles/s "
        "| past high-water | dropped | batch p50 / p95 ms | bundles a batch (median) "
        "| CPU: process / feeder / Postgres / machine | CPU µs an interaction: recorder / "
        "Postgres | longest loop stall ms | drain s | bounded |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | --- |",
    ]
    for s in steps:
        sizes = sorted(s.batch_bundles)
        lines.append(
            f"| {s.offered_rate:,.0f} | {s.written_rate:,.0f} | {s.written_rows / s.seconds:,.0f} "
            f"| {s.max_depth:,} / {s.end_depth:,} | {s.queue_growth:,.0f} "
            f"| {100 * s.congested_share:.0f} % | {s.dropped:,} "
            f"| {s.batch_percentile(50):.1f} / {s.batch_percentile(95):.1f} "
            f"| {sizes[len(sizes) // 2] if sizes else 0} "
            f"| {100 * s.process_cpu_s / s.seconds:.0f} / {100 * s.feeder_s / s.seconds:.0f} / "
            f"{100 * s.server_cpu_s / s.seconds:.0f} / {200 * s.machine_busy:.0f} % "
            f"| {s.cpu_us_per_interaction()[0]:.0f} / {s.cpu_us_per_interaction()[1]:.0f} "
            f"| {s.longest_stall_ms:.0f} | {s.drain_s:.1f} | {'yes' if s.kept_up else 'no'} |"
        )
    return lines


def _depth_series(step: StepResult) -> str:
    """The queue's depth once a second (the samples nearest each whole second)."""
    marks: dict[int, int] = {}
    for sample in step.samples:
        marks.setdefault(int(sample.at_s), sample.depth)
    return ", ".join(f"{depth:,}" for _, depth in sorted(marks.items()))


def _rows_table(run: IngestRun) -> list[str]:
    lines = ["| table | rows enqueued | rows in the database |", "| --- | ---: | ---: |"]
    for table in TABLES:
        lines.append(f"| {table} | {run.enqueued_rows[table]:,} | {run.stored_rows[table]:,} |")
    lines.append(
        f"| usage_rollups (minute `requests`) | {run.enqueued_rows['traces']:,} "
        f"| {run.rollup_requests:,} |"
    )
    return lines


def _ceiling(steps: list[StepResult]) -> str:
    """What the CPU cost says about two cores with nothing else to do. The recorder runs on one
    core (one event loop) and its one connection's backend on at most one more, so the rate is
    between the two taking turns and the two never waiting for each other."""
    costs = [s.cpu_us_per_interaction() for s in steps if s.written_interactions]
    if not costs:
        return "Nothing was written."
    recorder = statistics.median(c[0] for c in costs)
    server = statistics.median(c[1] for c in costs)
    return (
        f"CPU an interaction (median of the steps): recorder {recorder:.0f} µs, Postgres "
        f"{server:.0f} µs. On two cores with nothing else running that allows "
        f"{1e6 / (recorder + server):,.0f} interactions/s when the recorder and the server take "
        f"turns, and at most {1e6 / max(recorder, server, 1e-9):,.0f}/s if they never waited "
        "for each other."
    )


def report(
    run: IngestRun, command: str, settings: RecorderSettings, load_at_start: str
) -> list[str]:
    passed = [s for s in run.steps if s.kept_up]
    lines = [
        "# Recorder ingestion into Postgres",
        "",
        f"{dt.date.today().isoformat()}, `{command}`: synthetic bundles (5 to 6 spans, 4 to 5 "
        "decisions, 1 to 2 interactions, tags, metadata, prompt and answer of about 340 bytes each, "
        "a guardrail finding in one in ten) fed to a `Recorder` at a fixed rate (open loop), "
        f"queue {settings.queue_size:,}, batch {settings.batch_size}, flush interval "
        f"{settings.flush_interval * 1000:.0f} ms. CPU is per cent of one core (the machine "
        "column: of both cores, including other people's work); `past high-water` is the share of "
        "samples in which the gateway would have held requests back.",
        "",
        *_steps_table(run.steps),
        "",
    ]
    if passed:
        best = max(passed, key=lambda s: s.offered_rate)
        lines.append(
            f"Highest rate kept up with: {best.offered_rate:,.0f} interactions/s offered "
            f"({best.enqueued_rows / best.seconds:,.0f} rows/s), the queue bounded at "
            f"{best.max_depth:,} bundles."
        )
    behind = [s for s in run.steps if not s.kept_up]
    if behind:
        lines.append(
            "Not kept up with: "
            + ", ".join(
                f"{s.offered_rate:,.0f} interactions/s offered ({s.written_rate:,.0f} written)"
                for s in behind
            )
            + "."
        )
    lines += ["", _ceiling(run.steps)]
    lines += [
        "",
        "Queue depth once a second, per step:",
        "",
        *(f"- {s.target_rate:,.0f}/s: {_depth_series(s)}" for s in run.steps),
        "",
        "Rows after the recorder stopped:",
        "",
        *_rows_table(run),
        "",
        f"Rows written equal rows enqueued: {'yes' if run.rows_match else 'NO'}; spilled "
        f"{run.spilled}; failed writes (retried) {len(run.write_failures)}"
        + (f": {', '.join(sorted(set(run.write_failures)))}" if run.write_failures else "")
        + ".",
        "",
        "Machine: "
        + "; ".join(
            f"{k}: {v}" for k, v in describe_machine(load_at_start) if k not in ("wrk", "Node.js")
        ),
        "",
    ]
    return lines


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks ingest",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--postgres-url", default=_DEFAULT_POSTGRES, help="server for a fresh database"
    )
    parser.add_argument(
        "--database-url", help="an existing database instead (migrated, not dropped)"
    )
    parser.add_argument(
        "--rate", type=positive_float, default=20_000, help="interactions a second (20000)"
    )
    parser.add_argument(
        "--seconds", type=positive_float, default=60, help="seconds each rate is held (60)"
    )
    parser.add_argument(
        "--ramp",
        action="store_true",
        help="raise the rate until two steps in a row are not kept up with",
    )
    parser.add_argument("--ramp-start", type=positive_float, default=1_000)
    parser.add_argument("--ramp-factor", type=positive_float, default=1.3, help="above 1 (1.3)")
    parser.add_argument("--ramp-max", type=positive_float, default=40_000)
    parser.add_argument("--batch-size", type=positive_int, default=RecorderSettings().batch_size)
    parser.add_argument("--queue-size", type=positive_int, default=RecorderSettings().queue_size)
    parser.add_argument(
        "--bare-tables",
        action="store_true",
        help="drop the record tables' secondary indexes first (a fresh database only): shows "
        "what keeping them costs the server",
    )
    parser.add_argument("--no-save", action="store_true")
    return parser


async def _drop_secondary_indexes(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        found = await connection.execute(
            sa.text(
                "SELECT i.indexrelid::regclass::text FROM pg_index i "
                "JOIN pg_class t ON t.oid = i.indrelid "
                "WHERE t.relname = ANY(:tables) AND NOT i.indisprimary"
            ),
            {"tables": list(TABLES)},
        )
        for (index,) in found.all():
            await connection.execute(sa.text(f"DROP INDEX {index}"))


async def _run(url: str, args: argparse.Namespace, settings: RecorderSettings) -> IngestRun:
    engine = create_engine(url)
    try:
        if args.bare_tables:
            await _drop_secondary_indexes(engine)
        rates = (
            ramp_rates(args.ramp_start, args.ramp_factor, args.ramp_max)
            if args.ramp
            else [args.rate]
        )
        return await run_ingest(
            engine,
            rates,
            args.seconds,
            settings,
            stop_after_behind=RAMP_MISSES if args.ramp else 0,
            on_step=lambda step: print(step_line(step), flush=True),
        )
    finally:
        await engine.dispose()


def main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.bare_tables and args.database_url:
        parser.error("--bare-tables drops indexes: only on the fresh database the run makes")
    if args.ramp and args.ramp_factor <= 1:
        parser.error(f"--ramp-factor must be above 1, got {args.ramp_factor:g}")
    settings = RecorderSettings(queue_size=args.queue_size, batch_size=args.batch_size)
    load_at_start = load_average()
    url = args.database_url or create_database(args.postgres_url)
    try:
        migrations.upgrade(url)
        run = asyncio.run(_run(url, args, settings))
    finally:
        if args.database_url is None:
            drop_database(args.postgres_url, url)
    command = shlex.join(["python", "-m", "benchmarks", "ingest", *argv])
    lines = report(run, command, settings, load_at_start)
    print("\n".join(lines))
    if not args.no_save:
        RESULTS_DIR.mkdir(exist_ok=True)
        suffix = ("-ramp" if args.ramp else "") + ("-bare" if args.bare_tables else "")
        path = RESULTS_DIR / f"{dt.date.today().isoformat()}-ingest{suffix}.md"
        path.write_text("\n".join(lines))
        print(f"written to {path}")
    return 0 if run.rows_match else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

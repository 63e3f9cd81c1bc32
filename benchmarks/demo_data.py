"""`python -m benchmarks demo_data`: how fast `steerway demo-data` writes a history.

Writes `--requests` traces over `--days` into a fresh, migrated Postgres database and a fresh
SQLite file (each dropped afterwards) with `gateway.demo.data.write_demo_data`, the code behind
the command, and prints traces and rows per second, this process's CPU time per trace, and how
the wall time divides between waiting for rows to be made and sending them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

import migrations
from gateway.demo.data import DemoOptions, DemoReport, write_demo_data
from telemetry.db import create_engine

_DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
_END = datetime(2026, 12, 1, tzinfo=UTC)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class ServerCpu:
    """CPU seconds used by the Postgres backends serving one database, read from /proc while
    they run (Postgres on this machine only; 0 where /proc cannot tell)."""

    def __init__(self, database: str) -> None:
        self.database = database
        self._marker = f" {database} ".encode()
        self._ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.seconds: dict[int, float] = {}

    def sample(self, *_: object) -> None:
        for entry in Path("/proc").glob("[0-9]*"):
            try:
                if self._marker not in (entry / "cmdline").read_bytes().replace(b"\0", b" "):
                    continue
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
                self.seconds[int(entry.name)] = (int(fields[11]) + int(fields[12])) / self._ticks
            except (OSError, ValueError, IndexError):
                continue

    @property
    def total(self) -> float:
        return sum(self.seconds.values())


async def _write(
    url: str, options: DemoOptions, server: ServerCpu | None = None
) -> tuple[DemoReport, float]:
    await asyncio.to_thread(migrations.upgrade, url)
    engine = create_engine(url)
    try:
        before = _cpu_seconds()
        report = await write_demo_data(engine, options, server.sample if server else None)
        return report, _cpu_seconds() - before
    finally:
        await engine.dispose()


async def _on_postgres(
    maintenance_url: str, options: DemoOptions, server: ServerCpu
) -> tuple[DemoReport, float]:
    name = server.database
    admin = await asyncpg.connect(maintenance_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        return await _write(f"{maintenance_url.rpartition('/')[0]}/{name}", options, server)
    finally:
        admin = await asyncpg.connect(maintenance_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def describe(backend: str, report: DemoReport, cpu: float, server_cpu: float = 0.0) -> str:
    rows = sum(report.rows.values())
    traces = max(report.traces, 1)
    server = f", Postgres {1e6 * server_cpu / traces:.0f} us/trace" if server_cpu else ""
    return (
        f"{backend:8} {report.traces:>10,} traces {rows:>11,} rows in {report.seconds:7.1f} s: "
        f"{report.traces_per_second:>7,.0f} traces/s, {rows / report.seconds:>8,.0f} rows/s; "
        f"CPU: this process {1e6 * cpu / traces:.0f} us/trace{server}; waited "
        f"{report.waiting_for_rows:.1f} s for rows, {report.writing:.1f} s sending them; "
        f"peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; "
        f"load average {os.getloadavg()[0]:.1f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks demo_data", description=__doc__)
    parser.add_argument("--requests", type=int, default=100_000, help="traces (100000)")
    parser.add_argument("--days", type=int, default=7, help="days of history (7)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--postgres-url", default=_DEFAULT_POSTGRES)
    parser.add_argument("--backends", default="postgres,sqlite")
    args = parser.parse_args(argv)
    options = DemoOptions(days=args.days, requests=args.requests, seed=args.seed, end=_END)
    backends = args.backends.split(",")
    unknown = [b for b in backends if b not in ("postgres", "sqlite")]
    if unknown:
        parser.error(f"unknown backend {unknown[0]!r}; choose postgres, sqlite")
    for backend in backends:
        server = ServerCpu(f"steerway_bench_demo_{uuid.uuid4().hex[:8]}")
        if backend == "postgres":
            report, cpu = asyncio.run(_on_postgres(args.postgres_url, options, server))
        else:
            with tempfile.TemporaryDirectory() as folder:
                url = f"sqlite:///{Path(folder) / 'demo.db'}"
                report, cpu = asyncio.run(_write(url, options))
        print(describe(backend, report, cpu, server.total), flush=True)
    return 0

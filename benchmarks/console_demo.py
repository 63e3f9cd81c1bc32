"""The console on a demo-data history: `python -m benchmarks console`.

`steerway demo-data` writes the history (every table, as the gateway records it) into a fresh
Postgres database; a gateway then serves the console over it, and this times, one request at a
time over loopback after warm-up ones:

- the first page of the traces list (`/admin/traces`, last 24 hours) with no filter and with one
  filter of each common kind, values taken from the history itself;
- one trace with everything under it, for traces of the last day: `GET /admin/api/traces/{id}`
  and the page `/admin/traces/{id}`.

Targets (the console issue's): list page p95 ≤ 300 ms, trace page p95 ≤ 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import secrets
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

import migrations
from benchmarks.console_lists import STEERWAY, Timing, figures, http_times, row, timing
from benchmarks.machine import describe_machine, load_average
from benchmarks.processes import base_environment, free_port, spawn, wait_until_ready
from benchmarks.stores import create_database, drop_database
from gateway.demo.data import DemoOptions, default_end, write_demo_data
from telemetry.db import create_engine

RESULTS_DIR = Path(__file__).parent / "results"
LIST_TARGET_P95_MS = 300.0
DETAIL_TARGET_P95_MS = 100.0
DETAIL_TRACES = 20


async def write_history(url: str, requests: int, days: int) -> None:
    engine = create_engine(url)
    try:
        await write_demo_data(
            engine, DemoOptions(days=days, requests=requests, seed=1, end=default_end())
        )
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql("VACUUM ANALYZE")
    finally:
        await engine.dispose()


async def _first(url: str, sql: str) -> str | None:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            found = (await conn.exec_driver_sql(sql)).first()
            return None if found is None else str(found[0])
    finally:
        await engine.dispose()


async def _column(url: str, sql: str) -> list[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return [str(found) for (found,) in (await conn.exec_driver_sql(sql)).all()]
    finally:
        await engine.dispose()


def list_cases(url: str) -> list[tuple[str, dict[str, str]]]:
    """Filters whose values the history holds, the most common of the last day first."""
    recent = "FROM traces WHERE started_at > now() - interval '1 day'"
    picks = {
        "model": f"SELECT requested_model {recent} GROUP BY 1 ORDER BY count(*) DESC LIMIT 1",
        "provider": f"SELECT provider {recent} AND provider IS NOT NULL GROUP BY 1 "
        "ORDER BY count(*) LIMIT 1",
        "key": f"SELECT api_key_id {recent} AND api_key_id IS NOT NULL GROUP BY 1 "
        "ORDER BY count(*) LIMIT 1",
        "end_user": f"SELECT end_user {recent} AND end_user IS NOT NULL GROUP BY 1 "
        "ORDER BY count(*) LIMIT 1",
        "error_type": f"SELECT error_type {recent} AND error_type IS NOT NULL GROUP BY 1 "
        "ORDER BY count(*) LIMIT 1",
        "tag": "SELECT tag FROM (SELECT jsonb_array_elements_text(tags) AS tag "
        f"{recent} LIMIT 10000) found GROUP BY 1 ORDER BY count(*) LIMIT 1",
        "rule": "SELECT rule FROM (SELECT jsonb_array_elements_text(rules_matched) AS rule "
        f"{recent} LIMIT 10000) found GROUP BY 1 ORDER BY count(*) LIMIT 1",
    }
    cases: list[tuple[str, dict[str, str]]] = [("no filter", {})]
    for name, sql in picks.items():
        value = asyncio.run(_first(url, sql))
        if value is not None:
            cases.append((f"{name} = {value[:24]}", {name: value}))
    cases += [
        ("status error", {"status": "error"}),
        ("status denied", {"status": "denied"}),
        ("cache hit", {"cache_hit": "true"}),
        ("guardrail triggered", {"guardrail_triggered": "true"}),
        ("duration >= 2 s", {"min_duration_ms": "2000"}),
        ("sorted by cost", {"sort": "cost"}),
    ]
    return cases


def run(args: argparse.Namespace, say: Callable[[str], None]) -> list[str]:
    load_at_start = load_average()
    url = create_database(args.postgres_url)
    gateway = None
    try:
        say(f"demo-data: {args.requests:,} requests over {args.days} days ...")
        started = time.monotonic()
        migrations.upgrade(url)
        asyncio.run(write_history(url, args.requests, args.days))
        written_s = time.monotonic() - started
        say(f"written and analysed in {written_s:.0f} s")
        home = Path(tempfile.mkdtemp(prefix="steerway-console-"))
        port = free_port()
        master = "sk-bench-" + secrets.token_hex(8)
        env = {
            **base_environment(home),
            "STEERWAY_DATABASE_URL": url,
            "STEERWAY_MASTER_KEY": master,
        }
        gateway = spawn(
            "steerway",
            [STEERWAY, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            log_dir=home,
            cwd=home,
        )
        base = f"http://127.0.0.1:{port}"
        wait_until_ready(gateway, f"{base}/readyz", timeout=60)
        lines = [
            f"# The console on {args.requests:,} traces of demo data (Postgres)",
            "",
            f"{dt.date.today().isoformat()}, `python -m benchmarks console --requests"
            f" {args.requests} --days {args.days} --samples {args.samples}`; the history took"
            f" {written_s:.0f} s to write and analyse.",
            "",
            f"Milliseconds, median / p95 of {args.samples} requests after 3 warm-up ones, one at"
            " a time over loopback, server and client on one machine.",
            "",
            "### Traces list, first page (50 rows), the last 24 hours",
            "",
            row(("filter", "api", "page", f"page p95 ≤ {LIST_TARGET_P95_MS:.0f} ms")),
            row(("---", "---:", "---:", ":---:")),
        ]
        headers = {"Authorization": f"Bearer {master}"}
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            for name, params in list_cases(url):
                query = {**params, "last": "24h"}
                api = timing(http_times(client, "/admin/api/traces", query, args.samples))
                page = timing(http_times(client, "/admin/traces", query, args.samples))
                met = "yes" if page.p95 <= LIST_TARGET_P95_MS else "**no**"
                lines.append(row((name, figures(api), figures(page), met)))
                say(lines[-1])
            lines += detail_lines(client, url, args.samples)
            say("\n".join(lines[-3:]))
        machine = describe_machine(load_at_start)
        lines += ["", "Machine: " + "; ".join(f"{k}: {v}" for k, v in machine if k != "wrk"), ""]
        return lines
    finally:
        if gateway is not None:
            gateway.stop()
        drop_database(args.postgres_url, url)


def detail_lines(client: httpx.Client, url: str, samples: int) -> list[str]:
    ids = asyncio.run(
        _column(
            url,
            "SELECT trace_id FROM traces WHERE started_at > now() - interval '1 day'"
            f" ORDER BY md5(trace_id) LIMIT {DETAIL_TRACES}",
        )
    )
    if not ids:
        raise RuntimeError("the history has no trace of the last day")
    each = max(1, samples // len(ids))
    api: list[float] = []
    page: list[float] = []
    for trace_id in ids:
        api += http_times(client, f"/admin/api/traces/{trace_id}", {}, each)
        page += http_times(client, f"/admin/traces/{trace_id}", {}, each)
    api_timing: Timing = timing(api)
    page_timing: Timing = timing(page)
    met = "yes" if page_timing.p95 <= DETAIL_TARGET_P95_MS else "**no**"
    return [
        "",
        f"### One trace with everything under it ({len(ids)} traces of the last day)",
        "",
        row(("request", "median / p95", f"p95 ≤ {DETAIL_TARGET_P95_MS:.0f} ms")),
        row(("---", "---:", ":---:")),
        row(("`GET /admin/api/traces/{id}`", figures(api_timing), "")),
        row(("`GET /admin/traces/{id}` (page)", figures(page_timing), met)),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks console", description=__doc__)
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--output", type=Path, default=None, help="the results file to write")
    args = parser.parse_args(argv)
    lines = run(args, lambda text: print(text, flush=True))
    output = args.output or RESULTS_DIR / f"{dt.date.today().isoformat()}-console.md"
    output.write_text("\n".join(lines) + "\n")
    print(f"written to {output}")
    return 0

"""Analytics on a demo-data history: `python -m benchmarks analytics`.

Against a database that already holds a history (`--database-url`, written by `steerway
demo-data`; a large one takes long to write, so it is made once and reused), this

- times `telemetry.analytics.run_query` in process (the server's own time for a query: the SQL
  and the folding into steps, no HTTP) for every metric family over the last day, week and
  month, whole and grouped by the common dimensions, after a warm-up run of each;
- measures how far the roll-ups' percentiles are from the exact ones: latency p50, p95 and p99
  per requested model and day over the last week, against `percentile_disc` of the traces'
  durations (Postgres).

With `--pages`, a gateway is started on the database and each analytics page is timed over
loopback as a signed-in operator sees it (the master key), for the day, week and month up to the
history's last request (the Forecast page reads its own eight weeks whatever the range). The
first load of each page and range is reported apart: the Anomalies page keeps its scores for five
minutes, so the timed loads after it are served from that cache.

Targets (the analytics issue's): on Postgres with 10,000,000 interactions every query ≤ 200 ms
and every page ≤ 500 ms at p95; on SQLite with 1,000,000 interactions every page ≤ 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

import migrations
from benchmarks.console_lists import STEERWAY, figures, http_times, row, timing
from benchmarks.machine import describe_machine, load_average
from benchmarks.processes import base_environment, free_port, spawn, wait_until_ready
from telemetry.analytics import AnalyticsQuery, run_query
from telemetry.db import create_engine
from telemetry.schema import ROLLUP_LATENCY_BOUNDS_MS

RESULTS_DIR = Path(__file__).parent / "results"
TARGET_P95_MS = 200.0
PAGE_TARGET_P95_MS = {"postgresql": 500.0, "sqlite": 1000.0}
PAGES = ("", "/usage", "/cost", "/performance", "/safety", "/providers", "/forecast", "/anomalies")
RANGES = {"24h": dt.timedelta(days=1), "7d": dt.timedelta(days=7), "30d": dt.timedelta(days=30)}
CASES: tuple[tuple[str, tuple[str, ...], dict[str, tuple[str, ...]]], ...] = (
    ("requests", (), {}),
    ("cost", ("model",), {}),
    ("cost", ("workspace", "key"), {}),
    ("error_rate", ("provider",), {}),
    ("latency_p95", ("model",), {}),
    ("ttft_p50", ("provider", "model"), {}),
    ("total_tokens", ("key",), {}),
    ("cache_hit_rate", (), {}),
    ("cost", ("tag",), {}),
    ("requests", ("end_user",), {}),
    ("guardrail_verdicts", ("guardrail", "action"), {}),
    ("rule_matches", ("rule",), {}),
    ("requests", ("model",), {"status": ("error",)}),
)


async def _time_queries(url: str, end: dt.datetime, samples: int) -> list[tuple[str, Any]]:
    engine = create_engine(url)
    found = []
    try:
        for metric, group_by, filters in CASES:
            for range_name, span in RANGES.items():
                query = AnalyticsQuery(
                    metric=metric,
                    start=end - span,
                    end=end,
                    group_by=group_by,
                    filters=filters,
                    top=10 if group_by else None,
                )
                await run_query(engine, query, scope=None)
                times = []
                for _ in range(samples):
                    started = time.perf_counter()
                    await run_query(engine, query, scope=None)
                    times.append((time.perf_counter() - started) * 1000)
                by = " x ".join(group_by) or "total"
                where = "".join(f" ({k} = {','.join(v)})" for k, v in filters.items())
                found.append((f"{metric} by {by}{where}, {range_name}", timing(times)))
    finally:
        await engine.dispose()
    return found


_EXACT = """
SELECT requested_model, date_trunc('day', started_at) AS day,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY duration_ms),
       percentile_disc(0.95) WITHIN GROUP (ORDER BY duration_ms),
       percentile_disc(0.99) WITHIN GROUP (ORDER BY duration_ms),
       count(*)
FROM traces WHERE started_at >= $1 AND started_at < $2 AND requested_model IS NOT NULL
GROUP BY 1, 2 HAVING count(*) >= 100
"""


RELATIVE_FROM_MS = 10.0
"""Relative errors are reported for exact percentiles from here up: below it a bucket is a few
milliseconds wide and the relative error of a sub-millisecond answer says little."""


def _bucket_width(value: float) -> float:
    lower = 0.0
    for upper in ROLLUP_LATENCY_BOUNDS_MS:
        if value <= upper:
            return upper - lower
        lower = upper
    return float("inf")


async def _percentile_errors(url: str, end: dt.datetime) -> dict[str, list[float]]:
    """Relative error of each roll-up percentile against the exact one, per model and day."""
    engine = create_engine(url)
    start = (end - dt.timedelta(days=7)).replace(hour=0, minute=0, second=0, microsecond=0)
    day_end = end.replace(hour=0, minute=0, second=0, microsecond=0)
    errors: dict[str, list[float]] = {
        name: [] for p in ("p50", "p95", "p99") for name in (p, f"{p} within a bucket")
    }
    try:
        async with engine.connect() as connection:
            raw = (await connection.get_raw_connection()).driver_connection
            assert raw is not None
            exact = await raw.fetch(_EXACT, start, day_end)
        for name, position in (("p50", 2), ("p95", 3), ("p99", 4)):
            result = await run_query(
                engine,
                AnalyticsQuery(
                    metric=f"latency_{name}",
                    start=start,
                    end=day_end,
                    step=86400,
                    group_by=("model",),
                ),
                scope=None,
            )
            estimates = {
                (series.group["model"], moment): value
                for series in result.series
                for moment, value in series.points
            }
            for record in exact:
                estimate = estimates.get((record[0], record[1]))
                if estimate is None or not record[position]:
                    continue
                error = abs(float(estimate) - record[position])
                errors[f"{name} within a bucket"].append(
                    float(error <= _bucket_width(record[position]))
                )
                if record[position] >= RELATIVE_FROM_MS:
                    errors[name].append(error / record[position])
    finally:
        await engine.dispose()
    return errors


async def _history_size(url: str) -> tuple[int, int, dt.datetime]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            interactions = (
                await connection.exec_driver_sql("SELECT count(*) FROM ai_interactions")
            ).scalar_one()
            rollups = (
                await connection.exec_driver_sql("SELECT count(*) FROM usage_rollups")
            ).scalar_one()
            last = (
                await connection.exec_driver_sql("SELECT max(started_at) FROM traces")
            ).scalar_one()
    finally:
        await engine.dispose()
    return int(interactions), int(rollups), last


def _error_line(name: str, values: Sequence[float]) -> str:
    if not values:
        return row((name, "—", "—", "—", "0"))
    if name.endswith("within a bucket"):
        return row((name, f"{statistics.mean(values):.3f}", "", "", str(len(values))))
    ordered = sorted(values)
    return row(
        (
            name,
            f"{statistics.median(ordered) * 100:.1f} %",
            f"{ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))] * 100:.1f} %",
            f"{ordered[-1] * 100:.1f} %",
            str(len(ordered)),
        )
    )


def _first_load(client: httpx.Client, path: str, params: dict[str, str]) -> float:
    started = time.perf_counter()
    response = client.get(path, params=params)
    if response.status_code != 200:
        raise RuntimeError(f"{path} {params}: {response.status_code} {response.text[:300]}")
    return (time.perf_counter() - started) * 1000


def page_lines(
    url: str, samples: int, say: Callable[[str], None], end: dt.datetime | None = None
) -> list[str]:
    """Each analytics page over HTTP, from a gateway started on the database; the ranges end at
    `end` (given as `from` and `to`), or now (given as `last`)."""

    def params(name: str) -> dict[str, str]:
        if end is None:
            return {"last": name}
        start = end - RANGES[name]
        return {"from": start.isoformat(), "to": end.isoformat()}

    migrations.upgrade(url)
    home = Path(tempfile.mkdtemp(prefix="steerway-analytics-"))
    port = free_port()
    master = "sk-bench-" + secrets.token_hex(8)
    env = {**base_environment(home), "STEERWAY_DATABASE_URL": url, "STEERWAY_MASTER_KEY": master}
    gateway = spawn(
        "steerway",
        [STEERWAY, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        log_dir=home,
        cwd=home,
    )
    target = PAGE_TARGET_P95_MS["sqlite" if url.startswith("sqlite") else "postgresql"]
    lines = [
        "",
        f"### Analytics pages, milliseconds, median / p95 of {samples} requests after 3 warm-up"
        " ones, one at a time over loopback",
        "",
        row(
            (
                "page",
                *(f"last {name}: first / median / p95" for name in RANGES),
                f"p95 ≤ {target:.0f} ms",
            )
        ),
        row(("---", *("---:" for _ in RANGES), ":---:")),
    ]
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_ready(gateway, f"{base}/readyz", timeout=120)
        headers = {"Authorization": f"Bearer {master}"}
        with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
            for page in PAGES:
                path = f"/admin/analytics{page}"
                first = [_first_load(client, path, params(name)) for name in RANGES]
                measured = [
                    timing(http_times(client, path, params(name), samples)) for name in RANGES
                ]
                met = "yes" if max(m.p95 for m in measured) <= target else "**no**"
                cells = (f"{f:.0f} / {figures(m)}" for f, m in zip(first, measured, strict=True))
                lines.append(row((f"`{path}`", *cells, met)))
                say(lines[-1])
    finally:
        gateway.stop()
    return lines


def run(args: argparse.Namespace, say: Callable[[str], None]) -> list[str]:
    load_at_start = load_average()
    interactions, rollup_rows, last = asyncio.run(_history_size(args.database_url))
    if isinstance(last, str):  # SQLite answers plain SQL with the stored text
        last = dt.datetime.fromisoformat(last).replace(tzinfo=dt.UTC)
    end = last + dt.timedelta(seconds=1)
    say(f"{interactions:,} interactions, {rollup_rows:,} roll-up rows, last at {last}")
    lines = [
        f"# Analytics on {interactions:,} interactions of demo data"
        f" ({'SQLite' if args.database_url.startswith('sqlite') else 'Postgres'})",
        "",
        f"{dt.date.today().isoformat()}, `python -m benchmarks analytics --database-url <demo"
        f" database> --samples {args.samples}{' --pages' if args.pages else ''}`; {rollup_rows:,} roll-up rows"
        " (three grains).",
        "",
        f"`run_query` in process, milliseconds, median / p95 of {args.samples} runs after one"
        " warm-up, ranges ending at the history's last request; grouped queries keep the top 10.",
        "",
        row(("query", "median / p95", f"p95 ≤ {TARGET_P95_MS:.0f} ms")),
        row(("---", "---:", ":---:")),
    ]
    for name, measured in asyncio.run(_time_queries(args.database_url, end, args.samples)):
        met = "yes" if measured.p95 <= TARGET_P95_MS else "**no**"
        lines.append(row((name, figures(measured), met)))
        say(lines[-1])
    if args.pages:
        lines += page_lines(args.database_url, args.samples, say, end)
    if args.database_url.startswith("sqlite"):
        machine = describe_machine(load_at_start)
        return [*lines, "", "Machine: " + "; ".join(f"{k}: {v}" for k, v in machine if k != "wrk")]
    errors = asyncio.run(_percentile_errors(args.database_url, end))
    lines += [
        "",
        "### Percentiles from the roll-ups against exact ones",
        "",
        "Latency per requested model and day over the last 7 whole days (groups of 100 requests"
        " or more), exact being `percentile_disc` of the traces' durations. Rows `pNN`: the"
        " relative error |estimate - exact| / exact where the exact value is 10 ms or more;"
        " rows `pNN within a bucket`: the share of groups (1.0 = all) whose estimate is within"
        " the width of the bucket holding the exact value, the documented guarantee.",
        "",
        row(("percentile", "median error", "p95 error", "largest error", "groups")),
        row(("---", "---:", "---:", "---:", "---:")),
        *(_error_line(name, values) for name, values in errors.items()),
    ]
    say("\n".join(lines[-3:]))
    machine = describe_machine(load_at_start)
    lines += ["", "Machine: " + "; ".join(f"{k}: {v}" for k, v in machine if k != "wrk"), ""]
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks analytics", description=__doc__)
    parser.add_argument(
        "--database-url",
        required=True,
        help="a database holding a demo-data history (steerway demo-data); Postgres for the"
        " percentile comparison",
    )
    parser.add_argument("--pages", action="store_true", help="also time the analytics pages")
    parser.add_argument("--samples", type=int, default=20, help="runs of each query (default 20)")
    parser.add_argument("--no-save", action="store_true", help="print only; write no result file")
    args = parser.parse_args(argv)
    lines = run(args, print)
    if not args.no_save:
        RESULTS_DIR.mkdir(exist_ok=True)
        backend = "sqlite" if args.database_url.startswith("sqlite") else "postgres"
        path = RESULTS_DIR / f"{dt.date.today().isoformat()}-analytics-{backend}.md"
        path.write_text("\n".join(lines))
        print(f"written to {path}")
    return 0

"""The `recorder` scenario: the tail latency and event-loop lag the telemetry recorder causes.

Steerway at `--connections` on the plain mock, telemetry on, one worker, on SQLite and (when
`--postgres-url` answers) on Postgres. With `--baseline-source PATH` a `-before` gateway per
store runs the code of that checkout with the same settings, so before and after are measured
in the same rounds. Per load: 2xx req/s, p50, p99, p99 ÷ p50, and the event-loop lag of that
load, read from the worker's own probe (`steerway_event_loop_lag_seconds` on `/metrics`,
scraped just before and after, as the `tail` scenario does).
"""

from __future__ import annotations

import math
from pathlib import Path

from benchmarks.harness import Harness
from benchmarks.results import Check, Metric, ScenarioResult, at_most
from benchmarks.scenarios import Variants, load, run_rounds, warm_up, wrk_values
from benchmarks.soak import scrape
from benchmarks.stores import StoreUnavailable, create_database, drop_database
from benchmarks.tail_workload import lag_values
from benchmarks.targets import PLAIN_MODEL, SteerwayOptions, Target

AFTER = "steerway"
BEFORE = "steerway-before"
TAIL_FACTOR = 4.0
LAG_BUDGET_MS = 20.0


def run_recorder(harness: Harness) -> list[ScenarioResult]:
    options = harness.options
    connections = options.connections
    source = options.baseline_source
    before = (
        f"`{BEFORE}` rows run the code of {source} (no lag if older than the probe). "
        if source
        else ""
    )
    result = ScenarioResult(
        name="recorder",
        title=f"The recorder and the event loop ({connections} connections, non-streaming)",
        description="One worker, telemetry on. lag max: the bound of the lag histogram's bucket "
        "every wake-up of the load's window stayed under (`steerway_event_loop_lag_seconds`, "
        "the worker's own probe, a task sleeping 10 ms); lags > 20 ms: the wake-ups later than "
        f"that. {before}`-pg` rows store in Postgres, the others in SQLite.",
        metrics=[
            Metric("rps", "req/s", 0),
            Metric("p50", "p50 ms", 2),
            Metric("p99", "p99 ms", 1),
            Metric("tail", "p99 ÷ p50", 1),
            Metric("lag_ms", "loop lag max ms (≤)", 0),
            Metric("lag_over_20", "lags > 20 ms", 0),
        ],
        primary="rps",
        baseline="direct",
    )
    databases: list[str] = []
    stores = [""]
    try:
        databases.append(create_database(options.postgres_url))
        if source:
            databases.append(create_database(options.postgres_url))
        stores.append("-pg")
    except StoreUnavailable as error:
        result.notes.append(f"Postgres not measured: {error}")
    try:
        with Variants(harness, []) as variants:
            targets = [t for t in (harness.target("direct"),) if t]
            for suffix in stores:
                pairs = [(AFTER, None)] + ([(BEFORE, Path(source))] if source else [])
                for index, (label, code) in enumerate(pairs):
                    url = databases[index] if suffix else None
                    target = variants.start(
                        result, SteerwayOptions(name=label + suffix, database_url=url, source=code)
                    )
                    if target is not None:
                        targets.append(target)
            warm_up(harness, targets, connections, PLAIN_MODEL)

            def measure(target: Target) -> dict[str, float]:
                before = scrape(target)
                loaded = load(harness, target, connections=connections)
                after = scrape(target)
                values = wrk_values(loaded)
                values["tail"] = loaded.p99_ms / loaded.p50_ms if loaded.p50_ms else 0.0
                values |= lag_values(before, after)
                return values

            run_rounds(harness, result, targets, measure)
    finally:
        for database in databases:
            drop_database(options.postgres_url, database)
    for suffix in stores:
        result.checks += checks(result, suffix, compare=bool(source))
        result.notes += worst_since_start(result, suffix)
    return [result]


def checks(result: ScenarioResult, suffix: str, *, compare: bool) -> list[Check]:
    name = AFTER + suffix
    after = result.measured(name)
    if after is None:
        return []
    found = [
        at_most(
            f"{name}: p99 <= {TAIL_FACTOR:g}x p50",
            after.median("tail"),
            TAIL_FACTOR,
            "x",
            "not measured",
        ),
        at_most(
            f"{name}: event-loop lag at saturation <= {LAG_BUDGET_MS:g} ms (median round)",
            after.median("lag_ms"),
            LAG_BUDGET_MS,
            " ms",
            "lag not read from /metrics",
        ),
    ]
    if compare:
        ratio = result.ratio(name, BEFORE + suffix)
        found.append(
            Check(
                f"{name}: req/s >= before",
                None if ratio is None else ratio >= 0.97,
                "not measured" if ratio is None else f"{ratio:.2f}x",
            )
        )
    return found


def worst_since_start(result: ScenarioResult, suffix: str) -> list[str]:
    """Each Steerway's worst single wake-up (`steerway_event_loop_lag_max_seconds`), which the
    histogram's buckets only bound."""
    notes: list[str] = []
    for name in (AFTER + suffix, BEFORE + suffix):
        cell = result.measured(name)
        if cell is None:
            continue
        worst = [v for v in cell.values("lag_worst_since_start_ms") if math.isfinite(v)]
        if worst:
            notes.append(f"{name}: worst loop lag since start {max(worst):.1f} ms")
    return notes

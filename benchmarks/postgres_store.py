"""The Postgres scenario: throughput with the Postgres store, and whether every request is recorded.

After each round the harness waits for the recorder to flush, then compares the rows written to
`traces` and `ai_interactions` with the 2xx answers wrk counted and with Steerway's own
`steerway_requests_total`. wrk stops with up to one request per connection still in flight:
those are served and recorded but not counted by wrk, so rows may exceed wrk's count by at most
the number of connections; Steerway's own counter has no such gap.
"""

from __future__ import annotations

import time
import urllib.request

from benchmarks.harness import Harness
from benchmarks.results import Check, Metric, ScenarioResult
from benchmarks.scenarios import (
    LATENCY,
    RPS,
    Variants,
    load,
    run_rounds,
    warm_up,
    wrk_values,
)
from benchmarks.stores import (
    StoreUnavailable,
    count_answered_traces,
    count_rows,
    create_database,
    drop_database,
    is_success,
    sum_samples,
)
from benchmarks.targets import PLAIN_MODEL, SteerwayOptions, Target

TABLES = ("traces", "ai_interactions")
FLUSH_TIMEOUT_S = 60.0
SETTLED_AFTER_S = 2.0


def scrape_served(target: Target) -> float | None:
    """2xx answers Steerway itself counted (`steerway_requests_total`), or None."""
    if target.metrics_url is None:
        return None
    try:
        with urllib.request.urlopen(target.metrics_url, timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return None
    return sum_samples(text, "steerway_requests_total", is_success)


def wait_for_flush(database_url: str, expected: int | None) -> tuple[dict[str, int], float]:
    """Poll row counts until traces reach `expected` or stop changing; returns counts and lag."""
    started = time.monotonic()
    counts = count_rows(database_url, TABLES)
    changed = started
    while time.monotonic() - started < FLUSH_TIMEOUT_S:
        time.sleep(0.2)
        latest = count_rows(database_url, TABLES)
        now = time.monotonic()
        if latest != counts:
            counts, changed = latest, now
        if expected is not None and counts["traces"] >= expected:
            break
        if now - changed >= SETTLED_AFTER_S:
            break
    return counts, changed - started


def run_postgres_scenario(harness: Harness) -> ScenarioResult:
    options = harness.options
    connections = options.connections
    result = ScenarioResult(
        name="postgres",
        title=f"Steerway with the Postgres store ({connections} connections, non-streaming)",
        description=__doc__.strip().split("\n\n")[1].replace("\n", " "),
        metrics=[
            RPS,
            *LATENCY,
            Metric("rows_per_s", "trace rows/s", 0),
            Metric("flush_s", "flush lag s", 2),
            Metric("missing_vs_served", "served - trace rows", 0),
            Metric("extra_vs_wrk", "trace rows - wrk 2xx", 0),
        ],
        primary="rps",
        baseline="steerway",
    )
    try:
        database_url = create_database(options.postgres_url)
    except StoreUnavailable as error:
        result.cell("steerway-postgres").unavailable = str(error)
        return result
    try:
        with Variants(harness, []) as variants:
            targets = [t for t in [harness.target("steerway")] if t is not None]
            variant = variants.start(
                result, SteerwayOptions(name="steerway-postgres", database_url=database_url)
            )
            if variant is not None:
                targets.append(variant)
            warm_up(harness, targets, connections, PLAIN_MODEL)

            def measure(target: Target) -> dict[str, float]:
                if target.name != "steerway-postgres":
                    return wrk_values(load(harness, target, connections=connections))
                before = count_rows(database_url, TABLES)
                answered_before = count_answered_traces(database_url)
                served_before = scrape_served(target)
                wrk = load(harness, target, connections=connections)
                served_after = scrape_served(target)
                served = (
                    None
                    if served_before is None or served_after is None
                    else int(served_after - served_before)
                )
                after, lag = wait_for_flush(
                    database_url, None if served is None else before["traces"] + served
                )
                # Requests wrk left in flight finish (or are cancelled) after it stops: count
                # what Steerway served once everything has settled, and only 2xx trace rows.
                served_settled = scrape_served(target)
                if served_settled is not None and served_before is not None:
                    served = int(served_settled - served_before)
                answered = count_answered_traces(database_url) - answered_before
                traces = after["traces"] - before["traces"]
                interactions = after["ai_interactions"] - before["ai_interactions"]
                values = wrk_values(wrk)
                values |= {
                    "traces": float(traces),
                    "interactions": float(interactions),
                    "rows_per_s": traces / (wrk.duration_s + lag),
                    "flush_s": lag,
                    "extra_vs_wrk": float(traces - wrk.ok_requests),
                }
                if served is not None:
                    values["served"] = float(served)
                    values["answered_traces"] = float(answered)
                    values["missing_vs_served"] = float(served - answered)
                return values

            run_rounds(harness, result, targets, measure)
    finally:
        try:
            drop_database(options.postgres_url, database_url)
        except Exception as error:
            result.notes.append(f"could not drop {database_url.rpartition('/')[2]}: {error}")
    result.checks.append(recorded_check(result, connections))
    return result


def recorded_check(result: ScenarioResult, connections: int) -> Check:
    name = "Postgres: a trace row for every 2xx answer"
    cell = result.measured("steerway-postgres")
    if cell is None:
        return Check(name, None, "Steerway with Postgres not measured")
    details: list[str] = []
    passed = True
    for index, run in enumerate(cell.runs, start=1):
        if "traces" not in run:
            continue
        traces, ok = int(run["traces"]), int(run["ok"])
        line = f"round {index}: wrk 2xx {ok}, traces {traces}, ai_interactions {int(run['interactions'])}"
        if "served" in run:
            served = int(run["served"])
            answered = int(run.get("answered_traces", traces))
            line += f", 2xx trace rows {answered}, served 2xx (metrics) {served}"
            passed = passed and answered == served
        else:
            passed = passed and 0 <= traces - ok <= connections
        details.append(line)
        cell.notes.append(line)
    return Check(name, passed, "; ".join(details) or "no round finished")

"""The durability scenario: what `telemetry.durability: spill-first` costs, and what a crash loses.

1. Cost: Steerway with the default (`memory`) and with `spill-first`, both on the default SQLite
   store, side by side with the mock (`direct`) in every round: a serial load (wrk, 1
   connection) for the overhead against `direct`, then a throughput load (`--connections`).
   With `--baseline-source PATH`, a third Steerway runs the code of another checkout (same
   settings as `steerway`), so the default mode's cost before and after a change is measured in
   the same run.
2. Crash loss (`crash_loss`): for each mode, store (SQLite, Postgres) and writer state (keeping
   up, or held back by another session's lock on `traces`), a burst of answers, `kill -9`, a
   restart and its replay; served answers against trace rows. One round, whatever `--runs`
   says: a case takes two gateway starts.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.crash_loss import CrashCase, CrashOutcome, all_cases, describe, run_crash_case
from benchmarks.harness import Harness
from benchmarks.results import Check, Metric, ScenarioResult
from benchmarks.scenarios import Variants, load, run_rounds, warm_up
from benchmarks.stores import StoreUnavailable, create_database, drop_database
from benchmarks.targets import PLAIN_MODEL, SteerwayOptions, Target

MEMORY = "steerway"
SPILL_FIRST = "steerway-spill-first"
BEFORE = "steerway-before"
CRASH_SERVED = 1000
CRASH_CONCURRENCY = 16


def run_durability(harness: Harness) -> list[ScenarioResult]:
    return [cost_result(harness), crash_result(harness)]


def cost_result(harness: Harness) -> ScenarioResult:
    connections = harness.options.connections
    result = ScenarioResult(
        name="durability",
        title=f"Steerway with spill-first durability ({connections} connections and serial)",
        description="Serial load (1 connection) for the overhead against direct, then "
        f"{connections} connections for req/s, in every round for every target; SQLite store. "
        f"`{MEMORY}` is the default (`telemetry.durability: memory`)"
        + (
            f"; `{BEFORE}` runs the code of {harness.options.baseline_source} with the same "
            "settings"
            if harness.options.baseline_source
            else ""
        )
        + ".",
        metrics=[
            Metric("rps", "req/s", 0),
            Metric("p50", "p50 ms", 3),
            Metric("p99", "p99 ms", 3),
            Metric("serial_p50", "serial p50 ms", 3),
        ],
        primary="rps",
        baseline="direct",
        overheads=[Metric("serial_p50", "serial overhead p50 ms", 3)],
    )
    with Variants(harness, []) as variants:
        targets = [t for t in (harness.target("direct"), harness.target(MEMORY)) if t]
        spill_first = variants.start(
            result,
            SteerwayOptions(name=SPILL_FIRST, config={"telemetry": {"durability": "spill-first"}}),
        )
        if spill_first is not None:
            targets.append(spill_first)
        source = harness.options.baseline_source
        if source is not None:
            before = variants.start(result, SteerwayOptions(name=BEFORE, source=Path(source)))
            if before is not None:
                targets.append(before)
        warm_up(harness, targets, connections, PLAIN_MODEL)

        def measure(target: Target) -> dict[str, float]:
            serial = load(harness, target, connections=1)
            loaded = load(harness, target, connections=connections)
            return {
                "rps": loaded.requests_per_s,
                "p50": loaded.p50_ms,
                "p99": loaded.p99_ms,
                "serial_p50": serial.p50_ms,
                "ok": float(loaded.ok_requests + serial.ok_requests),
                "non_2xx": float(loaded.non_2xx + serial.non_2xx),
                "socket_errors": float(loaded.socket_errors + serial.socket_errors),
            }

        run_rounds(harness, result, targets, measure)
    if source is not None:
        after_before = result.ratio(MEMORY, BEFORE)
        result.checks.append(
            Check(
                "default mode req/s >= 0.95x before the change",
                None if after_before is None else after_before >= 0.95,
                "not measured" if after_before is None else f"{after_before:.2f}x",
            )
        )
    return result


def crash_result(harness: Harness) -> ScenarioResult:
    options = harness.options
    result = ScenarioResult(
        name="crash-loss",
        title=f"Crash loss: kill -9 after {CRASH_SERVED:,} answers",
        description=f"{CRASH_CONCURRENCY} clients; `kill -9` once {CRASH_SERVED:,} answers are "
        "in, then a restart on the same database and spill folder. served: complete 2xx "
        "answers; recorded: their trace rows after the restart's replay; lost s: the lost "
        "answers in seconds of the burst's rate. Writer behind: another session holds a lock "
        "on `traces` from before the burst until after the kill.",
        metrics=[
            Metric("served", "served", 0),
            Metric("recorded", "recorded", 0),
            Metric("lost", "lost", 0),
            Metric("lost_s", "lost s", 2),
            Metric("rate", "answers/s", 0),
        ],
        primary="lost",
        baseline="",
        row_label="case",
        ratios=False,
    )
    mocks = harness.require_mocks()
    stores: tuple[str, ...] = ("sqlite", "postgres")
    try:
        drop_database(options.postgres_url, create_database(options.postgres_url))
    except StoreUnavailable as error:
        stores = ("sqlite",)
        result.notes.append(f"Postgres cases not run: {error}")
    for case in all_cases(stores):
        print(f"[bench] crash-loss: {case.name}", flush=True)
        cell = result.cell(case.name)
        try:
            outcome = run_crash_case(
                harness.workspace,
                mocks,
                case,
                served=CRASH_SERVED,
                concurrency=CRASH_CONCURRENCY,
                postgres_url=options.postgres_url,
            )
        except (OSError, RuntimeError) as error:
            cell.runs.append({})
            cell.notes.append(str(error))
            continue
        cell.runs.append(crash_values(outcome))
        result.notes.append(describe(case, outcome))
    for case in all_cases(stores):
        if case.durability == "spill-first":
            result.checks.append(no_loss_check(result, case))
    return result


def crash_values(outcome: CrashOutcome) -> dict[str, float]:
    rate = outcome.served / outcome.burst_s if outcome.burst_s > 0 else 0.0
    return {
        "served": float(outcome.served),
        "recorded": float(outcome.recorded),
        "lost": float(outcome.lost),
        "lost_s": outcome.lost / rate if rate else 0.0,
        "rate": rate,
    }


def no_loss_check(result: ScenarioResult, case: CrashCase) -> Check:
    name = f"{case.name}: every served answer recorded after kill -9"
    cell = result.measured(case.name)
    if cell is None:
        return Check(name, None, "not measured")
    losses = [int(run["lost"]) for run in cell.runs if "lost" in run]
    served = [int(run["served"]) for run in cell.runs if "served" in run]
    detail = ", ".join(
        f"{lost} of {count} lost" for lost, count in zip(losses, served, strict=True)
    )
    return Check(name, all(lost == 0 for lost in losses), detail)

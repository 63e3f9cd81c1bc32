"""The `recorder` scenario: the tail latency and event-loop lag the telemetry recorder causes.

Steerway at `--connections` on the plain mock, telemetry on, one worker, on SQLite and (when
`--postgres-url` answers) on Postgres, each gateway with the event-loop lag probe
(`benchmarks.loop_lag`). With `--baseline-source PATH` a `-before` gateway per store runs the
code of that checkout with the same settings, so before and after are measured in the same
rounds. Per load: 2xx req/s, p50, p99, p99 ÷ p50, and the probe's worst and p99 lag.
"""

from __future__ import annotations

import time
from pathlib import Path

from benchmarks.harness import Harness
from benchmarks.loop_lag import LOG_FLUSH_S, LagLog
from benchmarks.results import Check, Metric, ScenarioResult
from benchmarks.scenarios import Variants, load, run_rounds, warm_up, wrk_values
from benchmarks.stores import StoreUnavailable, create_database, drop_database
from benchmarks.targets import PLAIN_MODEL, SteerwayOptions, Target

AFTER = "steerway"
BEFORE = "steerway-before"
SWITCH_1MS = "steerway-switch-1ms"
THREAD = "steerway-thread"


def run_recorder(harness: Harness) -> list[ScenarioResult]:
    options = harness.options
    connections = options.connections
    source = options.baseline_source
    result = ScenarioResult(
        name="recorder",
        title=f"The recorder and the event loop ({connections} connections, non-streaming)",
        description="One worker, telemetry on; each Steerway runs an event-loop probe (a task "
        "sleeping 5 ms, logging how late it woke). lag worst/p99: over the load's window. "
        + (f"`{BEFORE}` rows run the code of {source}. " if source else "")
        + f"`{THREAD}` is `{AFTER}` with its recorder's writer in a thread of its own "
        "(`telemetry.writer_thread: true`). `-pg` rows store in Postgres, the others in SQLite"
        + (
            f"; `{SWITCH_1MS}` is `{THREAD}` with the interpreter's thread switch interval at "
            "1 ms (5 ms by default)."
            if options.switch_interval_variant
            else "."
        ),
        metrics=[
            Metric("rps", "req/s", 0),
            Metric("p50", "p50 ms", 2),
            Metric("p99", "p99 ms", 1),
            Metric("tail", "p99 ÷ p50", 1),
            Metric("lag_worst", "lag worst ms", 1),
            Metric("lag_p99", "lag p99 ms", 1),
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
    logs: dict[str, LagLog] = {}
    try:
        with Variants(harness, []) as variants:
            targets = [t for t in (harness.target("direct"),) if t]
            for suffix in stores:
                pairs = [(AFTER, None)] + ([(BEFORE, Path(source))] if source else [])
                for index, (label, code) in enumerate(pairs):
                    name = label + suffix
                    log = harness.workspace.root / f"{name}-lag.log"
                    url = databases[index] if suffix else None
                    target = variants.start(
                        result,
                        SteerwayOptions(name=name, database_url=url, source=code, lag_log=log),
                    )
                    if target is not None:
                        targets.append(target)
                        logs[name] = LagLog(log)
            log = harness.workspace.root / f"{THREAD}-lag.log"
            threaded = variants.start(
                result,
                SteerwayOptions(
                    name=THREAD, lag_log=log, config={"telemetry": {"writer_thread": True}}
                ),
            )
            if threaded is not None:
                targets.append(threaded)
                logs[THREAD] = LagLog(log)
            if options.switch_interval_variant:
                log = harness.workspace.root / f"{SWITCH_1MS}-lag.log"
                target = variants.start(
                    result,
                    SteerwayOptions(
                        name=SWITCH_1MS,
                        lag_log=log,
                        switch_interval=0.001,
                        config={"telemetry": {"writer_thread": True}},
                    ),
                )
                if target is not None:
                    targets.append(target)
                    logs[SWITCH_1MS] = LagLog(log)
            warm_up(harness, targets, connections, PLAIN_MODEL)

            def measure(target: Target) -> dict[str, float]:
                started = time.time()
                loaded = load(harness, target, connections=connections)
                ended = time.time()
                values = wrk_values(loaded)
                values["tail"] = loaded.p99_ms / loaded.p50_ms if loaded.p50_ms else 0.0
                log = logs.get(target.name)
                if log is not None:
                    time.sleep(LOG_FLUSH_S * 2)
                    lags = log.window(started, ended)
                    values |= {
                        "lag_worst": lags.worst_ms,
                        "lag_p99": lags.p99_ms,
                        "lag_over_20": float(lags.over_20ms),
                    }
                return values

            run_rounds(harness, result, targets, measure)
    finally:
        for database in databases:
            drop_database(options.postgres_url, database)
    for suffix in stores:
        after = result.measured(AFTER + suffix)
        if after is None:
            continue
        tails = sorted(after.values("tail"))
        lags = sorted(after.values("lag_worst"))
        if tails:
            tail = tails[len(tails) // 2]
            result.checks.append(
                Check(f"{AFTER + suffix}: p99 <= 4x p50", tail <= 4.0, f"{tail:.1f}x")
            )
        if lags:
            lag = lags[len(lags) // 2]
            result.checks.append(
                Check(f"{AFTER + suffix}: worst loop lag <= 20 ms", lag <= 20.0, f"{lag:.1f} ms")
            )
        if source:
            ratio = result.ratio(AFTER + suffix, BEFORE + suffix)
            result.checks.append(
                Check(
                    f"{AFTER + suffix}: req/s >= before",
                    None if ratio is None else ratio >= 0.97,
                    "not measured" if ratio is None else f"{ratio:.2f}x",
                )
            )
    return [result]

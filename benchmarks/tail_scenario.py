"""The tail scenario (issue 20): tail latency and event-loop lag at saturation, against the peers.

Steerways configured as in production (`tail_workload`), on SQLite and on Postgres, each under
`steerway serve` (uvicorn), under granian, and under `steerway serve` with the recorder writing
from a child process, run beside `direct`, Portkey and LiteLLM. In every
round each target gets, one after the other:

1. a serial load (wrk, 1 connection) once the recorder has written what earlier loads left;
2. a saturating load (`--connections`), with the worker's `/metrics` read just before and after,
   so the lag histogram's increase is the event-loop lag of that load alone;
3. the CPU time its process tree used per request during that load (what the target would serve
   on a core of its own: 1000 ÷ CPU ms/req; on a shared machine req/s falls with the share of
   the cores it gets, this much less), and the RSS of the tree;
4. for Steerway and `direct`, once the recorder has written the saturating load's backlog, the
   time to the first byte of `--stream-samples` streams, one at a time.

Ratios to the peers and overheads over `direct` are taken within a round, then the median.
"per core ÷ peer" is the peer's CPU time per request over the row's: how many times the row's
requests per CPU second the peer's, the comparison that least depends on what else the machine
runs (req/s itself follows the share of the cores each target happens to get).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from typing import Final

from benchmarks.harness import Harness
from benchmarks.memory import tree_cpu_seconds, tree_memory
from benchmarks.results import Check, Metric, ScenarioResult, at_least, at_most
from benchmarks.scenarios import Variants, mark_unavailable, run_rounds
from benchmarks.soak import scrape, wait_for_drain
from benchmarks.stats import paired_difference
from benchmarks.stores import StoreUnavailable, create_database, drop_database
from benchmarks.streaming import measure_streams
from benchmarks.tail_workload import (
    VARIANTS,
    Store,
    check_configured,
    keyed_target,
    lag_values,
    load_model,
    tail_options,
    variant_name,
)
from benchmarks.targets import STREAM_MODEL, SteerwayOptions, Target
from benchmarks.wrk import WrkError, WrkResult, run_wrk

TAIL_FACTOR: Final = 4.0
LAG_BUDGET_MS: Final = 20.0
PORTKEY_FACTOR: Final = 3.0
LITELLM_FACTOR: Final = 30.0
SERIAL_BUDGET_MS: Final = 0.3
TTFB_BUDGET_MS: Final = 0.5
PEERS: Final = ("portkey", "litellm")
BEFORE: Final = "-before"
"""Suffix of the rows that run `--baseline-source` (uvicorn only), for a before/after."""

METRICS: Final = [
    Metric("rps", "req/s", 0),
    Metric("p50", "p50 ms", 2),
    Metric("p90", "p90 ms", 2),
    Metric("p99", "p99 ms", 2),
    Metric("tail_ratio", "p99 ÷ p50", 1),
    Metric("lag_ms", "loop lag max ms (≤)", 0),
    Metric("lag_over_20", "lag wake-ups > 20 ms", 0),
    Metric("cpu_ms", "CPU ms/req", 3),
    Metric("rss", "RSS MiB", 1),
    Metric("serial_p50", "serial p50 ms", 3),
    Metric("vs_portkey", "req/s ÷ Portkey", 2),
    Metric("vs_litellm", "req/s ÷ LiteLLM", 1),
    Metric("p99_vs_portkey", "p99 ÷ Portkey p99", 2),
    Metric("core_vs_portkey", "per core ÷ Portkey", 2),
    Metric("core_vs_litellm", "per core ÷ LiteLLM", 1),
]
OVERHEADS: Final = [
    Metric("serial_p50", "serial overhead p50 ms", 3),
    Metric("ttfb_p50", "TTFB overhead p50 ms", 3),
]


def run_tail(harness: Harness) -> ScenarioResult:
    options = harness.options
    result = ScenarioResult(
        name="tail",
        title=f"Tail latency and event-loop lag ({options.connections} connections)",
        description=description(harness),
        metrics=METRICS,
        primary="rps",
        baseline="direct",
        overheads=OVERHEADS,
        ratios=False,
    )
    named = [harness.target(name) for name in options.targets if name != "steerway"]
    peers = [target for target in named if target is not None]
    mark_unavailable(harness, result)
    stores = [Store("sqlite", None)]
    postgres_url: str | None = None
    try:
        postgres_url = create_database(options.postgres_url)
        stores.append(Store("postgres", postgres_url))
    except StoreUnavailable as error:
        for server, writer in VARIANTS:
            missing = variant_name(Store("postgres", None), server, writer)
            result.cell(missing).unavailable = str(error)
    baseline_url: str | None = None
    try:
        with Variants(harness, []) as variants:
            steerways = start_variants(variants, result, stores)
            if options.baseline_source is not None:
                if postgres_url is not None:
                    # The other checkout migrates a database of its own: its schema may differ.
                    baseline_url = create_database(options.postgres_url)
                before = baseline_stores(stores, baseline_url)
                steerways += start_baselines(variants, result, before, options.baseline_source)
            direct = [t for t in peers if t.name == "direct"]
            others = [t for t in peers if t.name != "direct"]
            targets = [*direct, *steerways, *others]
            warm_up(harness, targets)
            run_rounds(harness, result, targets, lambda t: measure(harness, t))
    finally:
        for url in (postgres_url, baseline_url):
            if url is not None:
                with contextlib.suppress(StoreUnavailable, OSError):
                    drop_database(options.postgres_url, url)
    add_peer_ratios(result)
    result.checks += checks(result)
    result.notes += server_notes(result, stores)
    result.notes += before_after_notes(result, stores)
    return result


def description(harness: Harness) -> str:
    options = harness.options
    return (
        "Each Steerway: the 50 rules of `benchmarks/rules_fixture.yaml` (the load asks for "
        "`gpt-4o` with the rules scenario's tags and metadata, so three rules match), a key with "
        "an in-process rate limit and budget that never trip, guardrails defined and not "
        "selected, telemetry on; `steerway-<store>` is `steerway serve` (uvicorn, httptools, "
        "uvloop), `-granian` the same app factory under granian (ASGI, uvloop, HTTP/1.1), "
        "`-process` `steerway serve` with `telemetry.writer: process` (the recorder's rows "
        f"built and written by a child process of the worker); one worker each. Per round and target: serial load (wrk, 1 connection, "
        f"{options.duration_s:g} s), then wrk at {options.connections} connections "
        f"({options.duration_s:g} s, {options.wrk_threads} threads): req/s (2xx), p50/p90/p99; "
        "the event-loop lag of that load from the worker's `steerway_event_loop_lag_seconds` "
        "(the bucket bound every wake-up stayed under, and the wake-ups over 20 ms); CPU time "
        "of the process tree per request during it (for direct, the two mock workers); RSS of "
        f"the process tree after it; TTFB of {options.stream_samples} streams, one at a time, "
        "once the recorder has drained (Steerway and direct). Peers get the same plain loads "
        "with their own configs."
        + (
            f" `-before` rows run the code of {options.baseline_source} (uvicorn) with the same "
            "configuration, for a before/after in the same rounds."
            if options.baseline_source
            else ""
        )
    )


def start_variants(variants: Variants, result: ScenarioResult, stores: list[Store]) -> list[Target]:
    options = [
        tail_options(store, server, writer) for store in stores for server, writer in VARIANTS
    ]
    return start_checked(variants, result, options)


def baseline_stores(stores: list[Store], baseline_url: str | None) -> list[Store]:
    """The stores of the `-before` rows: the same SQLite kind (each instance has its own file),
    and a Postgres database apart from the one the checkout under test migrated."""
    return [
        Store(store.label, baseline_url if store.database_url is not None else None)
        for store in stores
        if store.database_url is None or baseline_url is not None
    ]


def start_baselines(
    variants: Variants, result: ScenarioResult, stores: list[Store], source: str
) -> list[Target]:
    """The same configuration run from the checkout at `source`, under uvicorn."""
    options = [tail_options(store, "uvicorn") for store in stores]
    before = [dataclasses.replace(o, name=o.name + BEFORE, source=Path(source)) for o in options]
    return start_checked(variants, result, before)


def start_checked(
    variants: Variants, result: ScenarioResult, all_options: list[SteerwayOptions]
) -> list[Target]:
    """The Steerways that started and, probed, run what the scenario claims."""
    started: list[Target] = []
    for options in all_options:
        target = variants.start(result, options)
        if target is None:
            continue
        keyed = keyed_target(target)
        problem = check_configured(keyed)
        if problem is not None:
            result.cell(options.name).unavailable = problem
            continue
        started.append(keyed)
    return started


def before_after_notes(result: ScenarioResult, stores: list[Store]) -> list[str]:
    """This checkout against `--baseline-source`, same store and server, paired by round."""
    notes: list[str] = []
    for store in stores:
        after = variant_name(store, "uvicorn")
        before = after + BEFORE
        a, b = result.measured(after), result.measured(before)
        if a is None or b is None:
            continue
        parts = [
            f"{label} {result.ratio(after, before, key) or math.nan:.2f}x"
            for key, label in (("rps", "req/s"), ("p99", "p99"), ("cpu_ms", "CPU/req"))
        ]
        for key, label in (("serial_p50", "serial p50"), ("ttfb_p50", "TTFB p50")):
            difference = paired_difference(a.values(key), b.values(key))
            if difference is not None:
                parts.append(f"{label} {difference:+.3f} ms")
        notes.append(f"{store.label}: after ÷ before " + ", ".join(parts) + " (paired medians)")
    return notes


def plain_load(
    harness: Harness, target: Target, connections: int, duration_s: float | None = None
) -> WrkResult:
    model = load_model(target)
    route = target.route(model)
    return run_wrk(
        route.url,
        headers=route.headers,
        connections=connections,
        threads=harness.options.wrk_threads,
        duration_s=duration_s or harness.options.duration_s,
        model=model,
    )


def warm_up(harness: Harness, targets: list[Target]) -> None:
    for target in targets:
        with contextlib.suppress(WrkError):
            plain_load(harness, target, harness.options.connections, harness.options.warmup_s)


def measure(harness: Harness, target: Target) -> dict[str, float]:
    options = harness.options
    if target.metrics_url is not None:
        wait_for_drain(target)
    serial = plain_load(harness, target, 1)
    before = scrape(target)
    cpu_before = tree_cpu_seconds(target.process.pid) if target.process is not None else None
    loaded = plain_load(harness, target, options.connections)
    cpu_used = (
        tree_cpu_seconds(target.process.pid) - cpu_before
        if target.process is not None and cpu_before is not None
        else None
    )
    after = scrape(target)
    values = {
        "rps": loaded.requests_per_s,
        "p50": loaded.p50_ms,
        "p90": loaded.p90_ms,
        "p99": loaded.p99_ms,
        "tail_ratio": loaded.p99_ms / loaded.p50_ms if loaded.p50_ms > 0 else math.nan,
        "serial_p50": serial.p50_ms,
        "serial_p99": serial.p99_ms,
        "non_2xx": float(loaded.non_2xx + serial.non_2xx),
        "socket_errors": float(loaded.socket_errors + serial.socket_errors),
    }
    if cpu_used is not None and loaded.ok_requests:
        values["cpu_ms"] = cpu_used * 1000 / loaded.ok_requests
    values |= lag_values(before, after)
    if target.process is not None:
        values["rss"] = tree_memory(target.process.pid).rss_mib
    if target.name in ("direct", "floor") or target.name.startswith("steerway"):
        if target.metrics_url is not None:
            wait_for_drain(target)
        route = target.route(STREAM_MODEL)
        streams = asyncio.run(
            measure_streams(
                route.url,
                headers=route.headers,
                model=STREAM_MODEL,
                count=options.stream_samples,
                concurrency=1,
            )
        )
        if streams.completed == 0:
            raise RuntimeError(f"no stream completed: {streams.first_failure}")
        values["ttfb_p50"] = streams.first_byte_p50_ms
        values["non_2xx"] += streams.failed
    return values


def add_peer_ratios(result: ScenarioResult) -> None:
    """Round by round: each row's req/s and p99 against the peers' in the same round."""
    for name, cell in result.cells.items():
        if name in PEERS or name == "direct":
            continue
        for key, peer, metric in (
            ("vs_portkey", "portkey", "rps"),
            ("vs_litellm", "litellm", "rps"),
            ("p99_vs_portkey", "portkey", "p99"),
            ("core_vs_portkey", "portkey", "cpu_ms"),
            ("core_vs_litellm", "litellm", "cpu_ms"),
        ):
            other = result.measured(peer)
            if other is None:
                continue
            for run, theirs in zip(cell.runs, other.runs, strict=False):
                mine, base = run.get(metric), theirs.get(metric)
                if not mine or not base:
                    continue
                # Requests per CPU second compare inversely to CPU time per request.
                run[key] = base / mine if metric == "cpu_ms" else mine / base


def paired_note(result: ScenarioResult, row: str, base: str) -> str | None:
    a, b = result.measured(row), result.measured(base)
    if a is None or b is None:
        return None
    rps = result.ratio(row, base, "rps")
    p99 = result.ratio(row, base, "p99")
    cpu = result.ratio(row, base, "cpu_ms")
    serial = paired_difference(a.values("serial_p50"), b.values("serial_p50"))
    ttfb = paired_difference(a.values("ttfb_p50"), b.values("ttfb_p50"))
    return (
        f"req/s {rps or math.nan:.2f}x, p99 {p99 or math.nan:.2f}x, CPU/req "
        f"{cpu or math.nan:.2f}x, serial p50 {serial or math.nan:+.3f} ms, TTFB p50 "
        f"{ttfb or math.nan:+.3f} ms (paired medians)"
    )


def steerway_rows(result: ScenarioResult) -> list[str]:
    return [
        name for name in result.cells if name.startswith("steerway") and not name.endswith(BEFORE)
    ]


def worst_over_rounds(result: ScenarioResult, name: str, key: str) -> float | None:
    cell = result.measured(name)
    if cell is None:
        return None
    values = [v for v in cell.values(key) if math.isfinite(v)]
    return max(values) if values else None


def checks(result: ScenarioResult) -> list[Check]:
    found: list[Check] = []
    for name in steerway_rows(result):
        cell = result.measured(name)
        missing = f"{name} not measured"
        median: Callable[[str], float | None] = (lambda key: None) if cell is None else cell.median
        found += [
            at_most(
                f"{name}: p99 <= {TAIL_FACTOR:g}x its p50",
                median("tail_ratio"),
                TAIL_FACTOR,
                "x",
                missing,
            ),
            at_most(
                f"{name}: p99 <= Portkey's p99",
                median("p99_vs_portkey"),
                1.0,
                "x",
                "Portkey or " + missing,
            ),
            at_most(
                f"{name}: event-loop lag at saturation <= {LAG_BUDGET_MS:g} ms (every round)",
                worst_over_rounds(result, name, "lag_ms"),
                LAG_BUDGET_MS,
                " ms",
                "lag not read: " + missing,
            ),
            at_least(
                f"{name}: req/s >= {PORTKEY_FACTOR:g}x Portkey",
                median("vs_portkey"),
                PORTKEY_FACTOR,
                "x",
                "Portkey or " + missing,
            ),
            at_least(
                f"{name}: req/s >= {LITELLM_FACTOR:g}x LiteLLM",
                median("vs_litellm"),
                LITELLM_FACTOR,
                "x",
                "LiteLLM or " + missing,
            ),
            at_most(
                f"{name}: serial overhead p50 <= {SERIAL_BUDGET_MS:g} ms",
                result.overhead(name, "serial_p50"),
                SERIAL_BUDGET_MS,
                " ms",
                "direct or " + missing,
            ),
            at_most(
                f"{name}: streaming TTFB overhead p50 <= {TTFB_BUDGET_MS:g} ms",
                result.overhead(name, "ttfb_p50"),
                TTFB_BUDGET_MS,
                " ms",
                "direct or " + missing,
            ),
        ]
    return found


def server_notes(result: ScenarioResult, stores: list[Store]) -> list[str]:
    """granian against uvicorn, and the writer process against the recorder in process, on the
    same store, round by round."""
    notes: list[str] = []
    for store in stores:
        plain = variant_name(store, "uvicorn")
        for other, label in (
            (variant_name(store, "granian"), "granian ÷ uvicorn"),
            (variant_name(store, "uvicorn", "process"), "writer process ÷ in process"),
        ):
            line = paired_note(result, other, plain)
            if line is not None:
                notes.append(f"{store.label}: {label} {line}")
    for name in steerway_rows(result):
        cell = result.measured(name)
        if cell is None:
            continue
        worst = [v for v in cell.values("lag_worst_since_start_ms") if math.isfinite(v)]
        rounds = ", ".join(f"{v:,.0f}" for v in cell.values("rps"))
        line = f"{name}: req/s by round {rounds}"
        if worst:
            line += f"; worst loop lag since start {max(worst):.1f} ms"
        notes.append(line)
    return notes

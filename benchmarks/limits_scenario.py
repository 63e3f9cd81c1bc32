"""The limits scenario: what the response cache, budget and rate-limit checks add to a request,
with Redis and in process (`limits_workload` describes the Steerways, keys and variants).

In every round each variant gets a serial load (wrk, 1 connection: latency) and then a
throughput load (`--connections`), one variant after the other. Before each serial load the
harness waits until the gateway's recorder has written what earlier loads left in its queue:
otherwise each variant would pay for the backlog of the one before. Two sections come out:

1. End to end: serial p50/p99 and req/s of every variant, and what each adds to its backend's
   baseline (the key without limits in the same process), taken within the round.
2. The gateway's own timing of the serial loads (`limits_records`): its overhead per request and
   what each check took, with the design's per-stage budget for the in-process backend.
"""

from __future__ import annotations

import sqlite3
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from benchmarks.harness import Harness
from benchmarks.limits_records import (
    cache_note,
    read_key_spend,
    read_serial_records,
    refusals_note,
    spend_note,
)
from benchmarks.limits_workload import (
    BASELINE,
    BUDGET,
    CACHE,
    EXPECTED_CACHE_STATUS,
    LIMITS,
    MAX_PARALLEL,
    MAX_TOKENS,
    PLAIN_BODY,
    RPM,
    TPM,
    VARIANTS,
    Backend,
    Variant,
    backends,
    check_variant,
    instance_options,
    instance_variants,
    row_name,
    scenario_redis_url,
    script_for,
    variant_target,
)
from benchmarks.results import Check, Metric, ScenarioResult, at_most
from benchmarks.scenarios import Variants, run_rounds
from benchmarks.soak import DRAIN_TIMEOUT_S, scrape, wait_for_drain
from benchmarks.stores import StoreUnavailable, flush_redis
from benchmarks.targets import PLAIN_MODEL, Target
from benchmarks.wrk import WrkError, WrkResult, run_wrk

LOAD_SECONDS: Final = 3.0
"""Longest load per measurement (`--duration` when shorter): 12 variants and two loads each per
round keep the scenario near 5 minutes."""
SETTLE_WAIT_S: Final = 1.5
"""After the rounds: the ledger persists spend and the recorder writes rows within a second."""
STAGE_BUDGET_US: Final = 20.0
"""The design's budget for one in-process rate-limit, budget or cache check (p50)."""
STAGE_CHECKS: Final = (
    ("rate limits", "rate", "rate-limit check"),
    ("budgets", "budget", "budget check"),
    ("cache miss", "cache", "cache lookup (miss)"),
)
"""(variant, value prefix, what) for the in-process stage checks."""


def run_limits(harness: Harness) -> list[ScenarioResult]:
    options = harness.options
    duration_s = min(options.duration_s, LOAD_SECONDS)
    end_to_end = end_to_end_result(options.connections, duration_s, options.redis_url)
    checks = checks_result(options.redis_url)
    plan: tuple[Backend, ...] = backends(options.redis_url)
    for backend in plan:
        for variant in VARIANTS:
            end_to_end.cell(row_name(backend, variant))
            checks.cell(row_name(backend, variant))
    redis_url = scenario_redis_url(options.redis_url)
    try:
        flush_redis(redis_url)
    except StoreUnavailable as error:
        for variant in VARIANTS:
            end_to_end.cell(row_name(plan[0], variant)).unavailable = str(error)
        plan = tuple(backend for backend in plan if backend.redis_url is None)
    run = LimitsRun(harness, end_to_end, duration_s)
    try:
        with Variants(harness, []) as variants:
            run.start(variants, plan)
            run.measure_rounds()
            time.sleep(SETTLE_WAIT_S)
            run.read_back(checks)
    finally:
        if any(backend.redis_url is not None for backend in plan):
            flush_redis(redis_url)
    for name, cell in end_to_end.cells.items():
        if cell.unavailable and name in checks.cells:
            checks.cells[name].unavailable = cell.unavailable
    baselines = baseline_rows(backends(options.redis_url))
    add_paired(
        end_to_end,
        baselines,
        differences=(("serial_p50", "added_p50"), ("serial_p99", "added_p99")),
        ratios=(("rps", "rps_ratio"),),
    )
    add_paired(checks, baselines, differences=(("overhead_p50", "added_overhead_p50"),))
    for note in (rounds_note(end_to_end), drain_note(end_to_end)):
        if note is not None:
            end_to_end.notes.append(note)
    checks.checks += stage_checks(checks)
    return [end_to_end, checks]


@dataclass
class LimitsRun:
    """The Steerways of one run, the variants served by them, and when each serial load ran."""

    harness: Harness
    result: ScenarioResult
    duration_s: float
    targets: list[Target] = field(default_factory=list)
    chosen: dict[str, Variant] = field(default_factory=dict)
    instances: list[tuple[Backend, str, Target]] = field(default_factory=list)
    windows: dict[tuple[str, int], tuple[float, float]] = field(default_factory=dict)
    """(row, round) -> epoch seconds at the start and end of its serial load."""

    def start(self, variants: Variants, plan: Sequence[Backend]) -> None:
        """Start both Steerways of each backend, probe each variant, then warm them all up."""
        for backend in plan:
            for instance in (LIMITS, CACHE):
                settings = instance_options(backend, instance)
                started = variants.start(self.result, settings)
                if started is None:
                    reason = self.result.cells.pop(settings.name).unavailable
                    for variant in instance_variants(instance):
                        self.result.cell(row_name(backend, variant)).unavailable = reason
                    continue
                self.instances.append((backend, instance, started))
                for variant in instance_variants(instance):
                    target = variant_target(started, backend, variant)
                    problem = check_variant(target, variant)
                    if problem is not None:
                        self.result.cell(target.name).unavailable = problem
                        continue
                    self.targets.append(target)
                    self.chosen[target.name] = variant
        for target in self.targets:
            try:
                self.load(target, self.harness.options.connections, self.harness.options.warmup_s)
            except WrkError as error:
                print(f"[bench] {target.name}: warm-up failed: {error}", flush=True)

    def load(self, target: Target, connections: int, duration_s: float) -> WrkResult:
        route = target.route(PLAIN_MODEL)
        script, arguments = script_for(self.chosen[target.name])
        return run_wrk(
            route.url,
            headers=route.headers,
            connections=connections,
            threads=self.harness.options.wrk_threads,
            duration_s=duration_s,
            model=PLAIN_MODEL,
            max_tokens=MAX_TOKENS,
            script=script,
            script_args=arguments,
        )

    def measure(self, target: Target) -> dict[str, float]:
        """Serial then throughput load, once the gateway has written what earlier loads left
        in its recorder's queue (a backlog would slow whichever variant comes next)."""
        round_index = len(self.result.cell(target.name).runs)
        drained = wait_for_drain(target)
        began = time.time()
        serial = self.load(target, 1, self.duration_s)
        self.windows[(target.name, round_index)] = (began, time.time())
        loaded = self.load(target, self.harness.options.connections, self.duration_s)
        values = measured_values(serial, loaded)
        values["drain_s"] = DRAIN_TIMEOUT_S if drained is None else drained
        return values

    def measure_rounds(self) -> None:
        run_rounds(self.harness, self.result, self.targets, self.measure)

    def read_back(self, checks: ScenarioResult) -> None:
        """The checks' timings of every serial load, and each Steerway's evidence notes."""
        runs = self.harness.options.runs
        for backend, instance, started in self.instances:
            self.result.notes += instance_notes(backend, instance, started)
            if started.home is None:
                continue
            database = started.home / "steerway.db"
            for variant in instance_variants(instance):
                name = row_name(backend, variant)
                if name not in self.chosen:
                    continue
                key_id = started.keys[variant.key].key_id
                status = None if variant.body == PLAIN_BODY else EXPECTED_CACHE_STATUS[variant.body]
                cell = checks.cell(name)
                for round_index in range(runs):
                    window = self.windows.get((name, round_index))
                    try:
                        timings = (
                            {}
                            if window is None
                            else read_serial_records(database, *window, key_id, status)
                        )
                    except (sqlite3.Error, OSError) as error:
                        cell.notes.append(f"round {round_index + 1}: decisions not read ({error})")
                        timings = {}
                    cell.runs.append(timings)


def instance_notes(backend: Backend, instance: str, target: Target) -> list[str]:
    prefix = f"{backend.label} {instance} Steerway"
    notes: list[str] = []
    exposition = scrape(target)
    if exposition is not None:
        if instance == CACHE:
            counted = cache_note(exposition)
            if counted is not None:
                notes.append(f"{prefix}: {counted}")
        else:
            notes.append(f"{prefix}: {refusals_note(exposition)}")
    if instance == LIMITS and target.home is not None:
        names = {key.key_id: name for name, key in target.keys.items()}
        try:
            spent = read_key_spend(target.home / "steerway.db")
        except (sqlite3.Error, OSError) as error:
            notes.append(f"{prefix}: budget_spend not read ({type(error).__name__}: {error})")
        else:
            notes.append(f"{prefix}: {spend_note(spent, names)}")
    return notes


# --- results ----------------------------------------------------------------------------------


def end_to_end_result(connections: int, duration_s: float, redis_url: str) -> ScenarioResult:
    redis = backends(redis_url)[0]
    return ScenarioResult(
        name="limits",
        title="Limits: cache, budgets, rate limits (Steerway, non-streaming)",
        description=(
            f"Per backend (Redis at {redis.redis_url}, flushed before and after; in-process), "
            "two Steerways against the plain mock. One has the cache off and four keys made "
            "with `steerway keys create`: `baseline` has no limits; `rate limits` has "
            f"rpm {int(RPM):,}, tpm {int(TPM):,} and max parallel {MAX_PARALLEL} (every request "
            "is checked and released, none refused); `budgets` has "
            f"{BUDGET} (every request reserves its largest cost and settles it); and both. "
            "The other has the cache on and the key without limits, loaded at temperature 0 "
            "with the same body every time (`cache hit`) or a nonce per request (`cache miss`: "
            f"a lookup, then the answer stored). Each round: a serial load (wrk, 1 connection, "
            f"{duration_s:g} s), then {connections} connections ({duration_s:g} s), one variant "
            "after the other, each starting once the gateway's recorder has drained. `added` is "
            "the row minus its backend's baseline and `req/s ÷ baseline` their ratio, both "
            "within each round; the cache rows run in a second process, so theirs compare two "
            "processes."
        ),
        metrics=[
            Metric("serial_p50", "serial p50 ms", 3),
            Metric("serial_p99", "serial p99 ms", 3),
            Metric("rps", f"req/s ({connections} conn)", 0),
            Metric("p50", f"p50 ms ({connections} conn)", 2),
            Metric("added_p50", "added serial p50 ms", 3),
            Metric("added_p99", "added serial p99 ms", 3),
            Metric("rps_ratio", "req/s ÷ baseline", 2),
        ],
        primary="rps",
        baseline=row_name(redis, VARIANTS[0]),
        row_label="variant",
        ratios=False,
    )


def checks_result(redis_url: str) -> ScenarioResult:
    return ScenarioResult(
        name="limits-checks",
        title="Limits: the gateway's own timing (serial loads)",
        description=(
            "From the SQLite store of each Steerway, for the requests of each variant's serial "
            "loads (its key, started within the load; for the cache rows, with the expected "
            "cache outcome): `overhead` is the trace's gateway overhead (request start to "
            "response start, minus the provider call; for a cache hit, the whole answer), "
            "`added overhead` that minus the baseline's within the round; the checks are the "
            "decision rows' `evaluation_us`: the rate-limit check (`acquire`), the budget check "
            "(largest cost and `reserve`) and the cache decision (key hash and lookup), all "
            "before the provider call. Giving back (rate-limit release, budget settle, cache "
            "store) runs after the response starts and is in neither. p50/p99 per round, then "
            "the median over rounds."
        ),
        metrics=[
            Metric("overhead_p50", "overhead p50 µs", 0),
            Metric("added_overhead_p50", "added overhead p50 µs", 0),
            Metric("rate_p50", "rate limit p50 µs", 1),
            Metric("rate_p99", "rate limit p99 µs", 1),
            Metric("budget_p50", "budget p50 µs", 1),
            Metric("budget_p99", "budget p99 µs", 1),
            Metric("cache_p50", "cache p50 µs", 1),
            Metric("cache_p99", "cache p99 µs", 1),
        ],
        primary="overhead_p50",
        baseline=row_name(backends(redis_url)[0], VARIANTS[0]),
        row_label="variant",
        ratios=False,
    )


def baseline_rows(plan: Sequence[Backend]) -> dict[str, str]:
    """Every row -> its backend's baseline row."""
    return {
        row_name(backend, variant): row_name(backend, VARIANTS[0])
        for backend in plan
        for variant in VARIANTS
    }


def measured_values(serial: WrkResult, loaded: WrkResult) -> dict[str, float]:
    return {
        "serial_p50": serial.p50_ms,
        "serial_p99": serial.p99_ms,
        "rps": loaded.requests_per_s,
        "p50": loaded.p50_ms,
        "non_2xx": float(serial.non_2xx + loaded.non_2xx),
        "socket_errors": float(serial.socket_errors + loaded.socket_errors),
    }


def add_paired(
    result: ScenarioResult,
    baselines: Mapping[str, str],
    *,
    differences: Sequence[tuple[str, str]] = (),
    ratios: Sequence[tuple[str, str]] = (),
) -> None:
    """Compare each row with its baseline row (`baselines`: row -> baseline) round by round:
    for (value, derived) in `differences` store value - baseline's value as `derived` in the
    row's run, for `ratios` value / baseline's value. Baselines themselves get nothing."""
    for name, baseline in baselines.items():
        cell, base = result.cells.get(name), result.cells.get(baseline)
        if cell is None or base is None or name == baseline:
            continue
        for run, reference in zip(cell.runs, base.runs, strict=False):
            for key, derived in differences:
                if key in run and key in reference:
                    run[derived] = run[key] - reference[key]
            for key, derived in ratios:
                if key in run and reference.get(key, 0) > 0:
                    run[derived] = run[key] / reference[key]


def rounds_note(result: ScenarioResult) -> str | None:
    """Added serial p50 and req/s ÷ baseline of every row, round by round: how much the
    machine's noise moves them."""
    parts = []
    for name in result.cells:
        cell = result.measured(name)
        if cell is None or name.endswith(f": {BASELINE}"):
            continue
        rounds = []
        for run in cell.runs:
            added, ratio = run.get("added_p50"), run.get("rps_ratio")
            rounds.append(
                ("—" if added is None else f"{added * 1000:+.0f}")
                + " "
                + ("—" if ratio is None else f"{ratio:.2f}x")
            )
        parts.append(f"{name} {', '.join(rounds)}")
    if not parts:
        return None
    return "added serial p50 (µs) and req/s ÷ baseline by round: " + "; ".join(parts)


def drain_note(result: ScenarioResult) -> str | None:
    """How long the recorder took to catch up before the serial loads, per backend."""
    parts = []
    for backend in dict.fromkeys(name.split(": ", 1)[0] for name in result.cells):
        waits = [
            run["drain_s"]
            for name, cell in result.cells.items()
            if name.startswith(f"{backend}: ")
            for run in cell.runs
            if "drain_s" in run
        ]
        if waits:
            parts.append(
                f"{backend} median {statistics.median(waits):.1f} s, longest {max(waits):.1f} s"
            )
    if not parts:
        return None
    return (
        "before each serial load the harness waited for the gateway's recorder to write what "
        "earlier loads left in its queue: " + "; ".join(parts)
    )


def stage_checks(result: ScenarioResult) -> list[Check]:
    """The design's per-stage budget for the in-process backend, at the gateway's own p50."""
    checks = []
    for variant, prefix, what in STAGE_CHECKS:
        name = f"in-process: {variant}"
        cell = result.measured(name)
        checks.append(
            at_most(
                f"in-process {what} p50 <= {STAGE_BUDGET_US:g} µs (gateway's own timing)",
                cell.median(f"{prefix}_p50") if cell is not None else None,
                STAGE_BUDGET_US,
                " µs",
                f"{name} not measured",
            )
        )
    return checks

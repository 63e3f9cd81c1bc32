"""The scenarios: each runs every target round by round and returns a ScenarioResult."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from benchmarks.harness import Harness
from benchmarks.memory import tree_memory
from benchmarks.processes import StartupError
from benchmarks.results import Check, Metric, ScenarioResult, at_least, at_most
from benchmarks.streaming import measure_streams
from benchmarks.targets import PLAIN_MODEL, STREAM_MODEL, SteerwayOptions, Target
from benchmarks.wrk import WrkError, WrkResult, run_wrk

MOCK_HEADROOM = 4.0
"""The mock must serve at least this many times Steerway's throughput, or it is the bottleneck."""

Measure = Callable[[Target], dict[str, float]]


def load(
    harness: Harness,
    target: Target,
    *,
    connections: int,
    model: str = PLAIN_MODEL,
    duration_s: float | None = None,
) -> WrkResult:
    route = target.route(model)
    return run_wrk(
        route.url,
        headers=route.headers,
        connections=connections,
        threads=harness.options.wrk_threads,
        duration_s=duration_s or harness.options.duration_s,
        model=model,
        stream=model == STREAM_MODEL,
    )


def wrk_values(result: WrkResult) -> dict[str, float]:
    return {
        "rps": result.requests_per_s,
        "p50": result.p50_ms,
        "p99": result.p99_ms,
        "ok": float(result.ok_requests),
        "non_2xx": float(result.non_2xx),
        "socket_errors": float(result.socket_errors),
    }


def warm_up(harness: Harness, targets: list[Target], connections: int, model: str) -> None:
    """A short unrecorded load, so pools are filled and JITs are warm before round 1."""
    for target in targets:
        with contextlib.suppress(WrkError):
            load(
                harness,
                target,
                connections=connections,
                model=model,
                duration_s=harness.options.warmup_s,
            )


def run_rounds(
    harness: Harness, result: ScenarioResult, targets: list[Target], measure: Measure
) -> None:
    """Round i measures every target once, one after the other; a failed run leaves a gap."""
    for round_index in range(harness.options.runs):
        for target in targets:
            cell = result.cell(target.name)
            if cell.unavailable:
                continue
            if target.process is not None and not target.process.alive():
                cell.unavailable = f"process exited (log {target.process.log_path})"
                continue
            print(f"[bench] {result.name}: round {round_index + 1} {target.name}", flush=True)
            try:
                values = measure(target)
            except (WrkError, OSError, RuntimeError) as error:
                cell.runs.append({})
                cell.notes.append(f"round {round_index + 1}: {error}")
                continue
            cell.runs.append(values)
            bad = int(values.get("non_2xx", 0)) + int(values.get("socket_errors", 0))
            if bad:
                cell.notes.append(
                    f"round {round_index + 1}: {int(values.get('non_2xx', 0))} non-2xx, "
                    f"{int(values.get('socket_errors', 0))} socket errors"
                )


def mark_unavailable(harness: Harness, result: ScenarioResult) -> None:
    for name, reason in harness.unavailable.items():
        if name in harness.options.targets:
            result.cell(name).unavailable = reason


LATENCY = [Metric("p50", "p50 ms", 3), Metric("p99", "p99 ms", 3)]
RPS = Metric("rps", "req/s", 0)


def serial(harness: Harness) -> ScenarioResult:
    result = ScenarioResult(
        name="serial",
        title="Serial latency (1 connection, non-streaming)",
        description="wrk, 1 connection, unique prompt per request; overhead = target - direct "
        "within each round.",
        metrics=[*LATENCY, RPS],
        primary="p50",
        baseline="direct",
        overheads=[Metric("p50", "overhead p50 ms", 3), Metric("p99", "overhead p99 ms", 3)],
    )
    targets = harness.compared_targets()
    mark_unavailable(harness, result)
    warm_up(harness, targets, 1, PLAIN_MODEL)
    run_rounds(harness, result, targets, lambda t: wrk_values(load(harness, t, connections=1)))
    missing = "Steerway or direct not measured"
    p50 = result.overhead("steerway", "p50")
    result.checks += [
        at_most("serial overhead p50 <= 0.5 ms", p50, 0.5, " ms", missing),
        at_most(
            "serial overhead p99 <= 3 ms", result.overhead("steerway", "p99"), 3.0, " ms", missing
        ),
    ]
    portkey = result.overhead("portkey", "p50")
    if p50 is None or portkey is None:
        result.checks.append(Check("serial overhead p50 <= Portkey's", None, "not measured"))
    else:
        result.checks.append(
            Check(
                "serial overhead p50 <= Portkey's",
                p50 <= portkey,
                f"Steerway {p50:.3f} ms vs Portkey {portkey:.3f} ms",
            )
        )
    return result


def throughput(harness: Harness) -> ScenarioResult:
    connections = harness.options.connections
    result = ScenarioResult(
        name="throughput",
        title=f"Throughput ({connections} connections, non-streaming)",
        description=f"wrk, {connections} connections, {harness.options.wrk_threads} threads; "
        "req/s counts 2xx answers only.",
        metrics=[RPS, *LATENCY],
        primary="rps",
        baseline="direct",
    )
    targets = harness.compared_targets()
    mark_unavailable(harness, result)
    warm_up(harness, targets, connections, PLAIN_MODEL)
    run_rounds(
        harness,
        result,
        targets,
        lambda t: wrk_values(load(harness, t, connections=connections)),
    )
    result.checks += [
        at_least(
            "throughput >= 1.5x Portkey",
            result.ratio("steerway", "portkey"),
            1.5,
            "x",
            "Steerway or Portkey not measured",
        ),
        at_least(
            "throughput >= 20x LiteLLM",
            result.ratio("steerway", "litellm"),
            20.0,
            "x",
            "Steerway or LiteLLM not measured",
        ),
    ]
    headroom = result.ratio("direct", "steerway")
    check = at_least(
        f"mock >= {MOCK_HEADROOM:g}x Steerway (mock not the bottleneck)",
        headroom,
        MOCK_HEADROOM,
        "x",
        "direct or Steerway not measured",
    )
    result.checks.append(check)
    if check.passed is False:
        result.notes.append(
            f"WARNING: the mock served only {headroom:.2f}x Steerway's throughput; load generator, "
            "mock and gateway share the machine's cores, so Steerway's number is a lower bound."
        )
    return result


def streaming(harness: Harness) -> ScenarioResult:
    options = harness.options
    connections = options.connections
    result = ScenarioResult(
        name="streaming",
        title=f"Streaming ({options.stream_chunks} chunks, TTFT {options.stream_ttft_ms:g} ms)",
        description=(
            f"req/s and p50: wrk, {connections} connections, whole streams. TTFB (first body "
            f"byte) and TTFT (first content event): {options.stream_samples} streams per round "
            f"at concurrency {options.stream_concurrency} from an aiohttp client."
        ),
        metrics=[
            RPS,
            Metric("p50", "stream p50 ms", 2),
            Metric("ttfb_p50", "TTFB p50 ms", 3),
            Metric("ttfb_p99", "TTFB p99 ms", 3),
            Metric("ttft_p50", "TTFT p50 ms", 3),
        ],
        primary="rps",
        baseline="direct",
        overheads=[
            Metric("ttfb_p50", "TTFB overhead p50 ms", 3),
            Metric("ttft_p50", "TTFT overhead p50 ms", 3),
        ],
    )
    targets = harness.compared_targets()
    mark_unavailable(harness, result)
    warm_up(harness, targets, connections, STREAM_MODEL)

    def measure(target: Target) -> dict[str, float]:
        values = wrk_values(load(harness, target, connections=connections, model=STREAM_MODEL))
        route = target.route(STREAM_MODEL)
        summary = asyncio.run(
            measure_streams(
                route.url,
                headers=route.headers,
                model=STREAM_MODEL,
                count=options.stream_samples,
                concurrency=options.stream_concurrency,
            )
        )
        if summary.completed == 0:
            raise RuntimeError(f"no stream completed: {summary.first_failure}")
        if summary.failed:
            values["non_2xx"] = values.get("non_2xx", 0) + summary.failed
        values |= {
            "ttfb_p50": summary.first_byte_p50_ms,
            "ttfb_p99": summary.first_byte_p99_ms,
            "ttft_p50": summary.first_content_p50_ms,
        }
        return values

    run_rounds(harness, result, targets, measure)
    result.checks.append(
        at_most(
            "streaming TTFB overhead p50 <= 1 ms",
            result.overhead("steerway", "ttfb_p50"),
            1.0,
            " ms",
            "Steerway or direct not measured",
        )
    )
    return result


def memory(harness: Harness) -> ScenarioResult:
    result = ScenarioResult(
        name="memory",
        title="Memory after load",
        description=f"Each round loads the target with {harness.options.connections} connections "
        "for the cell duration, then reads RSS and PSS of the target and all its child processes "
        "from /proc. direct is the plain mock provider.",
        metrics=[
            Metric("rss", "RSS MiB", 1),
            Metric("pss", "PSS MiB", 1),
            Metric("processes", "processes", 0),
        ],
        primary="rss",
        baseline="direct",
    )
    targets = harness.compared_targets()
    mark_unavailable(harness, result)

    def measure(target: Target) -> dict[str, float]:
        values = wrk_values(load(harness, target, connections=harness.options.connections))
        assert target.process is not None
        usage = tree_memory(target.process.pid)
        return {
            "rss": usage.rss_mib,
            "pss": usage.pss_mib,
            "processes": usage.processes,
            "non_2xx": values["non_2xx"],
            "socket_errors": values["socket_errors"],
        }

    run_rounds(harness, result, targets, measure)
    return result


@dataclass
class Variants:
    """Steerway instances started for one scenario, stopped when it ends."""

    harness: Harness
    started: list[Target]

    def __enter__(self) -> Variants:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for target in self.started:
            if target.process is not None:
                self.harness.workspace.stop(target.process)

    def start(self, result: ScenarioResult, options: SteerwayOptions) -> Target | None:
        try:
            target = self.harness.start_variant(options)
        except (StartupError, OSError) as error:
            result.cell(options.name).unavailable = f"did not start: {error}".splitlines()[0]
            print(f"[bench] {options.name}: did not start: {error}", flush=True)
            return None
        self.started.append(target)
        return target


def scaling(harness: Harness) -> ScenarioResult:
    connections = harness.options.connections
    workers = harness.options.scaling_workers
    baseline = f"steerway-{workers[0]}w"
    result = ScenarioResult(
        name="scaling",
        title=f"Steerway worker scaling ({connections} connections, non-streaming)",
        description="One Steerway per worker count (SQLite store, in-process state); ratios "
        f"are to {baseline} within each round.",
        metrics=[RPS, *LATENCY],
        primary="rps",
        baseline=baseline,
    )
    with Variants(harness, []) as variants:
        targets: list[Target] = []
        for count in workers:
            target = variants.start(
                result, SteerwayOptions(name=f"steerway-{count}w", workers=count)
            )
            if target is not None:
                targets.append(target)
        warm_up(harness, targets, connections, PLAIN_MODEL)
        run_rounds(
            harness,
            result,
            targets,
            lambda t: wrk_values(load(harness, t, connections=connections)),
        )
    if 2 in workers:
        result.checks.append(
            at_least(
                "2 workers >= 1.7x one worker",
                result.ratio("steerway-2w", "steerway-1w"),
                1.7,
                "x",
                "1 or 2 workers not measured",
            )
        )
    return result


def redis(harness: Harness) -> ScenarioResult:
    from benchmarks.stores import StoreUnavailable, flush_redis

    connections = harness.options.connections
    result = ScenarioResult(
        name="redis",
        title=f"Steerway with Redis state ({connections} connections, non-streaming)",
        description=f"STEERWAY_REDIS_URL={harness.options.redis_url} (flushed before and after) "
        "against the default in-process state, round by round.",
        metrics=[RPS, *LATENCY],
        primary="rps",
        baseline="steerway",
        overheads=[Metric("p50", "p50 overhead ms", 3)],
    )
    try:
        flush_redis(harness.options.redis_url)
    except StoreUnavailable as error:
        result.cell("steerway-redis").unavailable = str(error)
        return result
    try:
        with Variants(harness, []) as variants:
            targets = [t for t in [harness.target("steerway")] if t is not None]
            variant = variants.start(
                result, SteerwayOptions(name="steerway-redis", redis_url=harness.options.redis_url)
            )
            if variant is not None:
                targets.append(variant)
            warm_up(harness, targets, connections, PLAIN_MODEL)
            run_rounds(
                harness,
                result,
                targets,
                lambda t: wrk_values(load(harness, t, connections=connections)),
            )
    finally:
        flush_redis(harness.options.redis_url)
    return result


def postgres(harness: Harness) -> ScenarioResult:
    from benchmarks.postgres_store import run_postgres_scenario

    return run_postgres_scenario(harness)


def soak(harness: Harness) -> ScenarioResult:
    from benchmarks.soak import SoakSettings, run_soak

    return run_soak(harness, SoakSettings())


def rules(harness: Harness) -> list[ScenarioResult]:
    from benchmarks.rules_scenario import run_rules

    return run_rules(harness)


def limits(harness: Harness) -> list[ScenarioResult]:
    from benchmarks.limits_scenario import run_limits

    return run_limits(harness)


Scenario = Callable[[Harness], ScenarioResult | list[ScenarioResult]]

SCENARIOS: dict[str, Scenario] = {
    "serial": serial,
    "throughput": throughput,
    "streaming": streaming,
    "scaling": scaling,
    "postgres": postgres,
    "redis": redis,
    "memory": memory,
    "soak": soak,
    "rules": rules,
    "limits": limits,
}


def run_scenario(
    harness: Harness, name: str, overrides: Mapping[str, Scenario] | None = None
) -> list[ScenarioResult]:
    """Run scenario `name`, which reports one result section or several; `overrides` replaces
    some (e.g. `soak` with settings from the CLI)."""
    started = time.monotonic()
    produced = {**SCENARIOS, **(overrides or {})}[name](harness)
    results = produced if isinstance(produced, list) else [produced]
    results[-1].notes.append(f"scenario wall time {time.monotonic() - started:.0f} s")
    return results

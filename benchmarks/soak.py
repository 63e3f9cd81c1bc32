"""The soak scenario: Steerway's resident memory across a long run of requests.

A fresh Steerway (one worker, SQLite store, telemetry on) first serves a warm-up, so caches,
connection pools and the recorder's queue reach their working size; its memory then is the
baseline. At saturation the queue fills to its high-water mark only after tens of thousands of
requests, so the warm-up is one slice's worth (at least `EARLY_WARMUP` requests); the memory
after the first `EARLY_WARMUP` is reported beside it. The requests that follow are sent in
equal slices, each ending on a request count (`lua/soak.lua`), and after every slice the
harness waits for the recorder to drain and reads RSS and PSS of the Steerway process tree.
The check asks every sample to stay within ±10% of the baseline.
"""

from __future__ import annotations

import subprocess
import time
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from benchmarks.harness import Harness
from benchmarks.memory import tree_memory
from benchmarks.results import Check, Metric, ScenarioResult
from benchmarks.scenarios import Variants
from benchmarks.stores import is_success, sum_samples
from benchmarks.targets import PLAIN_MODEL, SteerwayOptions, Target
from benchmarks.wrk import INSTALL_HINT, WrkError, WrkResult, parse_wrk_output, wrk_path

SCRIPT = Path(__file__).parent / "lua" / "soak.lua"
TARGET_NAME = "steerway-soak"
FLAT_TOLERANCE_PCT = 10.0
DRAIN_TIMEOUT_S = 30.0
UNOBSERVED_DRAIN_S = 2.0
"""How long to let the recorder write when `/metrics` does not expose its queue."""
SLOWEST_RATE = 50.0
"""Requests/s below which a slice gives up waiting for its count and ends on wrk's `-d`."""


EARLY_WARMUP = 5_000
"""The shortest warm-up, and the point where memory is read before the rest of it."""


@dataclass(frozen=True)
class SoakSettings:
    requests: int = 100_000
    samples: int = 10

    @property
    def warmup_requests(self) -> int:
        return max(EARLY_WARMUP, self.requests // max(1, self.samples))


@dataclass(frozen=True)
class Drift:
    """How far the memory samples moved from the post-warm-up baseline, in MiB and percent."""

    baseline: float
    final: float
    highest: float
    lowest: float
    midpoint: float
    """The sample halfway through: growth after it tells a leak from a slow settling."""

    @property
    def final_pct(self) -> float:
        return percent_change(self.baseline, self.final)

    @property
    def highest_pct(self) -> float:
        return percent_change(self.baseline, self.highest)

    @property
    def lowest_pct(self) -> float:
        return percent_change(self.baseline, self.lowest)

    @property
    def second_half_pct(self) -> float:
        return percent_change(self.midpoint, self.final)

    def within(self, tolerance_pct: float) -> bool:
        return max(abs(self.highest_pct), abs(self.lowest_pct)) <= tolerance_pct


def percent_change(baseline: float, value: float) -> float:
    if baseline <= 0:
        raise ValueError(f"baseline must be positive, got {baseline}")
    return (value - baseline) / baseline * 100.0


def split_requests(total: int, slices: int) -> list[int]:
    """`total` requests as `slices` counts differing by at most one, larger ones first."""
    if total < 1 or slices < 1:
        raise ValueError(f"need at least one request and one slice, got {total} and {slices}")
    if slices > total:
        raise ValueError(f"cannot split {total} requests into {slices} non-empty slices")
    size, extra = divmod(total, slices)
    return [size + 1 if index < extra else size for index in range(slices)]


def memory_drift(baseline: float, samples: list[float]) -> Drift:
    if not samples:
        raise ValueError("no memory sample after the baseline")
    return Drift(
        baseline=baseline,
        final=samples[-1],
        highest=max(samples),
        lowest=min(samples),
        midpoint=samples[(len(samples) - 1) // 2],
    )


def flat_memory_check(drift: Drift | None, requests: int) -> Check:
    name = (
        f"RSS within ±{FLAT_TOLERANCE_PCT:g}% of the post-warm-up baseline "
        f"across {requests:,} requests"
    )
    if drift is None:
        return Check(name, None, "Steerway soak not measured")
    return Check(
        name,
        drift.within(FLAT_TOLERANCE_PCT),
        f"baseline {drift.baseline:.1f} MiB, final {drift.final:.1f} MiB "
        f"({drift.final_pct:+.1f}%), max {drift.highest:.1f} MiB ({drift.highest_pct:+.1f}%), "
        f"min {drift.lowest:.1f} MiB ({drift.lowest_pct:+.1f}%)",
    )


def recorder_drained(exposition: str) -> bool | None:
    """Whether the recorder's queue is empty and every accepted bundle has left it.

    The depth gauge is updated when the writer takes a batch, so it reads 0 while that batch is
    still being written; the counters close the gap: every enqueued bundle must have become a
    trace row or been dropped or spilled. None when the metrics are not exposed.
    """
    depth = sum_samples(exposition, "steerway_telemetry_queue_depth")
    if depth is None:
        return None
    enqueued = sum_samples(exposition, "steerway_telemetry_enqueued_total") or 0.0
    written = sum_samples(
        exposition,
        "steerway_telemetry_rows_written_total",
        lambda labels: labels.get("table") == "traces",
    )
    settled = sum(
        sum_samples(exposition, name) or 0.0
        for name in ("steerway_telemetry_dropped_total", "steerway_telemetry_spilled_total")
    )
    if written is None:
        return depth == 0
    return depth == 0 and written + settled >= enqueued


def scrape(target: Target) -> str | None:
    if target.metrics_url is None:
        return None
    try:
        with urllib.request.urlopen(target.metrics_url, timeout=5) as response:
            text: str = response.read().decode()
    except OSError:
        return None
    return text


def wait_for_drain(target: Target) -> float | None:
    """Seconds until the recorder drained, or None if it did not within DRAIN_TIMEOUT_S."""
    started = time.monotonic()
    while time.monotonic() - started < DRAIN_TIMEOUT_S:
        text = scrape(target)
        state = None if text is None else recorder_drained(text)
        if state is None:
            time.sleep(UNOBSERVED_DRAIN_S)
            return UNOBSERVED_DRAIN_S
        if state:
            return time.monotonic() - started
        time.sleep(0.1)
    return None


def served_requests(target: Target) -> float | None:
    text = scrape(target)
    return None if text is None else sum_samples(text, "steerway_requests_total", is_success)


def wrk_argv(
    executable: str,
    url: str,
    *,
    headers: Mapping[str, str],
    connections: int,
    requests: int,
    ceiling_s: int,
    model: str,
    run_token: str,
) -> list[str]:
    """One wrk thread (the script counts responses per thread) that stops after `requests`."""
    argv = [
        executable,
        "-t1",
        f"-c{connections}",
        f"-d{ceiling_s}s",
        "--timeout=10s",
        "-s",
        str(SCRIPT),
    ]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    return [*argv, url, "--", model, "false", "16", run_token, str(requests)]


def run_counted(target: Target, connections: int, requests: int) -> WrkResult:
    executable = wrk_path()
    if executable is None:
        raise WrkError(INSTALL_HINT)
    route = target.route(PLAIN_MODEL)
    ceiling_s = max(10, round(requests / SLOWEST_RATE))
    argv = wrk_argv(
        executable,
        route.url,
        headers=route.headers,
        connections=connections,
        requests=requests,
        ceiling_s=ceiling_s,
        model=PLAIN_MODEL,
        run_token=uuid.uuid4().hex[:12],
    )
    done = subprocess.run(argv, capture_output=True, text=True, timeout=ceiling_s + 60)
    if done.returncode != 0:
        raise WrkError(f"wrk exited with {done.returncode}: {done.stderr.strip()[:300]}")
    return parse_wrk_output(done.stdout)


class Sampler:
    """Reads the memory of the soaked Steerway after the recorder drained."""

    def __init__(self, target: Target, result: ScenarioResult) -> None:
        assert target.process is not None
        self.target = target
        self.pid = target.process.pid
        self.result = result
        self.served_before = served_requests(target)

    def sample(self, label: str, wrk: WrkResult | None) -> dict[str, float]:
        drain_s = wait_for_drain(self.target)
        if drain_s is None:
            self.result.notes.append(f"{label}: recorder not drained within {DRAIN_TIMEOUT_S:g} s")
        usage = tree_memory(self.pid)
        values = {"rss": usage.rss_mib, "pss": usage.pss_mib, "processes": usage.processes}
        served_now = served_requests(self.target)
        if wrk is not None and served_now is not None and self.served_before is not None:
            values["served"] = served_now - self.served_before
        self.served_before = served_now
        if wrk is not None:
            values |= {
                "requests": float(wrk.requests),
                "ok": float(wrk.ok_requests),
                "rps": wrk.requests_per_s,
                "p99": wrk.p99_ms,
                "non_2xx": float(wrk.non_2xx),
                "socket_errors": float(wrk.socket_errors),
            }
        if drain_s is not None:
            values["drain_s"] = drain_s
        return values


def soak_result(settings: SoakSettings, connections: int) -> ScenarioResult:
    return ScenarioResult(
        name="soak",
        title=f"Steerway memory across {settings.requests:,} requests",
        description=(
            f"A fresh Steerway (1 worker, SQLite store, telemetry on) against the plain mock: "
            f"{settings.warmup_requests:,} warm-up requests, then {settings.requests:,} "
            f"non-streaming requests at {connections} connections in {settings.samples} slices "
            "that each end on a request count (one wrk thread). After the warm-up and after "
            "every slice the harness waits for the recorder to drain, then reads RSS and PSS "
            "of the Steerway process tree. `requests` is wrk's count; `served` is Steerway's "
            "own 2xx count, which also includes the requests still in flight when wrk stopped. "
            "One run, whatever `--runs` says."
        ),
        metrics=[
            Metric("requests", "requests (wrk)", 0),
            Metric("served", "served (Steerway)", 0),
            Metric("rps", "req/s", 0),
            Metric("p99", "p99 ms", 1),
            Metric("rss", "RSS MiB", 1),
            Metric("pss", "PSS MiB", 1),
            Metric("rss_change_pct", "RSS vs baseline %", 1),
        ],
        primary="rss",
        baseline="baseline",
        overheads=[Metric("rss", "RSS - baseline MiB", 1)],
        row_label="sample",
        ratios=False,
    )


def run_soak(harness: Harness, settings: SoakSettings) -> ScenarioResult:
    connections = harness.options.connections
    result = soak_result(settings, connections)
    with Variants(harness, []) as variants:
        target = variants.start(result, SteerwayOptions(name=TARGET_NAME))
        if target is None:
            result.cell("baseline").unavailable = result.cells.pop(TARGET_NAME).unavailable
            result.checks.append(flat_memory_check(None, settings.requests))
            return result
        result.cells.pop(TARGET_NAME, None)
        try:
            soak(harness, target, settings, result)
        except (WrkError, OSError, subprocess.TimeoutExpired) as error:
            result.notes.append(f"soak stopped early: {error}")
    rows = [result.cells[name].runs[0] for name in result.cells if result.cells[name].runs]
    drift = None
    if len(rows) >= 2:
        drift = memory_drift(rows[0]["rss"], [row["rss"] for row in rows[1:]])
        for row in rows:
            row["rss_change_pct"] = percent_change(drift.baseline, row["rss"])
        total = int(sum(row.get("requests", 0) for row in rows[1:]))
        result.notes.insert(
            0,
            f"RSS baseline {drift.baseline:.1f} MiB; final {drift.final:.1f} MiB "
            f"({drift.final_pct:+.1f}%); max {drift.highest:.1f} MiB ({drift.highest_pct:+.1f}%) "
            f"after {total:,} requests counted by wrk; second half "
            f"{drift.midpoint:.1f} -> {drift.final:.1f} MiB ({drift.second_half_pct:+.1f}%)",
        )
    result.checks.append(flat_memory_check(drift, settings.requests))
    return result


def soak(harness: Harness, target: Target, settings: SoakSettings, result: ScenarioResult) -> None:
    connections = harness.options.connections
    print(f"[bench] soak: warm-up of {settings.warmup_requests:,} requests", flush=True)
    run_counted(target, connections, EARLY_WARMUP)
    sampler = Sampler(target, result)
    early = sampler.sample(f"after {EARLY_WARMUP:,} warm-up requests", None)
    if settings.warmup_requests > EARLY_WARMUP:
        run_counted(target, connections, settings.warmup_requests - EARLY_WARMUP)
        baseline = sampler.sample("baseline", None)
    else:
        baseline = early
    result.cell("baseline").runs.append(baseline)
    result.notes.append(
        f"RSS after the first {EARLY_WARMUP:,} warm-up requests {early['rss']:.1f} MiB; the "
        f"baseline, after all {settings.warmup_requests:,}, is "
        f"{percent_change(early['rss'], baseline['rss']):+.1f}% from it"
    )
    done = 0
    for index, count in enumerate(split_requests(settings.requests, settings.samples), start=1):
        print(f"[bench] soak: slice {index}/{settings.samples} ({count:,} requests)", flush=True)
        wrk = run_counted(target, connections, count)
        done += wrk.requests
        label = f"after {done:,}"
        values = sampler.sample(label, wrk)
        cell = result.cell(f"slice {index}: {label}")
        cell.runs.append(values)
        bad = wrk.non_2xx + wrk.socket_errors
        if bad:
            cell.notes.append(f"{wrk.non_2xx} non-2xx, {wrk.socket_errors} socket errors")
        if target.process is not None and not target.process.alive():
            raise OSError(f"Steerway exited (log {target.process.log_path})")

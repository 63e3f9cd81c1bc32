"""The fault scenario: faults applied to a real gateway under a steady load, and what became of
every request sent meanwhile.

For each fault (`faults_catalog`), a fresh `steerway serve` (one worker) on the run's database:
a steady load of chat completions, streams and embeddings (`faults_load`) for `warm_s`, the fault
for its duration, `recovery_s` of load after it, a clean stop (SIGTERM), and a restart if spill
files are left, to replay them as the next start would. Then every answer's
`x-steerway-trace-id` is looked up in `traces`. The counts: requests sent; answers by status
and error code, during the fault and outside it; served (whole 2xx answers); recorded; spilled
(`steerway_telemetry_spilled_total` plus requests left in spill files at the stop); lost
(answers the gateway accepted whose trace has no row); answers the documentation does not allow
at that time; 500 `internal_error` answers and tracebacks in the gateway's log.

`kill -9` is not among the faults: the `durability` scenario (`crash_loss`) measures what a crash
loses in each `telemetry.durability` mode.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.faults_accounting import FaultCounts, Window, count, describe, in_flight
from benchmarks.faults_catalog import FAULTS, Fault
from benchmarks.faults_gateway import FaultGateway, FaultPhase, FaultStack, log_problems, metric
from benchmarks.faults_load import Load, LoadSettings, Outcome
from benchmarks.harness import Harness
from benchmarks.results import Check, Metric, ScenarioResult
from benchmarks.stores import StoreUnavailable
from benchmarks.targets import MockProfile, start_mock


@dataclass(frozen=True)
class FaultTiming:
    warm_s: float = 5.0
    fault_s: float = 20.0
    outage_s: float = 60.0
    """How long the database stays away in the faults that take it away."""
    recovery_s: float = 10.0
    settle_s: float = 5.0

    def duration(self, fault: Fault) -> float:
        return self.outage_s if fault.duration_option == "database" else self.fault_s


@dataclass(frozen=True)
class LoadShape:
    concurrency: int = 16
    rate: float = 200.0


@dataclass
class FaultReport:
    """What became of the requests of one gateway's run through one or more faults."""

    faults: list[Fault]
    store: str
    counts: FaultCounts
    windows: list[Window]
    spilled: int = 0
    spilled_left_at_stop: int = 0
    dropped: int = 0
    redis_errors: dict[str, int] = field(default_factory=dict)
    tracebacks: int = 0
    unhandled: int = 0
    dropped_logged: int = 0
    """Records the gateway's log says it dropped (at a stop with nowhere to write, say)."""
    spend_lost_micros: int = 0
    """Budget spend the gateway's stops could not write (logged by the budget ledger)."""
    replayed: bool = True
    stop_seconds: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    at_marks: dict[str, Counter[str]] = field(default_factory=dict)
    """For each marked moment (SIGTERM), what became of the requests in flight then."""

    @property
    def row(self) -> str:
        return f"{' + '.join(fault.name for fault in self.faults)} ({self.store})"

    @property
    def loss_windows(self) -> list[str]:
        return [fault.loss_window for fault in self.faults if fault.loss_window]

    @property
    def lost(self) -> int:
        return len(self.counts.lost) + self.counts.untraceable

    @property
    def lost_in_window(self) -> int:
        """Lost within a fault's documented window: logged and counted by the gateway."""
        if not self.loss_windows:
            return 0
        return min(len(self.counts.lost), self.dropped_logged)

    @property
    def lost_outside_window(self) -> int:
        return self.lost - self.lost_in_window

    @property
    def nothing_lost_outside_window(self) -> bool:
        return self.lost_outside_window == 0 and self.replayed


async def _apply_and_load(
    phase: FaultPhase, faults: list[Fault], timing: FaultTiming, shape: LoadShape, tag: str
) -> tuple[Load, list[Window]]:
    """Steady load throughout; each fault in turn after `warm_s` of it; `recovery_s` at the end."""
    stack, gateway = phase.stack, phase.gateway
    load = Load(
        LoadSettings(
            base_url=f"{gateway.base_url}/v1",
            keys=stack.keys,
            concurrency=shape.concurrency,
            rate=shape.rate,
            tag=tag,
        )
    )
    phase.clock = load.now
    windows = []
    await load.start()
    try:
        for fault in faults:
            await asyncio.sleep(timing.warm_s)
            start = load.now()
            load.directive = fault.directive
            if fault.begin is not None:
                await asyncio.to_thread(fault.begin, phase)
            await asyncio.sleep(timing.duration(fault))
            load.directive = None
            if fault.end is not None:
                await asyncio.to_thread(fault.end, phase)
            windows.append(Window(start, load.now(), timing.settle_s))
            await asyncio.sleep(timing.settle_s)
        await asyncio.sleep(timing.recovery_s)
    finally:
        await load.stop()
    return load, windows


def run_fault(
    stack: FaultStack, fault: Fault, timing: FaultTiming, shape: LoadShape
) -> FaultReport:
    """One fault, from a fresh gateway to the count of what it recorded."""
    return run_sequence(stack, [fault], timing, shape)


def run_sequence(
    stack: FaultStack, faults: list[Fault], timing: FaultTiming, shape: LoadShape
) -> FaultReport:
    """Faults one after the other on one fresh gateway (they must share its `GatewaySpec`)."""
    specs = {fault.gateway for fault in faults}
    if len(specs) != 1:
        raise ValueError("faults run on one gateway must share its GatewaySpec")
    (spec,) = specs
    started = time.monotonic()
    if spec.redis:
        stack.flush_redis()
    name = "-".join(fault.name for fault in faults)
    gateway = FaultGateway(stack, spec, f"{name}-{stack.store}", cooldown_period_s=timing.settle_s)
    gateway.start()
    phase = FaultPhase(stack, gateway)
    try:
        load, windows = asyncio.run(_apply_and_load(phase, faults, timing, shape, f"fault {name}"))
        gateway.stop()
        left = gateway.spill_lines()
        replayed = gateway.replay_leftovers()
    finally:
        if gateway.alive():
            gateway.stop()
        stack.database_back()
        if spec.redis:
            stack.redis_forwarder().restore()
    outcomes = load.outcomes
    save_outcomes(gateway.home / "outcomes.jsonl", outcomes)
    recorded = stack.recorded([o.trace_id for o in outcomes if o.trace_id is not None])
    handled = stack.processed([o.request_id for o in outcomes if o.status is None])
    problems = log_problems(gateway.log_path.read_text(errors="replace"))
    scrapes = gateway.scrapes
    return FaultReport(
        faults=list(faults),
        store=stack.store,
        counts=count(outcomes, recorded, list(zip(faults, windows, strict=True)), handled),
        windows=windows,
        spilled=int(metric(scrapes, "steerway_telemetry_spilled_total")) + gateway.spilled_at_stops,
        spilled_left_at_stop=left,
        dropped=int(metric(scrapes, "steerway_telemetry_dropped_total")),
        redis_errors={
            concern: int(metric(scrapes, "steerway_redis_errors_total", concern=concern))
            for concern in ("cache", "rate_limit", "budgets")
        },
        tracebacks=problems["tracebacks"],
        unhandled=problems["unhandled"],
        dropped_logged=problems["dropped_logged"],
        spend_lost_micros=problems["spend_lost_micros"],
        replayed=replayed,
        stop_seconds=gateway.stop_seconds,
        wall_s=time.monotonic() - started,
        at_marks={name: in_flight(outcomes, moment) for name, moment in phase.marks.items()},
    )


def save_outcomes(path: Path, outcomes: list[Outcome]) -> None:
    """Every request of the fault, one JSON object a line, for a closer look after the run."""
    with path.open("w") as file:
        for outcome in outcomes:
            file.write(json.dumps(dataclasses.asdict(outcome)) + "\n")


METRICS = [
    Metric("sent", "sent", 0),
    Metric("served", "served (2xx)", 0),
    Metric("to_record", "to record", 0),
    Metric("recorded", "recorded", 0),
    Metric("spilled", "spilled", 0),
    Metric("lost", "lost", 0),
    Metric("lost_outside", "lost outside a documented window", 0),
    Metric("dropped", "dropped", 0),
    Metric("unexpected", "unexpected answers", 0),
    Metric("internal_errors", "500s", 0),
    Metric("tracebacks", "tracebacks", 0),
    Metric("recovered_after", "all whole 2xx again after (s)", 1),
]


def report_values(report: FaultReport) -> dict[str, float]:
    counts = report.counts
    return {
        "sent": float(counts.sent),
        "served": float(counts.served),
        "to_record": float(counts.to_record),
        "recorded": float(counts.recorded),
        "spilled": float(report.spilled),
        "lost": float(report.lost),
        "lost_outside": float(report.lost_outside_window),
        "dropped": float(max(report.dropped, report.dropped_logged)),
        "unexpected": float(sum(counts.unexpected.values())),
        "internal_errors": float(counts.internal_errors),
        "tracebacks": float(report.tracebacks),
        "recovered_after": max(counts.recovered_after, default=0.0),
    }


def report_notes(report: FaultReport) -> list[str]:
    counts = report.counts
    spans = "; ".join(
        f"{fault.title}: from {window.start:.1f} s to {window.end:.1f} s of the load"
        for fault, window in zip(report.faults, report.windows, strict=True)
    )
    settle = report.windows[0].settle if report.windows else 0
    notes = [
        f"{report.row}: {spans} (+{settle:g} s settling). During: "
        f"{describe(counts.answers_during)}. Outside: {describe(counts.answers_outside)}."
    ]
    details = []
    if counts.not_stored_by_design:
        details.append(f"{counts.not_stored_by_design:,} refused before a key was accepted")
    if report.spilled_left_at_stop:
        details.append(
            f"{report.spilled_left_at_stop:,} left in spill files at the stop, "
            + ("replayed at the next start" if report.replayed else "NOT replayed")
        )
    if any(report.redis_errors.values()):
        details.append(
            "Redis calls failed or timed out: "
            + ", ".join(f"{n:,} {concern}" for concern, n in report.redis_errors.items())
        )
    if counts.unexpected:
        details.append(f"unexpected: {describe(counts.unexpected)}")
    if counts.mismatched:
        details.append(f"stored status differs: {describe(counts.mismatched)}")
    if report.loss_windows and report.lost:
        details.append(
            f"{report.lost_in_window:,} lost within the documented window "
            f"({'; '.join(report.loss_windows)}); the log counts {report.dropped_logged:,} "
            "dropped"
        )
    if counts.lost:
        sample = ", ".join(f"{o.trace_id} ({o.kind} {o.status})" for o in counts.lost[:5])
        details.append(f"lost: {sample}")
    if counts.untraceable:
        details.append(f"{counts.untraceable} answers without a trace id")
    for name, answers in report.at_marks.items():
        details.append(f"in flight at {name}: {sum(answers.values())} ({describe(answers)})")
    if report.spend_lost_micros:
        details.append(
            f"budget spend not written at a stop: {report.spend_lost_micros:,} micro-dollars"
        )
    if report.stop_seconds:
        details.append("SIGTERM to exit: " + ", ".join(f"{s:.1f} s" for s in report.stop_seconds))
    if report.unhandled:
        details.append(f"{report.unhandled} unhandled errors logged")
    if details:
        notes.append(f"{report.row}: " + "; ".join(details) + ".")
    return notes


def selected_faults(names: tuple[str, ...]) -> list[Fault]:
    return [fault for fault in FAULTS if not names or fault.name in names]


def run_faults(harness: Harness) -> list[ScenarioResult]:
    options = harness.options
    timing = FaultTiming(fault_s=options.fault_s, outage_s=options.outage_s)
    shape = LoadShape(concurrency=options.connections, rate=options.fault_rate)
    result = ScenarioResult(
        name="faults",
        title="Faults under load: served, recorded, spilled, lost",
        description=f"{shape.concurrency} clients, at most {shape.rate:g} requests/s in all "
        "(chat, streamed chat, embeddings, cacheable chat; virtual keys without limits, with "
        "rate limits, with a budget, and the master key). Each fault: a fresh gateway, "
        f"{timing.warm_s:g} s of load, the fault ({timing.fault_s:g} s; database faults "
        f"{timing.outage_s:g} s), {timing.settle_s + timing.recovery_s:g} s of load after it, "
        "a clean stop (SIGTERM) and, if spill files are left, a restart that replays them. "
        "sent: requests; served: whole 2xx answers; to record: answers of accepted keys; "
        "recorded: those with a trace row; spilled: requests written to spill files; lost: "
        "answers to record without a trace row; dropped: what the gateway counted or logged "
        "as dropped; unexpected: answers the documentation does not allow at that time.",
        metrics=METRICS,
        primary="lost",
        baseline="",
        row_label="fault",
        ratios=False,
    )
    reports: list[FaultReport] = []
    mock = start_mock(harness.workspace, MockProfile("faults", 1, chunks=8, chunk_interval_ms=2))
    for store in options.fault_stores:
        try:
            stack = FaultStack(
                harness.workspace,
                mock_base_url=mock.base_url,
                store=store,
                postgres_url=options.postgres_url,
                redis_url=options.redis_url,
            )
        except StoreUnavailable as error:
            result.notes.append(f"{store}: not run: {error}")
            continue
        try:
            for fault in selected_faults(options.faults):
                print(f"[bench] faults: {fault.name} ({store})", flush=True)
                report = run_fault(stack, fault, timing, shape)
                reports.append(report)
                result.cell(report.row).runs.append(report_values(report))
                result.notes.extend(report_notes(report))
        finally:
            stack.close()
    result.checks.extend(fault_checks(reports))
    return [result]


def fault_checks(reports: list[FaultReport]) -> list[Check]:
    checks = [
        Check(
            f"{report.row}: every accepted answer recorded"
            + (", or lost within its documented window" if report.loss_windows else ""),
            report.nothing_lost_outside_window,
            f"{report.counts.recorded:,} of {report.counts.to_record:,} recorded"
            + (f"; {report.lost_in_window:,} lost as documented" if report.lost_in_window else "")
            + (
                f"; {report.lost_outside_window:,} lost outside a documented window"
                if report.lost_outside_window
                else ""
            ),
        )
        for report in reports
    ]
    unexpected = {r.row: sum(r.counts.unexpected.values()) for r in reports}
    checks.append(
        Check(
            "every answer as documented for its fault",
            None if not reports else not any(unexpected.values()),
            ", ".join(f"{row}: {n}" for row, n in unexpected.items() if n) or "all",
        )
    )
    spend = {r.row: r.spend_lost_micros for r in reports}
    checks.append(
        Check(
            "no budget spend lost at a stop",
            None if not reports else not any(spend.values()),
            ", ".join(f"{row}: {n:,} micro-dollars" for row, n in spend.items() if n) or "none",
        )
    )
    failures = {r.row: (r.counts.internal_errors, r.tracebacks) for r in reports}
    checks.append(
        Check(
            "no 500 internal_error, no traceback in the gateway's log",
            None if not reports else not any(a or b for a, b in failures.values()),
            ", ".join(
                f"{row}: {a} answers 500, {b} tracebacks"
                for row, (a, b) in failures.items()
                if a or b
            )
            or "none",
        )
    )
    return checks

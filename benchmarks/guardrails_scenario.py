"""The guardrails scenario: what the guardrail checks cost, in process, in the gateway, and to the
other requests of a gateway busy with one large prompt.

1. In process (`guardrails_timing`): p50/p99 of each check over many calls: PII (1 KB with two
   values, 1 KB clean, 1 KB dense, 10 KB), prompt injection (clean, attack), a 100-word deny
   list, and the whole input stage with a `pii` mask guardrail. The issue's target: pattern PII
   on a 1 KB prompt <= 2 ms p50.
2. In the gateway (`guardrails_workload` describes the Steerways, keys and variants): in every
   round each variant gets a serial load (wrk, 1 connection) and then `--connections`, one after
   the other, each starting once every gateway's recorder has drained. All send the 1 KB prompt
   with two PII values. Two sections: end to end (wrk) against the Steerway without a
   `guardrails` section, and the gateway's own timing (its SQLite store) of the serial loads.
3. Isolation (`guardrails_isolation`): small guarded requests alone, then beside a stream of
   ~200 KB guarded prompts, round by round.
"""

from __future__ import annotations

import gc
import sqlite3
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from benchmarks.guardrails_isolation import measure_alone, measure_beside
from benchmarks.guardrails_records import read_serial_records, verdicts_note
from benchmarks.guardrails_timing import build_cases, time_case
from benchmarks.guardrails_workload import (
    BASELINE,
    CONTROL_KEY,
    GUARDED,
    INJECTION,
    INSTANCES,
    ISOLATION_KEY,
    LARGE_PROMPT,
    MAX_TOKENS,
    PII,
    PII_PROMPT,
    VARIANTS,
    Variant,
    chat_body,
    check_variant,
    injection_available,
    instance_options,
    instance_variants,
    key_target,
    nonce_token,
    variant_target,
    write_script,
)
from benchmarks.harness import Harness
from benchmarks.limits_scenario import add_paired, measured_values
from benchmarks.results import Check, Metric, ScenarioResult, at_least, at_most
from benchmarks.scenarios import Variants, run_rounds
from benchmarks.soak import DRAIN_TIMEOUT_S, scrape, wait_for_drain
from benchmarks.targets import PLAIN_MODEL, Route, Target
from benchmarks.wrk import WrkError, WrkResult, run_wrk

LOAD_SECONDS: Final = 3.0
"""Longest load per measurement (`--duration` when shorter): four variants, two loads each, and
three isolation phases per round keep the scenario near 3 minutes."""
PII_BUDGET_MS: Final = 2.0
"""The issue's target for pattern PII on a 1 KB prompt (p50)."""
PII_CHECKED_CASE: Final = "pii: 1 KB, 2 PII values"
UNSELECTED: Final = "defined, none selected"
UNSELECTED_FLOOR: Final = 0.9
"""req/s with guardrails defined but none selected, against no `guardrails` section: the same
floor as the rules scenario's, since two processes differ by this much between rounds."""
ALONE: Final = "small requests alone"
BESIDE: Final = "beside 200 KB prompts"
BESIDE_UNGUARDED: Final = "beside 200 KB prompts, no guardrail"
BACKGROUND_MARGIN_S: Final = 2.0
"""The large prompts' load outlasts the timed small requests by this much."""


def run_guardrails(harness: Harness) -> list[ScenarioResult]:
    options = harness.options
    duration_s = min(options.duration_s, LOAD_SECONDS)
    costs = check_costs_result(options.runs)
    end_to_end = end_to_end_result(options.connections, duration_s)
    records = records_result()
    isolation = isolation_result(duration_s)
    for variant in VARIANTS:
        end_to_end.cell(variant.label)
        records.cell(variant.label)
    run = GuardrailsRun(harness, end_to_end, duration_s)
    with Variants(harness, []) as variants:
        run.start(variants)
        run.measure_rounds()
        run.read_back(records)
        guarded = run.instances.get(GUARDED)
        if guarded is None:
            for row in (ALONE, BESIDE, BESIDE_UNGUARDED):
                isolation.cell(row).unavailable = "the guarded Steerway did not start"
        else:
            run_isolation(harness, guarded, isolation, duration_s, run.scripts)
    for name, cell in end_to_end.cells.items():
        if cell.unavailable and name in records.cells:
            records.cells[name].unavailable = cell.unavailable
    baselines = {variant.label: BASELINE for variant in VARIANTS}
    add_paired(
        end_to_end,
        baselines,
        differences=(("serial_p50", "added_p50"), ("serial_p99", "added_p99")),
        ratios=(("rps", "rps_ratio"),),
    )
    add_paired(records, baselines, differences=(("overhead_p50", "added_overhead_p50"),))
    add_paired(
        isolation,
        {BESIDE: ALONE, BESIDE_UNGUARDED: ALONE},
        ratios=(("p50", "p50_ratio"), ("p99", "p99_ratio")),
    )
    for note in (rounds_note(end_to_end), drain_note(end_to_end)):
        if note is not None:
            end_to_end.notes.append(note)
    end_to_end.checks.append(unselected_check(end_to_end))
    return [costs, end_to_end, records, isolation]


# --- in process -------------------------------------------------------------------------------


def check_costs_result(runs: int) -> ScenarioResult:
    cases = build_cases()
    result = ScenarioResult(
        name="guardrails-checks",
        title="Guardrails: each check in process",
        description=(
            "Each check timed call by call in a loop, after a tenth as many untimed calls; "
            "p50/p99 per round, then the median over rounds. PII is `PiiScanner()` as the "
            "gateway builds it without `ner_model` (presidio's pattern recognizers, the eight "
            "default entities, threshold 0.4); the texts are ordinary prose "
            "(`benchmarks/guardrails_workload.py`): a support request with an e-mail address "
            "and a phone number, one of the same size without PII, a contact list where most "
            "words are PII, and the first one ten times over. The deny list is 100 two-word "
            "codenames, none of them in the text. The input stage is `Guardrails.check_input` "
            "with `{kind: pii, action: mask}` over a chat payload (a system message and the "
            "support request), a fresh copy per call, as the gateway runs it for inputs under "
            "`offload_chars`. The `3 ms apart` row makes the first row's calls with a 3 ms sleep "
            "after each (outside the clock), about the pace of the serial loads below: a call "
            "after other work or an idle moment finds colder caches than one in a tight loop, "
            "and every check in the gateway is such a call. "
            + "; ".join(f"{case.label}: {case.what}, {case.iterations:,} calls" for case in cases)
            + "."
        ),
        metrics=[
            Metric("p50", "p50 µs", 1),
            Metric("p99", "p99 µs", 1),
            Metric("calls", "calls per round", 0),
        ],
        primary="p50",
        baseline=cases[0].label,
        row_label="check",
        ratios=False,
    )
    for case in cases:
        result.cell(case.label).unavailable = case.unavailable
    gc.collect()
    gc.freeze()
    try:
        for round_index in range(runs):
            for case in cases:
                if case.call is None:
                    continue
                print(f"[bench] guardrails: round {round_index + 1} {case.label}", flush=True)
                result.cell(case.label).runs.append(time_case(case).summary())
    finally:
        gc.unfreeze()
    result.checks.append(pii_check(result))
    return result


def pii_check(result: ScenarioResult) -> Check:
    cell = result.measured(PII_CHECKED_CASE)
    micros = cell.median("p50") if cell is not None else None
    return at_most(
        f"pattern PII on a 1 KB prompt p50 <= {PII_BUDGET_MS:g} ms",
        micros / 1000 if micros is not None else None,
        PII_BUDGET_MS,
        " ms",
        f"{PII_CHECKED_CASE} not measured",
    )


# --- in the gateway ---------------------------------------------------------------------------


@dataclass
class GuardrailsRun:
    """The two Steerways, the variants served by them, and when each serial load ran."""

    harness: Harness
    result: ScenarioResult
    duration_s: float
    targets: list[Target] = field(default_factory=list)
    chosen: dict[str, Variant] = field(default_factory=dict)
    instances: dict[str, Target] = field(default_factory=dict)
    windows: dict[tuple[str, int], tuple[float, float]] = field(default_factory=dict)
    """(row, round) -> epoch seconds at the start and end of its serial load."""
    scripts: dict[str, Path] = field(default_factory=dict)

    def start(self, variants: Variants) -> None:
        """Write the wrk scripts, start the Steerways, probe each variant, warm them all up."""
        folder = self.harness.workspace.root / "guardrails"
        self.scripts = {
            "small": write_script(folder, "pii-prompt", PII_PROMPT),
            "large": write_script(folder, "large-prompt", LARGE_PROMPT),
        }
        with_injection = injection_available()
        for instance in INSTANCES:
            settings = instance_options(instance, with_injection=with_injection)
            started = variants.start(self.result, settings)
            if started is None:
                reason = self.result.cells.pop(instance).unavailable
                for variant in instance_variants(instance):
                    self.result.cell(variant.label).unavailable = reason
                continue
            self.instances[instance] = started
            for variant in instance_variants(instance):
                if variant.key not in started.keys:
                    self.result.cell(
                        variant.label
                    ).unavailable = (
                        f"`{INJECTION}` not defined: the gateway has no prompt-injection check"
                    )
                    continue
                target = variant_target(started, variant)
                problem = check_variant(target, variant)
                if problem is not None:
                    self.result.cell(variant.label).unavailable = problem
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
        return run_wrk(
            route.url,
            headers=route.headers,
            connections=connections,
            threads=self.harness.options.wrk_threads,
            duration_s=duration_s,
            model=PLAIN_MODEL,
            max_tokens=MAX_TOKENS,
            script=self.scripts["small"],
        )

    def wait_for_recorders(self) -> float | None:
        """Seconds until every Steerway's recorder drained (None if one did not): another
        process writing the backlog of the previous load would slow this one down."""
        waited = 0.0
        for started in self.instances.values():
            drained = wait_for_drain(started)
            if drained is None:
                return None
            waited += drained
        return waited

    def measure(self, target: Target) -> dict[str, float]:
        """Serial then throughput load, once both recorders have drained."""
        round_index = len(self.result.cell(target.name).runs)
        drained = self.wait_for_recorders()
        began = time.time()
        serial = self.load(target, 1, self.duration_s)
        self.windows[(target.name, round_index)] = (began, time.time())
        loaded = self.load(target, self.harness.options.connections, self.duration_s)
        values = measured_values(serial, loaded)
        values["drain_s"] = DRAIN_TIMEOUT_S if drained is None else drained
        return values

    def measure_rounds(self) -> None:
        run_rounds(self.harness, self.result, self.targets, self.measure)

    def read_back(self, records: ScenarioResult) -> None:
        """The gateway's own timing of every serial load, and each Steerway's verdict counts."""
        for instance, started in self.instances.items():
            exposition = scrape(started)
            counted = verdicts_note(exposition) if exposition is not None else None
            if counted is not None:
                records.notes.append(f"{instance}: {counted}")
            if started.home is None:
                continue
            database = started.home / "steerway.db"
            for variant in instance_variants(instance):
                if variant.label not in self.chosen:
                    continue
                key_id = started.keys[variant.key].key_id
                cell = records.cell(variant.label)
                for round_index in range(self.harness.options.runs):
                    window = self.windows.get((variant.label, round_index))
                    try:
                        timings = (
                            {} if window is None else read_serial_records(database, *window, key_id)
                        )
                    except (sqlite3.Error, OSError) as error:
                        cell.notes.append(f"round {round_index + 1}: decisions not read ({error})")
                        timings = {}
                    cell.runs.append(timings)


def end_to_end_result(connections: int, duration_s: float) -> ScenarioResult:
    return ScenarioResult(
        name="guardrails",
        title="Guardrails in the gateway (Steerway, non-streaming)",
        description=(
            "Three Steerways against the plain mock with the same config, one without a "
            "`guardrails` section and two with `pii: {kind: pii, action: mask}` and "
            "`injection: {kind: prompt_injection, action: block}` defined and no default, so "
            "only a key's `--guardrails` selects them. Keys made with `steerway keys create`: "
            f"`{VARIANTS[0].label}` and `{VARIANTS[1].label}` have none and each has a process "
            "of its own (so the two compared for what unselected guardrails cost serve the same "
            f"traffic), the others share the third with `--guardrails {PII}` and `--guardrails "
            f"{PII},{INJECTION}`. Every request sends the {len(PII_PROMPT):,}-character support "
            "request with an e-mail address and a phone number behind a nonce (so each is "
            "masked on the way to the mock); a probe checks each key's `x-steerway-guardrails` "
            f"first. Each round: a serial load (wrk, 1 connection, {duration_s:g} s), then "
            f"{connections} connections ({duration_s:g} s), one variant after the other, each "
            "starting once every gateway's recorder has drained. "
            f"`added` is the row minus `{BASELINE}` and `req/s ÷ baseline` their ratio, both "
            "within each round, between two processes."
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
        baseline=BASELINE,
        row_label="variant",
        ratios=False,
    )


def records_result() -> ScenarioResult:
    return ScenarioResult(
        name="guardrails-gateway",
        title="Guardrails: the gateway's own timing (serial loads)",
        description=(
            "From each Steerway's SQLite store, for the answered requests of each variant's "
            "serial loads (its key, started within the load): `overhead` is the trace's gateway "
            "overhead (request start to response start, minus the provider call), `added "
            f"overhead` that minus `{BASELINE}`'s within the round, and `pii`/`injection` the "
            "`evaluation_us` of each guardrail's input decision (the check over every text of "
            "the request, masking included). p50/p99 per round, then the median over rounds."
        ),
        metrics=[
            Metric("overhead_p50", "overhead p50 µs", 0),
            Metric("overhead_p99", "overhead p99 µs", 0),
            Metric("added_overhead_p50", "added overhead p50 µs", 0),
            Metric(f"{PII}_p50", "pii p50 µs", 0),
            Metric(f"{PII}_p99", "pii p99 µs", 0),
            Metric(f"{INJECTION}_p50", "injection p50 µs", 0),
            Metric(f"{INJECTION}_p99", "injection p99 µs", 0),
        ],
        primary="overhead_p50",
        baseline=BASELINE,
        row_label="variant",
        ratios=False,
    )


def rounds_note(result: ScenarioResult) -> str | None:
    """req/s ÷ baseline of every row, round by round: how much the machine's noise moves it."""
    parts = []
    for name in result.cells:
        cell = result.measured(name)
        if cell is None or name == result.baseline:
            continue
        ratios = [run.get("rps_ratio") for run in cell.runs]
        parts.append(f"{name} " + ", ".join("—" if r is None else f"{r:.2f}x" for r in ratios))
    if not parts:
        return None
    return "req/s ÷ baseline by round: " + "; ".join(parts)


def drain_note(result: ScenarioResult) -> str | None:
    """How long the recorders took to catch up before the serial loads."""
    waits = [
        run["drain_s"] for cell in result.cells.values() for run in cell.runs if "drain_s" in run
    ]
    if not waits:
        return None
    return (
        "before each serial load the harness waited for every gateway's recorder to write what "
        f"earlier loads left in its queue: median {statistics.median(waits):.1f} s, longest "
        f"{max(waits):.1f} s"
    )


def unselected_check(result: ScenarioResult) -> Check:
    cell = result.measured(UNSELECTED)
    return at_least(
        f"guardrails defined, none selected: req/s >= {UNSELECTED_FLOOR:g}x no guardrails section",
        cell.median("rps_ratio") if cell is not None else None,
        UNSELECTED_FLOOR,
        "x",
        f"{UNSELECTED} or {BASELINE} not measured",
    )


# --- isolation --------------------------------------------------------------------------------


def isolation_result(duration_s: float) -> ScenarioResult:
    return ScenarioResult(
        name="guardrails-isolation",
        title="Guardrails: small requests beside large guarded prompts",
        description=(
            "On the guarded Steerway, with the `pii` key: a serial client (aiohttp) sends the "
            f"{len(PII_PROMPT):,}-character support request for {duration_s:g} s alone, then "
            f"again while wrk sends a {len(LARGE_PROMPT) / 1024:.0f} KB prompt (the support "
            "request over and over, two PII values per copy) over one connection, back to "
            "back, each round after the recorder has drained. Prompts longer than "
            "`guardrails.offload_chars` (8,192 characters by default) are checked in a worker "
            "thread. The last row is a control: the same large prompts through the Steerway's "
            "key without guardrails, so what remains there is the cost of handling such a "
            "request without its check (decoding, forwarding and recording 200 KB). Latency is "
            "the client's; `overhead` the gateway's own `x-steerway-overhead-ms`; the ratios "
            "are to the same requests alone, within each round; the last columns are wrk's "
            "count and p50 of the large prompts."
        ),
        metrics=[
            Metric("p50", "p50 ms", 3),
            Metric("p99", "p99 ms", 3),
            Metric("overhead_p50", "overhead p50 ms", 3),
            Metric("overhead_p99", "overhead p99 ms", 3),
            Metric("requests", "requests", 0),
            Metric("p50_ratio", "p50 ÷ alone", 2),
            Metric("p99_ratio", "p99 ÷ alone", 2),
            Metric("large_requests", "200 KB prompts", 0),
            Metric("large_p50", "200 KB p50 ms", 0),
        ],
        primary="p50",
        baseline=ALONE,
        row_label="small requests",
        ratios=False,
    )


def run_isolation(
    harness: Harness,
    guarded: Target,
    result: ScenarioResult,
    duration_s: float,
    scripts: dict[str, Path],
) -> None:
    route = key_target(guarded, ISOLATION_KEY, ALONE).route(PLAIN_MODEL)
    control = key_target(guarded, CONTROL_KEY, BESIDE_UNGUARDED).route(PLAIN_MODEL)
    token = nonce_token(f"iso{time.time_ns():x}")

    def small(number: int) -> bytes:
        return chat_body(PII_PROMPT, f"{token}x0x{number}")

    def large(through: Route) -> Callable[[], WrkResult]:
        return lambda: run_wrk(
            through.url,
            headers=through.headers,
            connections=1,
            threads=1,
            duration_s=duration_s + BACKGROUND_MARGIN_S,
            model=PLAIN_MODEL,
            max_tokens=MAX_TOKENS,
            timeout_s=30.0,
            script=scripts["large"],
        )

    def beside(through: Route) -> Callable[[], dict[str, float]]:
        return lambda: measure_beside(route.url, route.headers, small, duration_s, large(through))

    phases: Sequence[tuple[str, Callable[[], dict[str, float]]]] = (
        (ALONE, lambda: measure_alone(route.url, route.headers, small, duration_s)),
        (BESIDE, beside(route)),
        (BESIDE_UNGUARDED, beside(control)),
    )
    for round_index in range(harness.options.runs):
        for name, measure in phases:
            cell = result.cell(name)
            print(f"[bench] guardrails-isolation: round {round_index + 1} {name}", flush=True)
            wait_for_drain(guarded)
            try:
                values = measure()
            except (RuntimeError, OSError) as error:
                cell.runs.append({})
                cell.notes.append(f"round {round_index + 1}: {error}")
                continue
            cell.runs.append(values)
            failed = int(values.get("non_2xx", 0) + values.get("large_non_2xx", 0))
            if failed:
                cell.notes.append(f"round {round_index + 1}: {failed} failed requests")

"""The rules scenario: what 50 steering rules cost, in process and in the gateway's throughput.

1. In process: `RuleSet.evaluate` over a mix of requests (`rules_workload.sample_requests`) for
   rule sets of 0, 10, 50 and 100 rules, timed per request with and without building the
   context, the way the proxy builds it.
2. In the gateway: two Steerways with the same config, one without rules and one with the
   50-rule fixture, loaded with wrk round by round (the throughput scenario's settings). The
   requests carry tags and metadata headers, so the rules run to rule 46 and three of them match.
"""

from __future__ import annotations

import gc
import json
import urllib.error
import urllib.request
import uuid

from benchmarks.harness import Harness
from benchmarks.histograms import Histogram, read_histogram
from benchmarks.results import Check, Metric, ScenarioResult, at_least, at_most
from benchmarks.rules_timing import time_rule_set
from benchmarks.rules_workload import (
    GATEWAY_HEADERS,
    REQUESTED_MODEL,
    RULE_MODELS,
    RULE_PROVIDERS,
    build_context,
    fixture_references,
    gateway_sample,
    load_fixture,
    rule_documents,
    sample_requests,
)
from benchmarks.scenarios import LATENCY, RPS, Variants, run_rounds, wrk_values
from benchmarks.stores import SAMPLE, parse_labels, sum_samples
from benchmarks.targets import PLAIN_MODEL, STREAM_MODEL, Route, SteerwayOptions, Target
from benchmarks.wrk import WrkError, WrkResult, run_wrk
from rules.compiler import compile_rules

RULE_SET_SIZES = (0, 10, 50, 100)
CHECKED_SIZE = 50
BUDGET_US = 50.0
THROUGHPUT_FLOOR = 0.9
TIMED_REQUESTS = 20_000
WARMUP_REQUESTS = 2_000
WITHOUT_RULES = "steerway-no-rules"
WITH_RULES = "steerway-50-rules"
EVALUATION_HISTOGRAM = "steerway_rule_evaluation_seconds"


def set_label(size: int) -> str:
    return f"{size} rules"


def run_rules(harness: Harness) -> list[ScenarioResult]:
    return [evaluation_result(harness.options.runs), gateway_result(harness)]


# --- in process -------------------------------------------------------------------------------


def evaluation_result(
    runs: int,
    *,
    sizes: tuple[int, ...] = RULE_SET_SIZES,
    requests: int = TIMED_REQUESTS,
    warmup: int = WARMUP_REQUESTS,
) -> ScenarioResult:
    samples = sample_requests()
    result = ScenarioResult(
        name="rules-evaluation",
        title="Steering rules: evaluation per request, in process",
        description=(
            f"`RuleSet.evaluate` timed per request over {requests:,} requests per rule set and "
            f"round (after {warmup:,} untimed), cycling through {len(samples)} requests: "
            + ", ".join(sample.name for sample in samples)
            + ". `context + evaluate` includes building the context as the proxy does "
            "(`routing_features` + `RequestContext.from_features`); `evaluate` is the call "
            "alone. The 50-rule set is `benchmarks/rules_fixture.yaml`; 10 rules are every "
            "fifth of it, 100 add 50 per-customer rules that match none of the requests. With "
            "no rule enabled the proxy skips both steps."
        ),
        metrics=[
            Metric("p50", "context + evaluate p50 µs", 1),
            Metric("p99", "context + evaluate p99 µs", 1),
            Metric("eval_p50", "evaluate p50 µs", 1),
            Metric("eval_p99", "evaluate p99 µs", 1),
            Metric("evaluated", "rules tested (mean)", 1),
            Metric("matched", "rules matched (mean)", 2),
        ],
        primary="p50",
        baseline=set_label(0),
        row_label="rule set",
        ratios=False,
    )
    fixture = load_fixture()
    models = (*RULE_MODELS, PLAIN_MODEL, STREAM_MODEL)
    rulesets = {
        size: compile_rules(rule_documents(size, fixture), models=models, providers=RULE_PROVIDERS)
        for size in sizes
    }
    # As the gateway does after start-up: long-lived objects out of the collector's way.
    gc.collect()
    gc.freeze()
    try:
        for round_index in range(runs):
            for size in sizes:
                print(f"[bench] rules: round {round_index + 1} evaluate {size} rules", flush=True)
                timings = time_rule_set(rulesets[size], samples, requests=requests, warmup=warmup)
                result.cell(set_label(size)).runs.append(timings.summary())
    finally:
        gc.unfreeze()
    result.checks += evaluation_checks(result, CHECKED_SIZE)
    result.notes.append(
        "A tight loop keeps the rules' code and data in the CPU caches. In the gateway other "
        "work runs between two evaluations, so the same call costs more there: the gateway's "
        f"own `{EVALUATION_HISTOGRAM}` is read after the throughput rounds below."
    )
    return result


def evaluation_checks(result: ScenarioResult, size: int) -> list[Check]:
    cell = result.measured(set_label(size))
    missing = f"{size} rules not measured"
    return [
        at_most(
            f"{size} rules: context + evaluate p50 <= {BUDGET_US:g} µs",
            cell.median("p50") if cell else None,
            BUDGET_US,
            " µs",
            missing,
        ),
        at_most(
            f"{size} rules: evaluate alone p50 <= {BUDGET_US:g} µs",
            cell.median("eval_p50") if cell else None,
            BUDGET_US,
            " µs",
            missing,
        ),
    ]


# --- in the gateway ---------------------------------------------------------------------------


def rules_load(harness: Harness, target: Target, duration_s: float | None = None) -> WrkResult:
    """The throughput scenario's load, asking for REQUESTED_MODEL with tags and metadata."""
    route = target.route(PLAIN_MODEL)
    options = harness.options
    return run_wrk(
        route.url,
        headers={**route.headers, **GATEWAY_HEADERS},
        connections=options.connections,
        threads=options.wrk_threads,
        duration_s=duration_s or options.duration_s,
        model=REQUESTED_MODEL,
    )


def probe_rules(route: Route) -> tuple[int, str | None]:
    """One request like the load's: its status and the `x-steerway-rules` it came back with."""
    body = {
        "model": REQUESTED_MODEL,
        "messages": [{"role": "user", "content": f"hello probe-{uuid.uuid4().hex[:8]}"}],
        "max_tokens": 16,
    }
    request = urllib.request.Request(
        route.url,
        data=json.dumps(body).encode(),
        headers={**route.headers, **GATEWAY_HEADERS, "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers.get("x-steerway-rules")
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("x-steerway-rules")


def scrape(target: Target) -> str | None:
    if target.metrics_url is None:
        return None
    try:
        with urllib.request.urlopen(target.metrics_url, timeout=5) as response:
            text: str = response.read().decode()
    except OSError:
        return None
    return text


def gateway_notes(exposition: str) -> list[str]:
    """What the rule-carrying gateway's own metrics say about the run."""
    notes: list[str] = []
    loaded = sum_samples(exposition, "steerway_rules_loaded")
    if loaded is not None:
        notes.append(f"steerway_rules_loaded {loaded:.0f}")
    matches: dict[str, float] = {}
    for line in exposition.splitlines():
        match = SAMPLE.match(line)
        if match is not None and match.group(1) == "steerway_rule_matches_total":
            rule = parse_labels(match.group(3) or "").get("rule", "?")
            matches[rule] = matches.get(rule, 0.0) + float(match.group(4))
    if matches:
        notes.append(
            "steerway_rule_matches_total: "
            + ", ".join(f"{rule} {count:,.0f}" for rule, count in sorted(matches.items()))
        )
    return notes


def in_gateway_check(histogram: Histogram | None) -> Check:
    """p50 of `evaluate` as the gateway itself timed it under load, from its histogram."""
    name = f"50 rules in the gateway under load: evaluate p50 <= {BUDGET_US:g} µs"
    if histogram is None:
        return Check(name, None, f"{EVALUATION_HISTOGRAM} not read")
    try:
        share = histogram.share_within(BUDGET_US / 1e6)
    except ValueError:
        return Check(name, None, f"{EVALUATION_HISTOGRAM} has no {BUDGET_US:g} µs bucket")
    median = histogram.quantile_bucket(0.5)
    if share is None or median is None:
        return Check(name, None, f"{EVALUATION_HISTOGRAM} has no observation")
    lower, upper = (bound * 1e6 for bound in median)
    return Check(
        name,
        share >= 0.5,
        f"{share:.1%} of {histogram.count:,.0f} evaluations took <= {BUDGET_US:g} µs; "
        f"p50 in ({lower:g}, {upper:g}] µs ({EVALUATION_HISTOGRAM}, warm-up and every round)",
    )


def gateway_result(harness: Harness) -> ScenarioResult:
    options = harness.options
    connections = options.connections
    fixture = tuple(load_fixture())
    references = fixture_references()
    expected = compile_rules(
        fixture, models=(*RULE_MODELS, PLAIN_MODEL, STREAM_MODEL), providers=RULE_PROVIDERS
    ).evaluate(build_context(gateway_sample()))
    result = ScenarioResult(
        name="rules",
        title=f"Steerway with 50 steering rules ({connections} connections, non-streaming)",
        description=(
            f"Two Steerways with the same config (the bench models plus {', '.join(RULE_MODELS)}, "
            f"all served by the plain mock), one with no rules and one with the 50 rules of "
            f"`benchmarks/rules_fixture.yaml`, loaded one after the other in each round: wrk, "
            f"{connections} connections, {options.wrk_threads} threads, model `{REQUESTED_MODEL}`, "
            + ", ".join(f"`{name}: {value}`" for name, value in GATEWAY_HEADERS.items())
            + f". With the rules, {expected.evaluated} are tested per request and "
            f"{len(expected.matched)} match ({', '.join(expected.rule_ids)}), so each request "
            f"also records a `rules` span and {len(expected.matched) + 1} `rule_evaluation` "
            "decisions."
        ),
        metrics=[RPS, *LATENCY],
        primary="rps",
        baseline=WITHOUT_RULES,
        overheads=[Metric("p50", "p50 overhead ms", 3)],
    )
    with Variants(harness, []) as variants:
        targets: list[Target] = []
        for variant in (
            SteerwayOptions(name=WITHOUT_RULES, models=RULE_MODELS, config=references),
            SteerwayOptions(name=WITH_RULES, models=RULE_MODELS, rules=fixture, config=references),
        ):
            target = variants.start(result, variant)
            if target is None:
                continue
            status, matched = probe_rules(target.route(PLAIN_MODEL))
            if status != 200:
                result.cell(target.name).unavailable = f"probe answered HTTP {status}"
                continue
            result.cell(target.name).notes.append(f"probe: x-steerway-rules {matched or 'absent'}")
            targets.append(target)
        for target in targets:
            try:
                rules_load(harness, target, duration_s=options.warmup_s)
            except WrkError as error:
                print(f"[bench] {target.name}: warm-up failed: {error}", flush=True)
        run_rounds(harness, result, targets, lambda t: wrk_values(rules_load(harness, t)))
        ruled = next((t for t in targets if t.name == WITH_RULES), None)
        exposition = scrape(ruled) if ruled is not None else None
    histogram = None
    if exposition is not None:
        result.cell(WITH_RULES).notes += gateway_notes(exposition)
        histogram = read_histogram(exposition, EVALUATION_HISTOGRAM)
    note = rounds_note(result)
    if note is not None:
        result.notes.append(note)
    result.checks += [in_gateway_check(histogram), throughput_check(result)]
    return result


def rounds_note(result: ScenarioResult) -> str | None:
    """req/s of both Steerways and their ratio, round by round: how much the machine's noise
    moves the comparison."""
    without, with_rules = result.measured(WITHOUT_RULES), result.measured(WITH_RULES)
    if without is None or with_rules is None:
        return None
    rounds = []
    for index, (a, b) in enumerate(
        zip(without.values("rps"), with_rules.values("rps"), strict=False), start=1
    ):
        if a > 0 and b > 0:
            rounds.append(f"round {index}: {a:,.0f} vs {b:,.0f} ({b / a:.2f}x)")
        else:
            rounds.append(f"round {index}: not measured")
    return "req/s without vs with rules, " + "; ".join(rounds)


def throughput_check(result: ScenarioResult) -> Check:
    return at_least(
        f"throughput with 50 rules >= {THROUGHPUT_FLOOR:g}x without",
        result.ratio(WITH_RULES, WITHOUT_RULES),
        THROUGHPUT_FLOOR,
        "x",
        "Steerway with or without rules not measured",
    )

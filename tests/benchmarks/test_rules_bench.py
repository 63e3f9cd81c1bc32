"""The rules scenario's pure logic: rule sets, the request mix, summaries, histograms, checks."""

from __future__ import annotations

from typing import cast

import pytest

from benchmarks.harness import Harness
from benchmarks.histograms import Histogram, read_histogram
from benchmarks.processes import ManagedProcess
from benchmarks.results import Cell, ScenarioResult
from benchmarks.rules_scenario import (
    WITH_RULES,
    evaluation_checks,
    gateway_notes,
    in_gateway_check,
    rounds_note,
    set_label,
    throughput_check,
)
from benchmarks.rules_timing import Timings, time_rule_set
from benchmarks.rules_workload import (
    GATEWAY_HEADERS,
    RULE_MODELS,
    RULE_PROVIDERS,
    build_context,
    customer_rules,
    gateway_sample,
    load_fixture,
    rule_documents,
    sample_requests,
    spread,
)
from benchmarks.scenarios import run_scenario
from benchmarks.targets import (
    MockProfile,
    Mocks,
    RunningMock,
    SteerwayOptions,
    steerway_config,
)
from rules.compiler import compile_rules
from rules.engine import RuleSet

MODELS = (*RULE_MODELS, "bench-model", "bench-stream")

EXPOSITION = """\
# HELP steerway_rule_evaluation_seconds Time to evaluate the steering rules for one request.
# TYPE steerway_rule_evaluation_seconds histogram
steerway_rule_evaluation_seconds_bucket{le="5e-06"} 0.0
steerway_rule_evaluation_seconds_bucket{le="2.5e-05"} 10.0
steerway_rule_evaluation_seconds_bucket{le="5e-05"} 40.0
steerway_rule_evaluation_seconds_bucket{le="0.0001"} 90.0
steerway_rule_evaluation_seconds_bucket{le="+Inf"} 100.0
steerway_rule_evaluation_seconds_count 100.0
steerway_rule_evaluation_seconds_sum 0.0071
steerway_rules_loaded 50.0
steerway_rule_matches_total{rule="short-prompts-to-mini"} 1200.0
steerway_rule_matches_total{rule="cap-free-tier-output"} 1200.0
steerway_rule_matches_created{rule="cap-free-tier-output"} 1.7e9
"""


def compiled(size: int) -> RuleSet:
    return compile_rules(rule_documents(size), models=MODELS, providers=RULE_PROVIDERS)


def test_fixture_is_fifty_valid_rules_with_unique_ids() -> None:
    fixture = load_fixture()
    assert len(fixture) == 50
    assert len({rule["id"] for rule in fixture}) == 50
    assert compiled(50).active == 50


def test_smaller_sets_are_spread_over_the_fixture_and_larger_ones_add_customers() -> None:
    letters = [{"id": letter} for letter in "abcdefghij"]
    assert [d["id"] for d in spread(letters, 5)] == ["a", "c", "e", "g", "i"]
    assert [d["id"] for d in spread(letters, 3)] == ["a", "d", "g"]
    assert spread(letters, 0) == []
    assert spread(letters, 12) == letters
    with pytest.raises(ValueError):
        spread(letters, -1)
    for size in (0, 10, 50, 100):
        assert len(compiled(size)) == size


def test_customer_rules_match_none_of_the_benchmark_requests() -> None:
    ruleset = compiled(100)
    extra = {rule["id"] for rule in customer_rules(50)}
    assert len(extra) == 50
    for sample in [*sample_requests(), gateway_sample()]:
        evaluation = ruleset.evaluate(build_context(sample))
        assert not extra & set(evaluation.rule_ids), sample.name


def test_the_mix_exercises_the_rules_without_being_refused() -> None:
    ruleset = compiled(50)
    evaluations = {s.name: ruleset.evaluate(build_context(s)) for s in sample_requests()}
    assert all(e.deny is None for e in evaluations.values())
    assert sum(1 for e in evaluations.values() if e.route is not None) >= 4
    assert any(len(e.matched) > 1 for e in evaluations.values())
    assert any(e.evaluated >= 45 for e in evaluations.values())


def test_gateway_load_runs_most_rules_and_is_routed_not_refused() -> None:
    evaluation = compiled(50).evaluate(build_context(gateway_sample()))
    assert evaluation.deny is None
    assert evaluation.route is not None and evaluation.route.model == "gpt-4o-mini"
    assert evaluation.evaluated > 40
    assert len(evaluation.matched) >= 2
    assert GATEWAY_HEADERS["x-steerway-tags"] == "team-search"


def test_timing_counts_every_request_and_what_the_rules_did() -> None:
    samples = sample_requests()
    ruleset = compiled(50)
    timings = time_rule_set(ruleset, samples, requests=len(samples) * 2, warmup=3)
    assert len(timings.total_ns) == len(timings.evaluate_ns) == len(samples) * 2
    assert all(t >= e >= 0 for t, e in zip(timings.total_ns, timings.evaluate_ns, strict=True))
    expected = [ruleset.evaluate(build_context(s)) for s in samples]
    assert timings.evaluated == 2 * sum(e.evaluated for e in expected)
    assert timings.matched == 2 * sum(len(e.matched) for e in expected)
    with pytest.raises(ValueError):
        time_rule_set(ruleset, [], requests=1, warmup=0)


def test_summary_is_in_microseconds_with_means_per_request() -> None:
    timings = Timings(
        total_ns=[1000 * v for v in range(1, 101)],
        evaluate_ns=[500 * v for v in range(1, 101)],
        evaluated=4600,
        matched=250,
    )
    summary = timings.summary()
    assert (summary["p50"], summary["p99"]) == (50.0, 99.0)
    assert (summary["eval_p50"], summary["eval_p99"]) == (25.0, 49.5)
    assert (summary["evaluated"], summary["matched"]) == (46.0, 2.5)
    with pytest.raises(ValueError):
        Timings().summary()


def test_histogram_share_and_median_bucket() -> None:
    histogram = read_histogram(EXPOSITION, "steerway_rule_evaluation_seconds")
    assert histogram is not None
    assert histogram.count == 100.0
    assert histogram.share_within(5e-05) == 0.4
    assert histogram.quantile_bucket(0.5) == (5e-05, 0.0001)
    assert histogram.quantile_bucket(0.1) == (5e-06, 2.5e-05)
    with pytest.raises(ValueError):
        histogram.share_within(7e-05)
    assert read_histogram(EXPOSITION, "steerway_missing_seconds") is None
    assert Histogram(((float("inf"), 0.0),)).quantile_bucket(0.5) is None


def test_in_gateway_check_passes_only_when_half_the_evaluations_fit() -> None:
    slow = read_histogram(EXPOSITION, "steerway_rule_evaluation_seconds")
    check = in_gateway_check(slow)
    assert check.verdict == "MISS"
    assert "40.0% of 100 evaluations" in check.detail
    assert "p50 in (50, 100] µs" in check.detail
    fast = Histogram(((2.5e-05, 30.0), (5e-05, 60.0), (float("inf"), 100.0)))
    assert in_gateway_check(fast).verdict == "PASS"
    assert in_gateway_check(None).verdict == "n/a"
    no_bound = Histogram(((1e-05, 1.0), (float("inf"), 2.0)))
    assert in_gateway_check(no_bound).verdict == "n/a"


def test_gateway_notes_read_loaded_rules_and_matches() -> None:
    notes = gateway_notes(EXPOSITION)
    assert notes[0] == "steerway_rules_loaded 50"
    assert notes[1] == (
        "steerway_rule_matches_total: cap-free-tier-output 1,200, short-prompts-to-mini 1,200"
    )


def evaluation(p50s: dict[int, float]) -> ScenarioResult:
    result = ScenarioResult("rules-evaluation", "", "", [], "p50", set_label(0))
    for size, p50 in p50s.items():
        result.cells[set_label(size)] = Cell(
            set_label(size), [{"p50": p50, "eval_p50": p50 - 10}] * 3
        )
    return result


def test_evaluation_checks_use_the_fifty_rule_medians() -> None:
    checks = evaluation_checks(evaluation({0: 5.0, 50: 55.0}), 50)
    assert [c.verdict for c in checks] == ["MISS", "PASS"]
    assert checks[0].detail == "55.000 µs (need <= 50 µs)"
    assert [c.verdict for c in evaluation_checks(evaluation({0: 5.0}), 50)] == ["n/a", "n/a"]


def test_throughput_check_is_the_paired_ratio() -> None:
    result = ScenarioResult("rules", "", "", [], "rps", "steerway-no-rules")
    result.cells["steerway-no-rules"] = Cell("steerway-no-rules", [{"rps": 1000}, {"rps": 800}])
    result.cells[WITH_RULES] = Cell(WITH_RULES, [{"rps": 950}, {"rps": 700}])
    check = throughput_check(result)
    assert check.passed is True
    assert check.detail.startswith("0.91x")
    result.cells[WITH_RULES].runs = [{"rps": 850}, {"rps": 700}]
    assert throughput_check(result).passed is False


def test_config_of_a_variant_carries_its_models_and_rules() -> None:
    def mock(name: str, port: int) -> RunningMock:
        return RunningMock(MockProfile(name, 1), port, cast(ManagedProcess, None))

    mocks = Mocks(plain=mock("plain", 1), stream=mock("stream", 2))
    plain = steerway_config(mocks)
    assert set(cast(dict[str, object], plain["models"])) == {"bench-model", "bench-stream"}
    assert "rules" not in plain
    options = SteerwayOptions(models=("gpt-4o",), rules=({"id": "r", "then": {"tag": "x"}},))
    config = steerway_config(mocks, options)
    models = cast(dict[str, list[dict[str, str]]], config["models"])
    assert models["gpt-4o"] == [{"provider": "mock", "model": "mock-gpt"}]
    assert config["rules"] == [{"id": "r", "then": {"tag": "x"}}]


def test_a_scenario_may_report_several_sections() -> None:
    first = ScenarioResult("a", "", "", [], "p50", "x")
    second = ScenarioResult("b", "", "", [], "p50", "x")
    harness = cast(Harness, None)
    results = run_scenario(harness, "pair", {"pair": lambda _: [first, second]})
    assert results == [first, second]
    assert first.notes == []
    assert second.notes[0].startswith("scenario wall time")
    assert run_scenario(harness, "one", {"one": lambda _: first}) == [first]


def test_rounds_note_shows_each_rounds_ratio_and_gaps() -> None:
    result = ScenarioResult("rules", "", "", [], "rps", "steerway-no-rules")
    result.cells["steerway-no-rules"] = Cell("steerway-no-rules", [{"rps": 1000}, {"rps": 900}])
    result.cells[WITH_RULES] = Cell(WITH_RULES, [{"rps": 950}, {}])
    assert rounds_note(result) == (
        "req/s without vs with rules, round 1: 1,000 vs 950 (0.95x); round 2: not measured"
    )
    del result.cells[WITH_RULES]
    assert rounds_note(result) is None

"""The durability scenario's pure logic: its cases, the values of a crash, the no-loss check, and
the option that runs another checkout's code."""

from __future__ import annotations

from pathlib import Path

from benchmarks.cli import ALL_SCENARIOS, build_parser
from benchmarks.crash_loss import CrashCase, CrashOutcome, all_cases
from benchmarks.durability_scenario import crash_values, no_loss_check
from benchmarks.results import ScenarioResult


def test_every_mode_store_and_writer_state_is_a_case() -> None:
    cases = all_cases()
    assert len(cases) == len({case.name for case in cases}) == 8
    assert CrashCase("postgres", "spill-first", "behind") in cases
    assert {case.store for case in all_cases(("sqlite",))} == {"sqlite"}
    assert CrashCase("sqlite", "memory", "keeps up").slug == "crash-memory-sqlite-keeps-up"


def test_a_crash_is_reported_as_lost_answers_and_seconds_of_traffic() -> None:
    outcome = CrashOutcome(served=1000, recorded=800, cut=12, burst_s=2.0)
    values = crash_values(outcome)
    assert outcome.lost == 200
    assert values == {
        "served": 1000.0,
        "recorded": 800.0,
        "lost": 200.0,
        "lost_s": 0.4,
        "rate": 500.0,
    }


def test_spill_first_passes_only_when_no_served_answer_is_lost() -> None:
    case = CrashCase("sqlite", "spill-first", "behind")
    result = ScenarioResult("crash-loss", "t", "d", [], "lost", "", ratios=False)
    assert no_loss_check(result, case).passed is None
    result.cell(case.name).runs.append({"served": 1000.0, "lost": 0.0})
    assert no_loss_check(result, case).passed is True
    result.cell(case.name).runs.append({"served": 1003.0, "lost": 1.0})
    check = no_loss_check(result, case)
    assert check.passed is False
    assert check.detail == "0 of 1000 lost, 1 of 1003 lost"


def test_durability_is_a_scenario_with_a_baseline_source_option(tmp_path: Path) -> None:
    assert "durability" in ALL_SCENARIOS
    args = build_parser().parse_args(["durability", "--baseline-source", str(tmp_path)])
    assert args.baseline_source == str(tmp_path)

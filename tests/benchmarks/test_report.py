"""Round-paired statistics, the result tables and the README section rewrite."""

from __future__ import annotations

from benchmarks.report import README_END, README_START, replace_marked_section, scenario_table
from benchmarks.results import Cell, Metric, ScenarioResult, at_least, at_most
from benchmarks.stats import paired_difference, paired_ratio, percentile


def throughput_result() -> ScenarioResult:
    result = ScenarioResult(
        name="throughput",
        title="Throughput",
        description="",
        metrics=[Metric("rps", "req/s", 0), Metric("p50", "p50 ms", 2)],
        primary="rps",
        baseline="direct",
        overheads=[Metric("p50", "overhead p50 ms", 2)],
    )
    result.cells["direct"] = Cell(
        "direct", [{"rps": 10000, "p50": 1.0}, {"rps": 8000, "p50": 1.2}, {"rps": 9000, "p50": 1.1}]
    )
    result.cells["steerway"] = Cell(
        "steerway",
        [{"rps": 5000, "p50": 1.5}, {"rps": 2000, "p50": 2.0}, {"rps": 4500, "p50": 1.4}],
    )
    result.cells["litellm"] = Cell("litellm", unavailable="not installed: pip failed")
    return result


def test_ratios_and_overheads_are_paired_within_rounds() -> None:
    result = throughput_result()
    # per-round ratios 0.5, 0.25, 0.5: the median of ratios, not the ratio of medians (4500/9000)
    assert result.ratio("steerway", "direct") == 0.5
    assert result.overhead("steerway", "p50") == 0.5
    assert result.ratio("litellm", "direct") is None


def test_a_failed_round_is_skipped_not_zeroed() -> None:
    assert paired_ratio([10.0, float("nan"), 30.0], [5.0, 5.0, 10.0]) == 2.5
    assert paired_difference([2.0, 3.0], [1.0, 1.0]) == 1.5
    assert paired_ratio([], []) is None


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([7.0], 99) == 7.0


def test_table_shows_medians_ratios_and_why_a_target_is_missing() -> None:
    table = scenario_table(throughput_result())
    lines = table.splitlines()
    assert lines[0].startswith("| target | req/s | p50 ms | overhead p50 ms | req/s ÷ direct")
    steerway = next(line for line in lines if line.startswith("| steerway |"))
    assert "| 4,500 | 1.50 | 0.50 | 0.50x | — |" in steerway
    assert "0.50x" in steerway
    assert any("not installed: pip failed" in line for line in lines)


def test_checks_pass_miss_and_not_measured() -> None:
    assert at_least("x", 2.0, 1.5, "x", "missing").verdict == "PASS"
    assert at_most("y", 0.7, 0.5, " ms", "missing").verdict == "MISS"
    check = at_least("z", None, 1.0, "x", "Portkey not measured")
    assert (check.verdict, check.detail) == ("n/a", "Portkey not measured")


def test_readme_section_is_replaced_in_place_or_appended() -> None:
    original = f"# Bench\n\nintro\n\n{README_START}\nold table\n{README_END}\n\n## After\n"
    updated = replace_marked_section(original, "new table")
    assert "old table" not in updated
    assert f"{README_START}\nnew table\n{README_END}" in updated
    assert updated.endswith("## After\n")
    appended = replace_marked_section("# Bench\n", "first")
    assert appended == f"# Bench\n\n{README_START}\nfirst\n{README_END}\n"

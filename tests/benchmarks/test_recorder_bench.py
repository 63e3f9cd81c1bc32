"""The recorder scenario's checks and notes, from the figures a run would have gathered."""

from __future__ import annotations

from benchmarks.recorder_scenario import checks, worst_since_start
from benchmarks.results import Metric, ScenarioResult


def result_with(rows: dict[str, list[dict[str, float]]]) -> ScenarioResult:
    result = ScenarioResult(
        name="recorder",
        title="t",
        description="d",
        metrics=[Metric("rps", "req/s", 0)],
        primary="rps",
        baseline="direct",
    )
    for name, runs in rows.items():
        result.cell(name).runs = runs
    return result


def test_checks_take_the_median_round_and_compare_with_the_baseline_checkout() -> None:
    result = result_with(
        {
            "steerway-pg": [
                {"rps": 1000.0, "tail": 3.0, "lag_ms": 10.0, "lag_worst_since_start_ms": 41.5},
                {"rps": 1000.0, "tail": 5.0, "lag_ms": 50.0, "lag_worst_since_start_ms": 12.0},
                {"rps": 1000.0, "tail": 3.5, "lag_ms": 20.0},
            ],
            "steerway-before-pg": [{"rps": 1100.0}, {"rps": 900.0}, {"rps": 1000.0}],
        }
    )
    found = {check.name: check for check in checks(result, "-pg", compare=True)}
    assert found["steerway-pg: p99 <= 4x p50"].passed is True
    assert found["steerway-pg: event-loop lag at saturation <= 20 ms (median round)"].passed
    assert found["steerway-pg: req/s >= before"].passed is True
    assert worst_since_start(result, "-pg") == ["steerway-pg: worst loop lag since start 41.5 ms"]


def test_a_run_without_lag_figures_reports_the_lag_check_as_not_measured() -> None:
    result = result_with({"steerway": [{"rps": 900.0, "tail": 6.0}]})
    found = {check.name: check for check in checks(result, "", compare=False)}
    assert found["steerway: p99 <= 4x p50"].passed is False
    lag = found["steerway: event-loop lag at saturation <= 20 ms (median round)"]
    assert lag.passed is None
    assert "steerway: req/s >= before" not in found
    assert worst_since_start(result, "") == []
    assert checks(result_with({}), "", compare=True) == []

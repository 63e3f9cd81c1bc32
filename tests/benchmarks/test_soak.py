"""The soak scenario's pure logic: slicing, drift from the baseline, the check and drain state."""

from __future__ import annotations

import pytest

from benchmarks.report import scenario_table
from benchmarks.soak import (
    EARLY_WARMUP,
    SCRIPT,
    SoakSettings,
    flat_memory_check,
    memory_drift,
    percent_change,
    recorder_drained,
    soak_result,
    split_requests,
    wrk_argv,
)


def test_requests_split_into_equal_slices_that_add_up() -> None:
    assert split_requests(100_000, 10) == [10_000] * 10
    assert split_requests(10, 3) == [4, 3, 3]
    assert sum(split_requests(99_999, 7)) == 99_999


@pytest.mark.parametrize(
    ("requests", "samples", "warmup"),
    [(100_000, 10, 10_000), (1_000_000, 10, 100_000), (20_000, 10, EARLY_WARMUP)],
)
def test_the_warm_up_is_a_slices_worth_and_never_less_than_the_early_sample(
    requests: int, samples: int, warmup: int
) -> None:
    """The recorder's queue fills to its mark only after tens of thousands of requests at
    saturation: a warm-up that ends earlier would count that fill as growth."""
    assert SoakSettings(requests=requests, samples=samples).warmup_requests == warmup


@pytest.mark.parametrize(("total", "slices"), [(0, 1), (5, 0), (3, 4)])
def test_impossible_splits_are_refused(total: int, slices: int) -> None:
    with pytest.raises(ValueError):
        split_requests(total, slices)


def test_drift_is_measured_against_the_baseline_not_the_first_sample() -> None:
    drift = memory_drift(200.0, [210.0, 230.0, 190.0, 205.0])
    assert (drift.final, drift.highest, drift.lowest) == (205.0, 230.0, 190.0)
    assert drift.final_pct == pytest.approx(2.5)
    assert drift.highest_pct == pytest.approx(15.0)
    assert drift.lowest_pct == pytest.approx(-5.0)
    assert drift.midpoint == 230.0
    assert drift.second_half_pct == pytest.approx((205.0 - 230.0) / 230.0 * 100)


def test_a_plateau_after_early_growth_shows_in_the_second_half() -> None:
    drift = memory_drift(130.0, [153.0, 161.0, 161.5, 161.5, 161.5, 161.5])
    assert drift.midpoint == 161.5
    assert drift.second_half_pct == pytest.approx(0.0)
    assert not drift.within(10.0)


def test_percent_change_needs_a_positive_baseline() -> None:
    assert percent_change(100.0, 90.0) == pytest.approx(-10.0)
    with pytest.raises(ValueError):
        percent_change(0.0, 1.0)
    with pytest.raises(ValueError):
        memory_drift(100.0, [])


def test_check_passes_only_when_every_sample_stays_within_ten_percent() -> None:
    flat = flat_memory_check(memory_drift(100.0, [104.0, 109.9, 101.0]), 100_000)
    assert flat.passed is True
    assert "100,000 requests" in flat.name
    assert "final 101.0 MiB (+1.0%)" in flat.detail
    assert "max 109.9 MiB (+9.9%)" in flat.detail

    peak_then_release = flat_memory_check(memory_drift(100.0, [112.0, 101.0]), 100_000)
    assert peak_then_release.passed is False

    shrunk = flat_memory_check(memory_drift(100.0, [89.0, 95.0]), 100_000)
    assert shrunk.passed is False

    assert flat_memory_check(None, 100_000).verdict == "n/a"


def exposition(depth: float, enqueued: float, traces: float, dropped: float = 0.0) -> str:
    return "\n".join(
        [
            "# TYPE steerway_telemetry_queue_depth gauge",
            f"steerway_telemetry_queue_depth {depth}",
            f"steerway_telemetry_enqueued_total {enqueued}",
            f"steerway_telemetry_dropped_total {dropped}",
            f'steerway_telemetry_rows_written_total{{table="traces"}} {traces}',
            f'steerway_telemetry_rows_written_total{{table="ai_interactions"}} {traces * 2}',
        ]
    )


def test_recorder_is_drained_when_the_queue_is_empty_and_every_bundle_is_written() -> None:
    assert recorder_drained(exposition(0, 500, 500)) is True
    assert recorder_drained(exposition(12, 500, 488)) is False
    assert recorder_drained(exposition(0, 500, 244)) is False, "a batch is still being written"
    assert recorder_drained(exposition(0, 500, 490, dropped=10)) is True
    assert recorder_drained("steerway_requests_total 3.0\n") is None


def test_wrk_runs_one_thread_with_the_request_budget_last() -> None:
    argv = wrk_argv(
        "/usr/bin/wrk",
        "http://127.0.0.1:9/v1/chat/completions",
        headers={"Authorization": "Bearer sk-x"},
        connections=32,
        requests=10_000,
        ceiling_s=200,
        model="bench-model",
        run_token="abc",
    )
    assert argv[1:4] == ["-t1", "-c32", "-d200s"]
    assert argv[argv.index("-s") + 1] == str(SCRIPT)
    assert argv[argv.index("-H") + 1] == "Authorization: Bearer sk-x"
    assert argv[argv.index("--") :] == ["--", "bench-model", "false", "16", "abc", "10000"]
    assert SCRIPT.exists()


def test_soak_table_has_sample_rows_and_no_ratio_columns() -> None:
    result = soak_result(SoakSettings(requests=20, samples=2), connections=32)
    result.cell("baseline").runs.append({"rss": 100.0, "pss": 90.0, "rss_change_pct": 0.0})
    result.cell("slice 1: after 10").runs.append(
        {"requests": 10, "served": 12, "rps": 5, "rss": 103.0, "pss": 92.0, "rss_change_pct": 3.0}
    )
    header, _, baseline, slice_row = scenario_table(result).splitlines()
    assert header.startswith("| sample |")
    assert "÷" not in header
    assert baseline.startswith("| baseline | — |")
    assert slice_row.split(" | ")[-2:] == ["3.0", "3.0 |"]

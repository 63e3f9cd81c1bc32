"""The tail scenario's pure logic: its Steerways' config, the lag window, granian's argv, checks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import cast

import pytest
import yaml

from benchmarks.histograms import read_histogram
from benchmarks.memory import parse_stat_cpu_ticks, tree_cpu_seconds
from benchmarks.processes import ManagedProcess
from benchmarks.results import ScenarioResult
from benchmarks.tail_scenario import (
    METRICS,
    OVERHEADS,
    add_peer_ratios,
    baseline_stores,
    before_after_notes,
    checks,
)
from benchmarks.tail_workload import (
    KEY,
    LAG_HISTOGRAM,
    Store,
    lag_values,
    lag_window,
    tail_options,
    variant_name,
    worst_lag_ms,
)
from benchmarks.targets import (
    APP_FACTORY,
    MockProfile,
    Mocks,
    RunningMock,
    SteerwayOptions,
    granian_argv,
    steerway_config,
)
from gateway.config.file import GatewayConfig, load_config


def exposition(counts: dict[str, float], worst: float = 0.03) -> str:
    lines = [f"# TYPE {LAG_HISTOGRAM} histogram"]
    lines += [f'{LAG_HISTOGRAM}_bucket{{le="{le}"}} {n}' for le, n in counts.items()]
    lines.append(f"steerway_event_loop_lag_max_seconds {worst}")
    return "\n".join(lines) + "\n"


BEFORE = {"0.005": 90.0, "0.01": 95.0, "0.02": 99.0, "0.05": 100.0, "+Inf": 100.0}


def test_the_lag_window_is_the_increase_between_two_scrapes() -> None:
    after = {"0.005": 150.0, "0.01": 180.0, "0.02": 195.0, "0.05": 199.0, "+Inf": 199.0}
    window = lag_window(
        read_histogram(exposition(BEFORE), LAG_HISTOGRAM),
        read_histogram(exposition(after), LAG_HISTOGRAM),
    )
    assert window is not None
    assert window.wakeups == 99.0
    assert window.over_20ms == 3.0
    assert window.worst_upper_ms == 50.0
    # The lag before the window (one wake-up in (20, 50] ms) does not count in it.
    quiet = {"0.005": 180.0, "0.01": 195.0, "0.02": 199.0, "0.05": 200.0, "+Inf": 200.0}
    calm = lag_window(
        read_histogram(exposition(BEFORE), LAG_HISTOGRAM),
        read_histogram(exposition(quiet), LAG_HISTOGRAM),
    )
    assert calm is not None and calm.over_20ms == 0.0 and calm.worst_upper_ms == 10.0
    assert worst_lag_ms(exposition(BEFORE)) == pytest.approx(30.0)


def test_no_lag_window_without_both_scrapes_or_without_wakeups() -> None:
    before = read_histogram(exposition(BEFORE), LAG_HISTOGRAM)
    assert lag_window(None, before) is None
    assert lag_window(before, before) is None
    assert worst_lag_ms("nothing here 1\n") is None


def loaded_config(options: SteerwayOptions, tmp_path: Path) -> GatewayConfig:
    """The config the harness would write for `options`, loaded as `steerway serve` loads it."""

    def mock(name: str, port: int) -> RunningMock:
        return RunningMock(MockProfile(name, 1), port, cast(ManagedProcess, None))

    path = tmp_path / "steerway.yaml"
    mocks = Mocks(plain=mock("plain", 1), stream=mock("stream", 2))
    path.write_text(yaml.safe_dump(steerway_config(mocks, options), sort_keys=False))
    return load_config(str(path))


def test_a_tail_steerway_has_the_fixture_a_limited_key_and_loads_as_a_valid_config(
    tmp_path: Path,
) -> None:
    options = tail_options(Store("sqlite", None), "granian")
    assert (
        options.name == variant_name(Store("sqlite", None), "granian") == "steerway-sqlite-granian"
    )
    assert len(options.rules) == 50 and "--rpm" in options.keys[KEY]
    assert "--budget" in options.keys[KEY]
    config = loaded_config(options, tmp_path)
    assert {"pii", "toxicity"} <= set(config.guardrails.names)
    assert config.telemetry.writer == "inline"


def test_the_process_variant_configures_the_writer_process(tmp_path: Path) -> None:
    store = Store("postgres", "postgresql://127.0.0.1/x")
    options = tail_options(store, "uvicorn", "process")
    assert options.name == "steerway-postgres-process"
    assert options.server == "uvicorn"
    config = loaded_config(options, tmp_path)
    assert config.telemetry.writer == "process"
    assert {"pii", "toxicity"} <= set(config.guardrails.names)


def test_granian_serves_the_app_factory_of_steerway_serve_on_loopback() -> None:
    argv = granian_argv(8123, 1)
    assert argv[-1] == APP_FACTORY == "server.app:create_app_from_env"
    joined = " ".join(argv)
    for part in (
        "--interface asgi",
        "--loop uvloop",
        "--factory",
        "--host 127.0.0.1",
        "--port 8123",
    ):
        assert part in joined
    with pytest.raises(ValueError, match="single-worker"):
        granian_argv(8123, 2)


def result_with(rows: dict[str, list[dict[str, float]]]) -> ScenarioResult:
    result = ScenarioResult("tail", "", "", METRICS, "rps", "direct", OVERHEADS, ratios=False)
    for name, runs in rows.items():
        result.cell(name).runs = runs
    return result


def test_ratios_are_per_round_and_checks_name_each_steerway() -> None:
    result = result_with(
        {
            "direct": [{"rps": 9000, "serial_p50": 0.1, "ttfb_p50": 21.0}] * 2,
            "portkey": [{"rps": 300, "p99": 200.0, "cpu_ms": 2.0}, {"rps": 600, "p99": 100.0}],
            "litellm": [{"rps": 50, "p99": 900.0}, {"rps": 50, "p99": 900.0}],
            "steerway-sqlite": [
                {"rps": 1500, "p99": 60.0, "tail_ratio": 3.0, "lag_ms": 10.0, "cpu_ms": 0.5},
                {"rps": 1500, "p99": 60.0, "tail_ratio": 3.5, "lag_ms": 50.0},
            ],
        }
    )
    for run in result.cells["steerway-sqlite"].runs:
        run |= {"serial_p50": 0.45, "ttfb_p50": 21.4}
    add_peer_ratios(result)
    runs = result.cells["steerway-sqlite"].runs
    assert [run["vs_portkey"] for run in runs] == [5.0, 2.5]
    assert [run["p99_vs_portkey"] for run in runs] == [0.3, 0.6]
    assert runs[0]["core_vs_portkey"] == 4.0 and "core_vs_portkey" not in runs[1]
    verdicts = {check.name.split(": ", 1)[1]: check.passed for check in checks(result)}
    assert verdicts == {
        "p99 <= 4x its p50": True,
        "p99 <= Portkey's p99": True,
        "event-loop lag at saturation <= 20 ms (every round)": False,
        "req/s >= 3x Portkey": True,
        "req/s >= 30x LiteLLM": True,
        "serial overhead p50 <= 0.3 ms": False,
        "streaming TTFB overhead p50 <= 0.5 ms": True,
    }


def test_cpu_ticks_are_user_plus_system_even_with_spaces_in_the_name() -> None:
    line = "4242 (steer way) R 1 4242 4242 0 -1 4194304 130 0 0 0 700 55 0 0 20 0 1 0 127952"
    assert parse_stat_cpu_ticks(line) == 755
    assert tree_cpu_seconds(os.getpid()) > 0.0


def test_a_baseline_row_is_compared_round_by_round_and_not_checked() -> None:
    result = result_with(
        {
            "direct": [{"rps": 9000, "serial_p50": 0.1, "ttfb_p50": 21.0}] * 2,
            "steerway-sqlite": [
                {"rps": 1200, "p99": 50.0, "cpu_ms": 0.5, "serial_p50": 0.40, "ttfb_p50": 21.5},
                {"rps": 1500, "p99": 40.0, "cpu_ms": 0.4, "serial_p50": 0.42, "ttfb_p50": 21.6},
            ],
            "steerway-sqlite-before": [
                {"rps": 1000, "p99": 100.0, "cpu_ms": 1.0, "serial_p50": 0.50, "ttfb_p50": 22.0},
                {"rps": 1000, "p99": 80.0, "cpu_ms": 0.5, "serial_p50": 0.54, "ttfb_p50": 22.0},
            ],
        }
    )
    notes = before_after_notes(result, [Store("sqlite", None), Store("postgres", None)])
    assert notes == [
        "sqlite: after ÷ before req/s 1.35x, p99 0.50x, CPU/req 0.65x, serial p50 -0.110 ms, "
        "TTFB p50 -0.450 ms (paired medians)"
    ]
    assert all("before" not in check.name for check in checks(result))


def test_a_loads_lag_values_come_from_the_two_scrapes() -> None:
    after = {"0.005": 150.0, "0.01": 180.0, "0.02": 195.0, "0.05": 199.0, "+Inf": 199.0}
    assert lag_values(exposition(BEFORE), exposition(after, worst=0.045)) == {
        "lag_ms": 50.0,
        "lag_over_20": 3.0,
        "lag_worst_since_start_ms": pytest.approx(45.0),
    }
    assert lag_values(None, "nothing here 1\n") == {}


def test_the_baseline_rows_get_a_postgres_database_of_their_own() -> None:
    """The other checkout's migrations may be older than this one's: it cannot share a schema."""
    stores = [Store("sqlite", None), Store("postgres", "postgresql://h/under_test")]
    assert baseline_stores(stores, "postgresql://h/baseline") == [
        Store("sqlite", None),
        Store("postgres", "postgresql://h/baseline"),
    ]
    assert baseline_stores(stores, None) == [Store("sqlite", None)]

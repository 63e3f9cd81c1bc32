"""The limits scenario's pure logic: keys, variants, probes, paired comparisons, and reading the
gateway's own records back from a real SQLite store."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any, cast

import pytest
import sqlalchemy as sa

from benchmarks.limits_records import (
    cache_note,
    check_timings,
    read_key_spend,
    read_serial_records,
    refusals_note,
    spend_note,
    sqlite_time,
)
from benchmarks.limits_scenario import (
    STAGE_BUDGET_US,
    add_paired,
    baseline_rows,
    drain_note,
    measured_values,
    rounds_note,
    stage_checks,
)
from benchmarks.limits_workload import (
    BUDGET,
    CACHE,
    CACHE_SCRIPT,
    KEY_OPTIONS,
    LIMITS,
    RPM,
    VARIANTS,
    Variant,
    backends,
    instance_options,
    probe_body,
    probe_problem,
    row_name,
    script_for,
)
from benchmarks.processes import ManagedProcess, StartupError
from benchmarks.results import Cell, ScenarioResult
from benchmarks.scenarios import SCENARIOS
from benchmarks.targets import (
    MockProfile,
    Mocks,
    RunningMock,
    SteerwayOptions,
    parse_created_key,
    steerway_config,
)
from benchmarks.wrk import SCRIPT, WrkResult
from gateway.cache import response_cache
from gateway.keys.limits import BudgetLimit
from server.cli import build_parser
from telemetry.schema import budget_spend, decisions, metadata, traces

CREATED = """\
Created key 0193a1b2c3d4e5f60718293a4b5c6d7e 'rate' in workspace 00000000000000000000000000000000.
Limits: rpm 10000000, tpm 1000000000, parallel 1000
The key is shown only now; store it safely:

    sk-sw-AbCdEf_0123456789-xyz

"""


def variant(label: str) -> Variant:
    return next(v for v in VARIANTS if v.label == label)


def test_created_key_is_read_from_the_cli_output() -> None:
    key = parse_created_key(CREATED)
    assert key.key_id == "0193a1b2c3d4e5f60718293a4b5c6d7e"
    assert key.plaintext == "sk-sw-AbCdEf_0123456789-xyz"
    with pytest.raises(StartupError):
        parse_created_key("Created key abc 'x' in workspace w.\n")
    with pytest.raises(StartupError):
        parse_created_key("The key is shown only now; store it safely:\n\n    sk-sw-1\n")


def test_key_options_are_accepted_by_the_cli() -> None:
    parser = build_parser()
    for name, options in KEY_OPTIONS.items():
        args = parser.parse_args(["keys", "create", name, *options])
        assert args.name == name
    rate = parser.parse_args(["keys", "create", "rate", *KEY_OPTIONS["rate"]])
    assert (rate.rpm, rate.max_parallel) == (RPM, "1000")
    limit = BudgetLimit.from_text(BUDGET, "--budget")
    assert (limit.limit_micros, limit.window) == (100_000 * 1_000_000, "monthly")


def test_each_backend_has_a_limits_and_a_cache_steerway() -> None:
    redis, memory = backends("redis://127.0.0.1:6379/14")
    assert redis.redis_url == "redis://127.0.0.1:6379/12"
    assert memory.redis_url is None
    limits = instance_options(redis, LIMITS)
    cache = instance_options(memory, CACHE)
    assert set(limits.keys) == {"plain", "rate", "budget", "rate-budget"}
    assert limits.keys["rate-budget"] == (*KEY_OPTIONS["rate"], *KEY_OPTIONS["budget"])
    assert limits.config == {"cache": {"enabled": False}}
    assert limits.redis_url == redis.redis_url
    assert set(cache.keys) == {"plain"} and cache.config == {"cache": {"enabled": True}}
    assert cache.redis_url is None
    names = {instance_options(b, i).name for b in (redis, memory) for i in (LIMITS, CACHE)}
    assert len(names) == 4
    assert variant("rate limits + budgets").rate_limited
    assert variant("rate limits + budgets").budgeted
    assert not variant("baseline").rate_limited and not variant("baseline").budgeted


def test_config_sections_of_a_variant_are_written_as_given() -> None:
    def mock(name: str, port: int) -> RunningMock:
        return RunningMock(MockProfile(name, 1), port, cast(ManagedProcess, None))

    mocks = Mocks(plain=mock("plain", 1), stream=mock("stream", 2))
    config = steerway_config(mocks, SteerwayOptions(config={"cache": {"enabled": False}}))
    assert config["cache"] == {"enabled": False}
    assert "cache" not in steerway_config(mocks, SteerwayOptions())


def test_scripts_and_bodies_match_what_the_cache_does_with_them() -> None:
    assert script_for(variant("baseline")) == (SCRIPT, ())
    assert script_for(variant("cache hit")) == (CACHE_SCRIPT, ("repeat",))
    assert script_for(variant("cache miss")) == (CACHE_SCRIPT, ("unique",))
    assert CACHE_SCRIPT.is_file()
    repeat = probe_body(variant("cache hit"))
    assert repeat == probe_body(variant("cache hit"))
    # The body cache.lua sends in "repeat" mode: the probe must store the entry it reads.
    lua_body = json.loads(
        '{"model":"bench-model","messages":[{"role":"user","content":"hello cached"}],'
        '"max_tokens":16,"temperature":0}'
    )
    workspace = "0" * 32
    assert response_cache.cache_key(workspace, "bench-model", "chat", repeat) == (
        response_cache.cache_key(workspace, "bench-model", "chat", lua_body)
    )
    unique = probe_body(variant("cache miss"))
    assert unique != probe_body(variant("cache miss"))
    for body in (repeat, unique):
        decision = policy(True, body)
        assert decision.read and decision.write
    plain = probe_body(variant("baseline"))
    assert "temperature" not in plain
    assert not policy(True, plain).active
    assert not policy(False, repeat).active


def policy(enabled: bool, payload: dict[str, Any]) -> response_cache.CacheDecision:
    return response_cache.resolve_policy(
        operation="chat",
        default_ttl=3600,
        enabled=enabled,
        rule=None,
        header=None,
        payload=payload,
    )


def test_probe_problems_name_what_is_wrong() -> None:
    rate = variant("rate limits")
    ok = {"x-steerway-cache": "BYPASS", "x-ratelimit-limit-requests": RPM}
    assert probe_problem(rate, 200, ok) is None
    assert probe_problem(rate, 429, ok) == "probe answered HTTP 429"
    assert probe_problem(rate, 200, {"x-steerway-cache": "BYPASS"}) == (
        f"probe: x-ratelimit-limit-requests absent, expected {RPM}"
    )
    assert probe_problem(variant("baseline"), 200, ok) == (
        f"probe: x-ratelimit-limit-requests {RPM} on a key without rate limits"
    )
    assert probe_problem(variant("cache hit"), 200, {"x-steerway-cache": "MISS"}) == (
        "probe: x-steerway-cache MISS, expected HIT"
    )
    assert probe_problem(variant("cache miss"), 200, {"x-steerway-cache": "MISS"}) is None
    assert probe_problem(variant("budgets"), 200, {}) == (
        "probe: x-steerway-cache absent, expected BYPASS"
    )


def wrk(p50: float, p99: float, requests: int, non_2xx: int = 0) -> WrkResult:
    return WrkResult(requests, non_2xx, 1, 2.0, p50, p50, p99, p99)


def test_measured_values_take_latency_from_serial_and_rate_from_the_load() -> None:
    values = measured_values(wrk(0.9, 4.0, 1000, 1), wrk(20.0, 90.0, 3000, 2))
    assert values == {
        "serial_p50": 0.9,
        "serial_p99": 4.0,
        "rps": 1499.0,
        "p50": 20.0,
        "non_2xx": 3.0,
        "socket_errors": 2.0,
    }


def comparison() -> ScenarioResult:
    result = ScenarioResult("limits", "", "", [], "rps", "redis: baseline")
    runs = {
        "redis: baseline": [{"serial_p50": 1.0, "rps": 1000.0}, {"serial_p50": 1.2, "rps": 0.0}],
        "redis: rate limits": [{"serial_p50": 1.5, "rps": 500.0}, {"serial_p50": 2.0}],
        "in-process: baseline": [{"serial_p50": 0.8, "rps": 1200.0}],
        "in-process: rate limits": [{"serial_p50": 0.9, "rps": 1080.0}, {}],
    }
    for name, values in runs.items():
        result.cells[name] = Cell(name, values)
    return result


def test_rows_are_compared_with_their_backends_baseline_round_by_round() -> None:
    result = comparison()
    add_paired(
        result,
        baseline_rows(backends("redis://127.0.0.1:6379/14")),
        differences=(("serial_p50", "added_p50"),),
        ratios=(("rps", "rps_ratio"),),
    )
    redis = result.cells["redis: rate limits"].runs
    assert redis[0]["added_p50"] == pytest.approx(0.5)
    assert redis[0]["rps_ratio"] == pytest.approx(0.5)
    assert redis[1]["added_p50"] == pytest.approx(0.8)
    assert "rps_ratio" not in redis[1]  # no rate that round
    memory = result.cells["in-process: rate limits"].runs
    assert memory[0]["added_p50"] == pytest.approx(0.1)
    assert memory[0]["rps_ratio"] == pytest.approx(0.9)
    assert memory[1] == {}
    assert "added_p50" not in result.cells["redis: baseline"].runs[0]
    assert result.cells["redis: rate limits"].median("added_p50") == pytest.approx(0.65)
    assert rounds_note(result) == (
        "added serial p50 (µs) and req/s ÷ baseline by round: redis: rate limits +500 0.50x, "
        "+800 —; in-process: rate limits +100 0.90x, — —"
    )


def test_drain_note_gives_each_backends_waits() -> None:
    result = ScenarioResult("limits", "", "", [], "rps", "redis: baseline")
    result.cells["redis: baseline"] = Cell("a", [{"drain_s": 0.0}, {"drain_s": 2.0}])
    result.cells["redis: budgets"] = Cell("b", [{"drain_s": 1.0}, {}])
    result.cells["in-process: baseline"] = Cell("c", [{"drain_s": 0.5}])
    assert drain_note(result) == (
        "before each serial load the harness waited for the gateway's recorder to write what "
        "earlier loads left in its queue: redis median 1.0 s, longest 2.0 s; in-process median "
        "0.5 s, longest 0.5 s"
    )
    assert drain_note(ScenarioResult("limits", "", "", [], "rps", "x")) is None


def test_stage_checks_hold_the_in_process_checks_to_the_design_budget() -> None:
    result = ScenarioResult("limits-checks", "", "", [], "overhead_p50", "redis: baseline")
    fast, slow = STAGE_BUDGET_US - 5, STAGE_BUDGET_US + 5
    result.cells["in-process: rate limits"] = Cell("r", [{"rate_p50": slow}] * 3)
    result.cells["in-process: budgets"] = Cell("b", [{"budget_p50": fast}] * 3)
    result.cells["redis: cache miss"] = Cell("c", [{"cache_p50": fast}] * 3)
    checks = stage_checks(result)
    assert [check.verdict for check in checks] == ["MISS", "PASS", "n/a"]
    assert checks[0].name.startswith("in-process rate-limit check p50 <= 20 µs")
    assert checks[2].detail == "in-process: cache miss not measured"


def test_check_timings_summarise_each_kind() -> None:
    rows = [("rate_limit", float(v)) for v in range(1, 101)]
    rows += [("overhead", 300.0), ("overhead", 100.0), ("model_selection", 5.0)]
    values = check_timings(rows)
    assert (values["rate_p50"], values["rate_p99"], values["rate_count"]) == (50.0, 99.0, 100.0)
    assert (values["overhead_p50"], values["overhead_count"]) == (100.0, 2.0)
    assert not any(key.startswith("model") for key in values)
    assert check_timings([]) == {}


# --- reading a real SQLite store ------------------------------------------------------------

EPOCH = 1_795_000_000.0
KEY_A, KEY_B = "a" * 32, "b" * 32


def naive(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).replace(tzinfo=None)


def add_trace(
    connection: sa.Connection,
    trace_id: str,
    *,
    at: float,
    key_id: str,
    overhead_ms: float | None,
    checks: dict[str, float],
    cache_status: str | None = None,
    http_status: int = 200,
) -> None:
    connection.execute(
        traces.insert().values(
            trace_id=trace_id,
            workspace_id="0" * 32,
            api_key_id=key_id,
            request_id=trace_id,
            route="/v1/chat/completions",
            method="POST",
            started_at=naive(at),
            ended_at=naive(at + 0.001),
            duration_ms=1.0,
            status="ok",
            http_status=http_status,
            stream=False,
            overhead_ms=overhead_ms,
            tags=[],
            metadata={},
            features={},
        )
    )
    for sequence, (kind, micros) in enumerate(checks.items()):
        output: dict[str, Any] = {"allowed": True}
        if kind == "cache_decision":
            output = {"status": cache_status, "degraded": False}
        connection.execute(
            decisions.insert().values(
                decision_id=uuid.uuid4().hex,
                trace_id=trace_id,
                workspace_id="0" * 32,
                sequence=sequence,
                type=kind,
                component="admission",
                input={},
                output=output,
                reasoning="",
                evaluation_us=micros,
                created_at=naive(at + 0.0001),
            )
        )


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "steerway.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    metadata.create_all(engine)
    with engine.begin() as connection:
        for index in range(10):  # key A, inside the window
            checks = {"rate_limit": 100.0 + index, "budget_check": 200.0 + index}
            add_trace(
                connection,
                f"{index:032x}",
                at=EPOCH + 1 + index * 0.1,
                key_id=KEY_A,
                overhead_ms=0.5 + index * 0.01,
                checks=checks,
            )
        # Outside the window, another key, a failed request: none of them count.
        add_trace(connection, "e" * 32, at=EPOCH + 9, key_id=KEY_A, overhead_ms=9.0, checks={})
        add_trace(connection, "f" * 32, at=EPOCH + 1.5, key_id=KEY_B, overhead_ms=9.0, checks={})
        add_trace(
            connection,
            "d" * 32,
            at=EPOCH + 1.6,
            key_id=KEY_A,
            overhead_ms=9.0,
            checks={"rate_limit": 9999.0},
            http_status=429,
        )
        for index, status in enumerate(("HIT", "HIT", "MISS")):
            add_trace(
                connection,
                f"c{index:031x}",
                at=EPOCH + 3 + index * 0.1,
                key_id=KEY_B,
                overhead_ms=0.1 * (index + 1),
                checks={"cache_decision": 10.0 * (index + 1)},
                cache_status=status,
            )
        connection.execute(
            budget_spend.insert(),
            [
                {
                    "workspace_id": "0" * 32,
                    "scope": scope,
                    "subject": subject,
                    "window": "monthly",
                    "window_start": naive(EPOCH - 86_400),
                    "spent_micros": micros,
                    "updated_at": naive(EPOCH),
                }
                for scope, subject, micros in (
                    ("key", KEY_A, 1_500),
                    ("key", KEY_B, 20),
                    ("workspace", "0" * 32, 7),
                )
            ],
        )
    engine.dispose()
    return path


def test_serial_records_are_those_of_the_key_and_window(store: Path) -> None:
    values = read_serial_records(store, EPOCH + 0.5, EPOCH + 2.5, KEY_A)
    assert values["overhead_count"] == 10.0
    assert values["overhead_p50"] == pytest.approx(540.0)
    assert values["rate_count"] == values["budget_count"] == 10.0
    assert (values["rate_p50"], values["rate_p99"]) == (104.0, 109.0)
    assert values["budget_p50"] == 204.0
    assert "cache_p50" not in values
    assert read_serial_records(store, EPOCH + 20, EPOCH + 30, KEY_A) == {}


def test_serial_records_of_a_cache_variant_keep_its_outcome(store: Path) -> None:
    hits = read_serial_records(store, EPOCH + 2.5, EPOCH + 4, KEY_B, "HIT")
    assert (hits["cache_count"], hits["cache_p99"]) == (2.0, 20.0)
    assert hits["overhead_count"] == 2.0
    misses = read_serial_records(store, EPOCH + 2.5, EPOCH + 4, KEY_B, "MISS")
    assert (misses["cache_count"], misses["cache_p50"]) == (1.0, 30.0)
    assert misses["overhead_p50"] == pytest.approx(300.0)


def test_window_bounds_compare_with_stored_timestamps(store: Path) -> None:
    assert sqlite_time(EPOCH + 1.25) == "2026-11-18 11:06:41.250000"
    first = read_serial_records(store, EPOCH + 1.0, EPOCH + 1.0, KEY_A)
    assert first["overhead_count"] == 1.0


def test_key_spend_and_its_note(store: Path) -> None:
    spent = read_key_spend(store)
    assert spent == {KEY_A: 1_500, KEY_B: 20}
    assert spend_note(spent, {KEY_A: "budget", KEY_B: "rate-budget"}) == (
        "budget_spend (persisted spend): budget key $0.001500, rate-budget key $0.000020"
    )
    assert spend_note({}, {}) == "budget_spend: nothing persisted"


EXPOSITION = """\
# TYPE steerway_cache_requests_total counter
steerway_cache_requests_total{operation="chat",result="hit"} 1200.0
steerway_cache_requests_total{operation="chat",result="miss"} 300.0
steerway_cache_requests_total{operation="embeddings",result="miss"} 5.0
steerway_cache_requests_created{operation="chat",result="hit"} 1.7e9
steerway_rate_limited_total{kind="requests",scope="key"} 2.0
steerway_redis_errors_total{concern="cache"} 1.0
steerway_redis_errors_total{concern="budgets"} 3.0
"""


def test_notes_read_the_gateways_counters() -> None:
    assert cache_note(EXPOSITION) == "steerway_cache_requests_total: hit 1,200, miss 305, bypass 0"
    assert cache_note("steerway_requests_total 1.0\n") is None
    assert refusals_note(EXPOSITION) == ("refused by rate limits 2, by budgets 0; Redis errors 4")


def test_limits_is_a_registered_scenario() -> None:
    assert "limits" in SCENARIOS
    assert row_name(backends("redis://h:6379/0")[1], VARIANTS[0]) == "in-process: baseline"

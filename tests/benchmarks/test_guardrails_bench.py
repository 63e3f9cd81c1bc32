"""The guardrails scenario's pure logic: the texts and what the checks find in them, the keys and
variants, the wrk scripts, timing and summaries, reading the gateway's records back from a real
SQLite store, and the checks."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import time
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from benchmarks.cli import ALL_SCENARIOS, default_output
from benchmarks.guardrails_isolation import Background, SerialTimings, background_values
from benchmarks.guardrails_records import read_serial_records, record_timings, verdicts_note
from benchmarks.guardrails_scenario import (
    ALONE,
    BESIDE,
    PII_CHECKED_CASE,
    UNSELECTED,
    drain_note,
    pii_check,
    rounds_note,
    unselected_check,
)
from benchmarks.guardrails_timing import (
    Case,
    Timings,
    drive,
    input_stage_case,
    stage_problem,
    time_calls,
    time_case,
    warmup_calls,
)
from benchmarks.guardrails_workload import (
    BASELINE,
    CLEAN_PROMPT,
    CONTROL_KEY,
    DEFINED_ONLY,
    DENSE_PROMPT,
    GUARDED,
    INJECTION_PROMPT,
    INSTANCES,
    LARGE_PROMPT,
    LONG_PROMPT,
    PII_PROMPT,
    UNGUARDED,
    VARIANTS,
    body_parts,
    chat_body,
    deny_words,
    guardrails_section,
    instance_options,
    key_target,
    lua_script,
    nonce_token,
    probe_problem,
    repeated,
    variant_target,
)
from benchmarks.limits_scenario import add_paired
from benchmarks.results import Cell, ScenarioResult
from benchmarks.targets import BenchKey, Route, Target
from benchmarks.wrk import SCRIPT, WrkResult
from gateway.config.file import parse_config
from gateway.guardrails.pii import PiiScanner
from server.cli import build_parser
from telemetry.schema import decisions, metadata, traces


def kinds(text: str, scanner: PiiScanner) -> dict[str, int]:
    counts: dict[str, int] = {}
    for finding in scanner.scan(text).findings:
        counts[finding.kind] = counts.get(finding.kind, 0) + 1
    return counts


@pytest.fixture(scope="module")
def scanner() -> PiiScanner:
    return PiiScanner()


# --- the texts --------------------------------------------------------------------------------


def test_texts_have_the_sizes_the_report_names() -> None:
    for text in (PII_PROMPT, CLEAN_PROMPT, DENSE_PROMPT, INJECTION_PROMPT):
        assert 900 <= len(text.encode()) <= 1200
        assert text.isascii()
    assert 10 * 1024 <= len(LONG_PROMPT) < 11 * 1024
    assert 200 * 1024 <= len(LARGE_PROMPT) < 205 * 1024
    assert LONG_PROMPT.count(PII_PROMPT) == 10


def test_repeated_joins_whole_paragraphs_up_to_the_size() -> None:
    assert repeated("abc", 10) == "abc\n\nabc"
    assert repeated("abc", 1) == "abc"
    assert len(repeated("x" * 100, 1000)) >= 1000
    with pytest.raises(ValueError):
        repeated("", 10)


def test_the_pii_prompt_holds_one_email_and_one_phone(scanner: PiiScanner) -> None:
    assert kinds(PII_PROMPT, scanner) == {"EMAIL_ADDRESS": 1, "PHONE_NUMBER": 1}
    assert kinds(LONG_PROMPT, scanner) == {"EMAIL_ADDRESS": 10, "PHONE_NUMBER": 10}
    assert kinds(CLEAN_PROMPT, scanner) == {}


def test_the_dense_text_is_mostly_pii_of_many_kinds(scanner: PiiScanner) -> None:
    found = kinds(DENSE_PROMPT, scanner)
    assert sum(found.values()) >= 30
    assert len(found) >= 6


def test_a_nonce_in_front_reads_as_no_pii(scanner: PiiScanner) -> None:
    for token in ("0123456789ab", "20261122ffff"):
        body = json.loads(chat_body(PII_PROMPT, f"{nonce_token(token)}x1x123456"))
        content = body["messages"][0]["content"]
        assert content.endswith(PII_PROMPT)
        assert kinds(content, scanner) == {"EMAIL_ADDRESS": 1, "PHONE_NUMBER": 1}


def test_deny_words_are_unique_and_absent_from_every_prompt() -> None:
    words = deny_words()
    assert len(words) == len(set(words)) == 100
    for text in (PII_PROMPT, CLEAN_PROMPT, DENSE_PROMPT, INJECTION_PROMPT):
        assert not any(word in text.lower() for word in words)
    assert deny_words(3) == words[:3]
    for count in (0, 101):
        with pytest.raises(ValueError):
            deny_words(count)


def test_the_attack_carries_known_phrasings_the_clean_text_does_not() -> None:
    for phrase in ("ignore all previous instructions", "reveal your system prompt", "<|im_start|>"):
        assert phrase in INJECTION_PROMPT.lower()
        assert phrase not in CLEAN_PROMPT.lower()


# --- keys, variants, probes -------------------------------------------------------------------


def test_the_steerways_differ_only_by_the_guardrails_section() -> None:
    unguarded = instance_options(UNGUARDED)
    defined = instance_options(DEFINED_ONLY)
    guarded = instance_options(GUARDED)
    assert unguarded.config == {} and unguarded.keys == {"plain": ()}
    assert defined.config == guarded.config == {"guardrails": guardrails_section()}
    assert defined.keys == {"plain": ()}
    assert guarded.keys == {
        "pii": ("--guardrails", "pii"),
        "pii-injection": ("--guardrails", "pii,injection"),
        CONTROL_KEY: (),
    }
    without = instance_options(GUARDED, with_injection=False)
    assert set(without.keys) == {"pii", CONTROL_KEY}
    assert set(without.config["guardrails"]["definitions"]) == {"pii"}
    assert len({unguarded.name, defined.name, guarded.name}) == 3
    assert {variant.instance for variant in VARIANTS} == set(INSTANCES)
    assert VARIANTS[0].label == BASELINE and VARIANTS[0].instance == UNGUARDED


def test_the_guardrails_section_is_a_valid_config_selecting_nothing_by_default() -> None:
    section = parse_config({"guardrails": guardrails_section(with_injection=False)}).guardrails
    assert section.default == ()
    pii = section.definitions["pii"]
    assert (pii.kind, pii.action, pii.threshold) == ("pii", "mask", 0.4)


def test_key_options_are_accepted_by_the_cli() -> None:
    parser = build_parser()
    for key, options in instance_options(GUARDED).keys.items():
        args = parser.parse_args(["keys", "create", key, *options])
        assert args.name == key
        assert args.guardrails == (options[1] if options else None)


def test_a_variant_is_its_instances_route_with_its_key() -> None:
    started = Target(
        name=GUARDED,
        version="0.1.0",
        routes={"bench-model": Route("http://127.0.0.1:1/v1/chat/completions", {"x": "master"})},
        process=None,
        metrics_url="http://127.0.0.1:1/metrics",
        keys={"pii": BenchKey("k" * 32, "sk-sw-pii"), CONTROL_KEY: BenchKey("c" * 32, "sk-sw-c")},
    )
    target = variant_target(started, VARIANTS[2])
    assert target.name == "pii mask"
    route = target.route("bench-model")
    assert route.url == "http://127.0.0.1:1/v1/chat/completions"
    assert route.headers == {"Authorization": "Bearer sk-sw-pii"}
    assert target.metrics_url == started.metrics_url and target.keys == started.keys
    control = key_target(started, CONTROL_KEY, "control").route("bench-model")
    assert control.headers == {"Authorization": "Bearer sk-sw-c"}


def test_probe_problems_name_what_is_wrong() -> None:
    plain, _, pii, both = VARIANTS
    assert probe_problem(plain, 200, {}) is None
    assert probe_problem(pii, 200, {"x-steerway-guardrails": "pii=masked"}) is None
    assert probe_problem(both, 200, {"x-steerway-guardrails": "injection=pass, pii=masked"}) is None
    assert probe_problem(pii, 503, {}) == "probe answered HTTP 503"
    assert probe_problem(pii, 200, {"x-steerway-guardrails": "pii=pass"}) == (
        "probe: x-steerway-guardrails pii=pass, expected pii=masked"
    )
    assert probe_problem(plain, 200, {"x-steerway-guardrails": "pii=masked"}) is not None
    assert probe_problem(pii, 200, {}) == (
        "probe: x-steerway-guardrails absent, expected pii=masked"
    )


# --- wrk scripts ------------------------------------------------------------------------------


def test_nonce_tokens_spell_digits_as_letters() -> None:
    assert nonce_token("a0b9") == "agbp"
    assert not re.search(r"\d", nonce_token(uuid.uuid4().hex))


def test_the_script_sends_the_body_chat_body_builds() -> None:
    head, tail = body_parts(PII_PROMPT)
    assert (head + "tokx2x17" + tail).encode() == chat_body(PII_PROMPT, "tokx2x17")
    script = lua_script(PII_PROMPT)
    assert f"local HEAD = [==[{head}]==]" in script
    assert f"local TAIL = [==[{tail}]==]" in script
    assert f"dofile([==[{SCRIPT}]==])" in script
    body = json.loads(head + "tokx1x1" + tail)
    assert body["max_tokens"] == 16 and body["model"] == "bench-model"
    with pytest.raises(ValueError):
        lua_script("a ]==] b")


# --- timing -----------------------------------------------------------------------------------


def test_each_timed_call_gets_a_fresh_argument() -> None:
    made: list[list[int]] = []

    def prepare() -> list[int]:
        made.append([])
        return made[-1]

    timings = time_calls(lambda argument: argument.append(1), prepare, iterations=7, warmup=3)
    assert len(timings.calls_ns) == 7 and all(t >= 0 for t in timings.calls_ns)
    assert len(made) == 10 and all(argument == [1] for argument in made)
    with pytest.raises(ValueError):
        time_calls(lambda argument: None, lambda: None, iterations=0, warmup=0)


def test_a_pause_between_calls_stays_off_the_clock() -> None:
    started = time.perf_counter()
    timings = time_calls(lambda argument: None, lambda: None, iterations=3, warmup=0, pause_s=0.02)
    assert time.perf_counter() - started >= 0.06
    assert all(t < 10_000_000 for t in timings.calls_ns)


def test_cases_scale_and_unavailable_ones_are_not_timed() -> None:
    seen: list[str] = []
    case = Case("deny", "DenyList.scan", 40, seen.append, lambda: "text")
    timings = time_case(case, scale=0.5)
    assert len(timings.calls_ns) == 20
    assert len(seen) == 20 + warmup_calls(20)
    assert (warmup_calls(20), warmup_calls(1000)) == (5, 100)
    with pytest.raises(ValueError, match="not importable"):
        time_case(Case("injection", "", 10, unavailable="not importable"))


def test_summary_is_in_microseconds() -> None:
    summary = Timings([1000 * v for v in range(1, 101)]).summary()
    assert (summary["p50"], summary["p99"], summary["calls"]) == (50.0, 99.0, 100.0)
    with pytest.raises(ValueError):
        Timings().summary()


def test_drive_runs_a_coroutine_that_does_not_suspend() -> None:
    async def inline() -> int:
        return 42

    async def suspends() -> int:
        await asyncio.sleep(0)
        return 1

    assert drive(inline()) == 42
    coroutine: Coroutine[Any, Any, int] = suspends()
    with pytest.raises(RuntimeError, match="suspended"):
        drive(coroutine)


def test_stage_problem_says_what_the_guardrail_answered() -> None:
    assert stage_problem(["masked"], [""]) is None
    assert stage_problem(["error"], ["the check failed (ModuleNotFoundError)"]) == (
        "the pii guardrail answered error (the check failed (ModuleNotFoundError))"
    )
    assert stage_problem([], []) == "the pii guardrail answered nothing"


def test_the_input_stage_masks_a_fresh_payload_each_call() -> None:
    case = input_stage_case()
    assert case.unavailable is None and case.call is not None
    first, second = case.prepare(), case.prepare()
    assert first is not second
    outcome: Any = case.call(first)
    assert [v.outcome for v in outcome.verdicts] == ["masked"]
    masked = first["messages"][1]["content"]
    assert "maria.keller@example.com" not in masked and "(415) 555-0132" not in masked
    assert second["messages"][1]["content"] == PII_PROMPT


# --- the gateway's records --------------------------------------------------------------------

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
    overhead_ms: float,
    guardrails: dict[str, float],
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
    rows = [(name, "input", micros) for name, micros in guardrails.items()]
    rows.append(("pii", "output", 99_999.0))
    for sequence, (name, direction, micros) in enumerate(rows):
        connection.execute(
            decisions.insert().values(
                decision_id=uuid.uuid4().hex,
                trace_id=trace_id,
                workspace_id="0" * 32,
                sequence=sequence,
                type="guardrail",
                component="guardrails",
                input={"guardrail": name, "kind": name, "direction": direction, "action": "mask"},
                output={"outcome": "masked"},
                reasoning="",
                evaluation_us=micros,
                created_at=naive(at + 0.0001),
            )
        )
    connection.execute(
        decisions.insert().values(
            decision_id=uuid.uuid4().hex,
            trace_id=trace_id,
            workspace_id="0" * 32,
            sequence=len(rows),
            type="cache_decision",
            component="cache",
            input={},
            output={"status": "BYPASS"},
            reasoning="",
            evaluation_us=5.0,
            created_at=naive(at + 0.0002),
        )
    )


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "steerway.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    metadata.create_all(engine)
    with engine.begin() as connection:
        for index in range(10):
            add_trace(
                connection,
                f"{index:032x}",
                at=EPOCH + 1 + index * 0.1,
                key_id=KEY_A,
                overhead_ms=1.0 + index * 0.1,
                guardrails={"pii": 900.0 + index, "injection": 300.0 + index},
            )
        add_trace(connection, "e" * 32, at=EPOCH + 9, key_id=KEY_A, overhead_ms=9, guardrails={})
        add_trace(connection, "f" * 32, at=EPOCH + 1.5, key_id=KEY_B, overhead_ms=9, guardrails={})
        add_trace(
            connection,
            "d" * 32,
            at=EPOCH + 1.6,
            key_id=KEY_A,
            overhead_ms=9.0,
            guardrails={"injection": 5000.0},
            http_status=400,
        )
    engine.dispose()
    return path


def test_serial_records_are_the_keys_input_checks_in_the_window(store: Path) -> None:
    values = read_serial_records(store, EPOCH + 0.5, EPOCH + 2.5, KEY_A)
    assert values["overhead_count"] == 10.0
    assert values["overhead_p50"] == pytest.approx(1400.0)
    assert (values["pii_count"], values["pii_p50"], values["pii_p99"]) == (10.0, 904.0, 909.0)
    assert (values["injection_count"], values["injection_p50"]) == (10.0, 304.0)
    assert not any(key.startswith("cache") for key in values)
    assert read_serial_records(store, EPOCH + 20, EPOCH + 30, KEY_A) == {}
    other = read_serial_records(store, EPOCH + 0.5, EPOCH + 2.5, KEY_B)
    assert other == {"overhead_p50": 9000.0, "overhead_p99": 9000.0, "overhead_count": 1.0}


def test_record_timings_summarise_each_kind() -> None:
    rows = [("overhead", 100.0), ("overhead", 300.0), ("pii-strict", 7.0)]
    values = record_timings(rows)
    assert (values["overhead_p50"], values["overhead_p99"]) == (100.0, 300.0)
    assert values["pii_strict_count"] == 1.0
    assert record_timings([]) == {}


def test_verdicts_note_reads_the_gateways_counter() -> None:
    exposition = """\
# TYPE steerway_guardrail_verdicts_total counter
steerway_guardrail_verdicts_total{action="mask",guardrail="pii"} 1200.0
steerway_guardrail_verdicts_total{action="pass",guardrail="injection"} 600.0
steerway_guardrail_verdicts_created{action="mask",guardrail="pii"} 1.7e9
"""
    assert verdicts_note(exposition) == (
        "steerway_guardrail_verdicts_total: injection pass 600, pii mask 1,200"
    )
    assert verdicts_note("steerway_requests_total 1.0\n") is None


# --- isolation --------------------------------------------------------------------------------


def test_serial_timings_summarise_latency_and_overhead() -> None:
    timings = SerialTimings([float(v) for v in range(1, 101)], [0.5] * 100)
    timings.fail("HTTP 503: a long reason")
    timings.fail("HTTP 500")
    summary = timings.summary()
    assert (summary["p50"], summary["p99"], summary["requests"]) == (50.0, 99.0, 100.0)
    assert (summary["overhead_p50"], summary["non_2xx"]) == (0.5, 2.0)
    assert timings.first_failure == "HTTP 503: a long reason"
    assert "overhead_p50" not in SerialTimings([1.0]).summary()
    with pytest.raises(RuntimeError, match="HTTP 500"):
        SerialTimings(failed=1, first_failure="HTTP 500").summary()


WRK = WrkResult(
    requests=12,
    non_2xx=2,
    socket_errors=1,
    duration_s=5.0,
    p50_ms=410.0,
    p90_ms=500.0,
    p99_ms=600.0,
    max_ms=650.0,
)


def test_the_background_load_reports_its_result_or_its_failure() -> None:
    with Background(lambda: WRK) as running:
        pass
    assert background_values(running.result()) == {
        "large_requests": 10.0,
        "large_p50": 410.0,
        "large_non_2xx": 3.0,
    }

    def fails() -> WrkResult:
        raise RuntimeError("wrk exited with 1")

    with Background(fails) as failing:
        pass
    with pytest.raises(RuntimeError, match="background load failed: wrk exited with 1"):
        failing.result()


# --- checks and notes -------------------------------------------------------------------------


def result_with(rows: dict[str, list[dict[str, float]]], baseline: str) -> ScenarioResult:
    result = ScenarioResult("guardrails", "", "", [], "rps", baseline)
    for name, runs in rows.items():
        result.cells[name] = Cell(name, runs)
    return result


def test_pii_check_holds_the_median_p50_to_two_milliseconds() -> None:
    passing = result_with(
        {PII_CHECKED_CASE: [{"p50": 1900.0}, {"p50": 2500.0}, {"p50": 1500.0}]}, ""
    )
    check = pii_check(passing)
    assert check.verdict == "PASS" and check.detail == "1.900 ms (need <= 2 ms)"
    missing = result_with({PII_CHECKED_CASE: [{"p50": 2100.0}]}, "")
    assert pii_check(missing).verdict == "MISS"
    assert pii_check(result_with({}, "")).verdict == "n/a"


def test_unselected_guardrails_are_held_to_the_baselines_throughput() -> None:
    result = result_with(
        {
            BASELINE: [{"rps": 1000.0}, {"rps": 800.0}, {"rps": 900.0}],
            UNSELECTED: [{"rps": 950.0}, {"rps": 700.0}, {"rps": 900.0}],
            "pii mask": [{"rps": 100.0}, {}, {"rps": 90.0}],
        },
        BASELINE,
    )
    add_paired(result, {name: BASELINE for name in result.cells}, ratios=(("rps", "rps_ratio"),))
    check = unselected_check(result)
    assert check.passed is True and check.detail.startswith("0.95x")
    assert rounds_note(result) == (
        "req/s ÷ baseline by round: defined, none selected 0.95x, 0.88x, 1.00x; "
        "pii mask 0.10x, —, 0.10x"
    )
    del result.cells[UNSELECTED]
    assert unselected_check(result).verdict == "n/a"


def test_drain_note_gives_the_median_and_longest_wait() -> None:
    result = result_with(
        {BASELINE: [{"drain_s": 0.5}, {"drain_s": 2.5}], UNSELECTED: [{"drain_s": 1.0}, {}]},
        BASELINE,
    )
    note = drain_note(result)
    assert note is not None and note.endswith("median 1.0 s, longest 2.5 s")
    assert drain_note(result_with({BASELINE: [{}]}, BASELINE)) is None


def test_isolation_ratios_are_taken_within_each_round() -> None:
    result = result_with(
        {
            ALONE: [{"p50": 2.0, "p99": 4.0}, {"p50": 3.0, "p99": 5.0}],
            BESIDE: [{"p50": 5.0, "p99": 40.0}, {"p50": 3.0, "p99": 10.0}],
        },
        ALONE,
    )
    add_paired(result, {BESIDE: ALONE}, ratios=(("p50", "p50_ratio"), ("p99", "p99_ratio")))
    assert result.cells[BESIDE].values("p50_ratio") == [2.5, 1.0]
    assert result.cells[BESIDE].median("p99_ratio") == 6.0
    assert "p50_ratio" not in result.cells[ALONE].runs[0]


def test_guardrails_is_a_scenario_of_the_cli_with_its_own_results_file() -> None:
    assert "guardrails" in ALL_SCENARIOS
    assert default_output(["guardrails"], "2026-11-22").name == "2026-11-22-guardrails.md"
    assert default_output(list(ALL_SCENARIOS), "2026-11-22").name == "2026-11-22.md"

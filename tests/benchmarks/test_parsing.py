"""The harness's pure parsing: wrk's summary line, /proc text, Prometheus text, SSE events."""

from __future__ import annotations

import pytest

from benchmarks.machine import cpu_model, memory_total_gib
from benchmarks.memory import parse_kib_field, parse_stat_parent
from benchmarks.stores import is_success, sum_samples
from benchmarks.streaming import event_has_content
from benchmarks.wrk import WrkError, parse_wrk_output

WRK_STDOUT = """Running 5s test @ http://127.0.0.1:8080/v1/chat/completions
  1 threads and 32 connections
Requests/sec:   4200.00
BENCH_JSON {"requests":21000,"duration_us":5000000,"bytes":900,"errors":{"connect":1,"read":2,"write":0,"status":1000,"timeout":3},"latency_us":{"min":100,"max":9000,"mean":700.5,"stdev":20.1,"p50":650,"p90":900,"p99":2500,"p999":8000}}
"""


def test_wrk_summary_counts_only_2xx_as_throughput() -> None:
    result = parse_wrk_output(WRK_STDOUT)
    assert result.requests == 21000
    assert result.ok_requests == 20000
    assert result.requests_per_s == pytest.approx(4000.0)
    assert result.socket_errors == 6
    assert (result.p50_ms, result.p99_ms, result.max_ms) == (0.65, 2.5, 9.0)


def test_wrk_output_without_summary_is_a_clear_error() -> None:
    with pytest.raises(WrkError, match="no summary line"):
        parse_wrk_output("Running 5s test\nunable to connect to 127.0.0.1:1\n")


def test_stat_parent_survives_spaces_and_parentheses_in_the_name() -> None:
    line = "4242 (uvicorn (worker) 1) S 4200 4200 4200 0 -1 4194560 0 0"
    assert parse_stat_parent(line) == 4200


def test_kib_fields_are_bytes_and_missing_is_zero() -> None:
    status = "Name:\tpython\nVmPeak:\t  2000 kB\nVmRSS:\t  1536 kB\n"
    assert parse_kib_field(status, "VmRSS") == 1536 * 1024
    assert parse_kib_field(status, "Pss") == 0


def test_proc_cpu_and_memory_description() -> None:
    assert cpu_model("processor\t: 0\nmodel name\t: AMD EPYC 7B13\n") == "AMD EPYC 7B13"
    assert cpu_model("") == "unknown"
    assert memory_total_gib("MemTotal:       2097152 kB\n") == pytest.approx(2.0)


def test_prometheus_samples_are_summed_by_label_filter() -> None:
    text = "\n".join(
        [
            "# HELP steerway_requests_total Requests.",
            "# TYPE steerway_requests_total counter",
            'steerway_requests_total{route="/v1/chat/completions",status_code="200"} 120.0',
            'steerway_requests_total{route="/v1/chat/completions",status_code="502"} 3.0',
            'steerway_requests_total{route="/v1/embeddings",status_code="200"} 5.0',
            'steerway_requests_created{route="/v1/chat/completions",status_code="200"} 1.7e9',
        ]
    )
    assert sum_samples(text, "steerway_requests_total") == 128.0
    assert sum_samples(text, "steerway_requests_total", is_success) == 125.0
    assert sum_samples(text, "steerway_unknown_total") is None


def test_sse_content_detection_skips_role_and_done_events() -> None:
    role = b'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}'
    content = b'data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}'
    assert not event_has_content(role)
    assert event_has_content(content)
    assert not event_has_content(b"data: [DONE]")
    assert not event_has_content(b": keep-alive comment")

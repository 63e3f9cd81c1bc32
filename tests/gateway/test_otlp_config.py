"""The `telemetry.otlp` section of the config: values, the traces URL, validation, secrets."""

from pathlib import Path

import pytest

from gateway.config.file import check_config, load_config
from gateway.config.otlp import OtlpConfig, metrics_url, traces_url

TOKEN = "otlp-token-6d1f0c9a2b"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "steerway.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_without_the_section_nothing_is_exported(tmp_path: Path) -> None:
    assert load_config(_write(tmp_path, ""), {}).telemetry.otlp is None


def test_defaults_and_values(tmp_path: Path) -> None:
    minimal = "telemetry:\n  otlp:\n    endpoint: http://collector:4318\n"
    config = load_config(_write(tmp_path, minimal), {}).telemetry.otlp
    assert config == OtlpConfig(
        traces_url="http://collector:4318/v1/traces",
        metrics_url="http://collector:4318/v1/metrics",
    )
    assert config.metrics_interval_seconds == 0
    assert (config.sampling_ratio, config.compression, config.service_name) == (
        1.0,
        "gzip",
        "steerway",
    )
    text = (
        "telemetry:\n"
        "  otlp:\n"
        "    endpoint: https://otlp.example.com/v1/traces\n"
        "    headers: {Authorization: 'Bearer ${OTLP_TOKEN}', x-scope-orgid: 42}\n"
        "    sampling_ratio: 0.25\n"
        "    service_name: gateway-eu\n"
        "    compression: none\n"
        "    timeout_seconds: 2.5\n"
        "    queue_size: 50\n"
        "    batch_size: 5\n"
        "    max_attempts: 2\n"
        "    max_backoff_seconds: 4\n"
        "    metrics_interval_seconds: 15\n"
    )
    config = load_config(_write(tmp_path, text), {"OTLP_TOKEN": TOKEN}).telemetry.otlp
    assert config is not None
    assert config.traces_url == "https://otlp.example.com/v1/traces"
    assert {name: value.reveal() for name, value in config.headers.items()} == {
        "authorization": f"Bearer {TOKEN}",
        "x-scope-orgid": "42",
    }
    assert (config.sampling_ratio, config.service_name, config.compression) == (
        0.25,
        "gateway-eu",
        "none",
    )
    assert (config.timeout_seconds, config.queue_size, config.batch_size) == (2.5, 50, 5)
    assert (config.max_attempts, config.max_backoff_seconds) == (2, 4.0)
    assert config.metrics_url == "https://otlp.example.com/v1/metrics"
    assert config.metrics_interval_seconds == 15


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("http://collector:4318", "http://collector:4318/v1/traces"),
        ("http://collector:4318/", "http://collector:4318/v1/traces"),
        ("https://tempo.example.com/otlp", "https://tempo.example.com/otlp/v1/traces"),
        ("https://tempo.example.com/otlp/v1/traces", "https://tempo.example.com/otlp/v1/traces"),
        ("http://c:4318/v1/traces/", "http://c:4318/v1/traces"),
        ("http://c:4318/x?tenant=a", "http://c:4318/x/v1/traces?tenant=a"),
    ],
)
def test_the_traces_path_is_appended_unless_present(endpoint: str, expected: str) -> None:
    assert traces_url(endpoint) == expected
    assert metrics_url(endpoint) == expected.replace("/v1/traces", "/v1/metrics")


def test_every_problem_is_reported(tmp_path: Path) -> None:
    text = (
        "telemetry:\n"
        "  otlp:\n"
        "    endpoint: collector:4318\n"
        "    headers: {'bad header': x, content-type: text/plain, api-key: [1]}\n"
        "    sampling_ratio: 1.5\n"
        "    compression: zstd\n"
        "    timeout_seconds: 0\n"
        "    queue_size: -3\n"
        "    batch_size: lots\n"
        "    max_attempts: 0\n"
        "    metrics_interval_seconds: -1\n"
        "    samplingratio: 1\n"
    )
    assert check_config(_write(tmp_path, text), {}) == [
        "telemetry.otlp: unknown field 'samplingratio' (did you mean 'sampling_ratio'?)",
        "telemetry.otlp.endpoint: not an http(s) URL: 'collector:4318'",
        "telemetry.otlp.sampling_ratio: expected a number from 0 to 1, got 1.5",
        "telemetry.otlp.headers.bad header: not a valid HTTP header name",
        "telemetry.otlp.headers.content-type: set by the exporter itself; it cannot be configured",
        "telemetry.otlp.headers.api-key: expected a string, got a list",
        "telemetry.otlp.compression: expected one of gzip, none; got 'zstd'",
        "telemetry.otlp.timeout_seconds: expected a positive number, got 0",
        "telemetry.otlp.queue_size: expected a positive integer, got -3",
        "telemetry.otlp.batch_size: expected a positive integer, got 'lots'",
        "telemetry.otlp.max_attempts: expected a positive integer, got 0",
        "telemetry.otlp.metrics_interval_seconds: expected a non-negative number, got -1",
    ]


def test_an_endpoint_is_required(tmp_path: Path) -> None:
    text = "telemetry:\n  otlp:\n    sampling_ratio: 0.5\n"
    assert check_config(_write(tmp_path, text), {}) == [
        "telemetry.otlp: missing required field 'endpoint'"
    ]


def test_a_missing_header_variable_is_named_and_its_value_never_shown(tmp_path: Path) -> None:
    text = (
        "telemetry:\n"
        "  otlp:\n"
        "    endpoint: http://collector:4318\n"
        "    headers: {authorization: 'Bearer ${OTLP_TOKEN}', x-other: '${OTHER}'}\n"
    )
    problems = check_config(_write(tmp_path, text), {"OTLP_TOKEN": TOKEN})
    assert problems == ["telemetry.otlp.headers.x-other: environment variable OTHER is not set"]
    config = load_config(_write(tmp_path, text), {"OTLP_TOKEN": TOKEN, "OTHER": TOKEN + "-2"})
    assert TOKEN not in repr(config)
    assert TOKEN not in repr(config.telemetry)
    assert TOKEN not in str(config.telemetry.otlp)
    assert "authorization" in repr(config.telemetry.otlp)

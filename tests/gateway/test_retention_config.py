"""The `telemetry.retention` section of the config."""

from pathlib import Path

from gateway.config.file import check_config, load_config
from telemetry.retention.policy import RetentionConfig


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "steerway.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_absent_keeps_everything_forever(tmp_path: Path) -> None:
    retention = load_config(_write(tmp_path, ""), {}).telemetry.retention
    assert retention == RetentionConfig()
    assert not retention.enabled()
    assert (retention.traces, retention.spans_days(), retention.rollup_day) == (None, None, None)
    nulls = "telemetry:\n  retention:\n    traces: null\n    rollups: {minute: null}\n"
    assert not load_config(_write(tmp_path, nulls), {}).telemetry.retention.enabled()


def test_values_and_what_follows_traces(tmp_path: Path) -> None:
    text = (
        "telemetry:\n"
        "  retention:\n"
        "    content: 3\n"
        "    traces: 90\n"
        "    spans: 14\n"
        "    rollups: {minute: 7, hour: 120, day: 800}\n"
        "    interval_s: 600\n"
        "    partitions_ahead: 3\n"
        "    batch_size: 1000\n"
    )
    retention = load_config(_write(tmp_path, text), {}).telemetry.retention
    assert retention == RetentionConfig(
        content=3,
        traces=90,
        spans=14,
        rollup_minute=7,
        rollup_hour=120,
        rollup_day=800,
        interval_s=600.0,
        partitions_ahead=3,
        batch_size=1000,
    )
    assert retention.enabled()
    assert retention.spans_days() == 14
    assert retention.decisions_days() == 90  # unset: follows traces
    assert retention.interactions_days() == 90


def test_every_problem_is_reported(tmp_path: Path) -> None:
    text = (
        "telemetry:\n"
        "  retention:\n"
        "    content: 0\n"
        "    traces: 30\n"
        "    spans: 31\n"
        "    decisions: 1.5\n"
        "    interval_s: -1\n"
        "    rollups: {minute: 10, hour: 5, weeks: 3}\n"
        "    trace: 3\n"
    )
    assert check_config(_write(tmp_path, text), {}) == [
        "telemetry.retention: unknown field 'trace' (did you mean 'traces'?)",
        "telemetry.retention.content: expected a positive integer, got 0",
        "telemetry.retention.decisions: expected a positive integer, got 1.5",
        "telemetry.retention.rollups: unknown field 'weeks'",
        "telemetry.retention.interval_s: expected a positive number, got -1",
        "telemetry.retention.spans: 31 days is longer than traces (30 days): "
        "a trace's parts cannot outlive it",
        "telemetry.retention.rollups.minute: 10 days is longer than rollups.hour (5 days)",
    ]


def test_parts_of_traces_kept_forever_need_no_bound(tmp_path: Path) -> None:
    text = "telemetry:\n  retention:\n    spans: 7\n    content: 30\n    interactions: 10\n"
    assert check_config(_write(tmp_path, text), {}) == [
        "telemetry.retention.content: 30 days is longer than interactions (10 days)"
    ]

"""`telemetry.sampling` in the config file: defaults, a full section, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config.file import check_config, parse_config
from telemetry.trace_sampling import TraceSampling


def test_sampling_is_off_by_default() -> None:
    sampling = parse_config({}).telemetry.sampling
    assert sampling.ratio == 1.0
    assert sampling.policy() is None


def test_a_full_section_becomes_the_recorders_policy() -> None:
    config = parse_config(
        {
            "telemetry": {
                "sampling": {
                    "ratio": 0.25,
                    "errors": False,
                    "slow_ms": 1500,
                    "guardrail_verdicts": True,
                    "rule_denials": False,
                    "evaluation": False,
                }
            }
        }
    )
    assert config.telemetry.sampling.policy() == TraceSampling(
        ratio=0.25,
        errors=False,
        slow_ms=1500.0,
        guardrail_verdicts=True,
        rule_denials=False,
        evaluation=False,
    )


def test_ratio_zero_keeps_only_what_is_always_kept() -> None:
    policy = parse_config({"telemetry": {"sampling": {"ratio": 0}}}).telemetry.sampling.policy()
    assert policy == TraceSampling(ratio=0.0, slow_ms=10_000.0)


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ("ratio: 1.5", "telemetry.sampling.ratio: expected a number from 0 to 1, got 1.5"),
        ("ratio: -0.2", "telemetry.sampling.ratio: expected a non-negative number, got -0.2"),
        ("ratio: half", "telemetry.sampling.ratio: expected a non-negative number, got 'half'"),
        ("ratio: true", "telemetry.sampling.ratio: expected a non-negative number, got true"),
        ("errors: 'yes'", "telemetry.sampling.errors: expected true or false, got 'yes'"),
        ("rule_denials: 1", "telemetry.sampling.rule_denials: expected true or false, got 1"),
        ("slow_ms: -5", "telemetry.sampling.slow_ms: expected a non-negative integer, got -5"),
        ("slow_ms: 2.5", "telemetry.sampling.slow_ms: expected a non-negative integer, got 2.5"),
        ("ratoi: 0.1", "telemetry.sampling: unknown field 'ratoi' (did you mean 'ratio'?)"),
    ],
)
def test_a_bad_value_is_a_clear_problem(tmp_path: Path, section: str, problem: str) -> None:
    path = tmp_path / "steerway.yaml"
    path.write_text(f"telemetry:\n  sampling:\n    {section}\n", encoding="utf-8")
    assert check_config(path, {}) == [problem]


def test_a_section_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "steerway.yaml"
    path.write_text("telemetry:\n  sampling: 0.5\n", encoding="utf-8")
    assert check_config(path, {}) == ["telemetry.sampling: expected a mapping, got a number"]

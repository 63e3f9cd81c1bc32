"""The `alerts` section of the config."""

from pathlib import Path

from gateway.alerts_config import AlertsConfig
from gateway.config import check_config, load_config


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "steerway.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_and_values(tmp_path: Path) -> None:
    assert load_config(_write(tmp_path, ""), {}).alerts == AlertsConfig(interval=30.0)
    loaded = load_config(_write(tmp_path, "alerts:\n  interval: 5\n"), {})
    assert loaded.alerts == AlertsConfig(interval=5.0)


def test_every_problem_is_reported(tmp_path: Path) -> None:
    assert check_config(_write(tmp_path, "alerts:\n  interval: 0\n  intervall: 3\n"), {}) == [
        "alerts: unknown field 'intervall' (did you mean 'interval'?)",
        "alerts.interval: expected a positive number, got 0",
    ]
    assert check_config(_write(tmp_path, "alerts:\n  interval: 7200\n"), {}) == [
        "alerts.interval: expected seconds from 1 to 3600, got 7200"
    ]
    assert check_config(_write(tmp_path, "alerts:\n  interval: 0.5\n"), {}) == [
        "alerts.interval: expected seconds from 1 to 3600, got 0.5"
    ]

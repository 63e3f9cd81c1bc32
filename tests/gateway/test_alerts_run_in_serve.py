"""`alerts.run_in_serve`: whether `steerway serve` evaluates alert rules (a deployment with a
`steerway worker` turns it off)."""

from pathlib import Path

from gateway.config.alerts import AlertsConfig
from gateway.config.file import check_config, load_config


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "steerway.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_serve_evaluates_unless_told_not_to(tmp_path: Path) -> None:
    assert load_config(_write(tmp_path, ""), {}).alerts.run_in_serve is True
    loaded = load_config(_write(tmp_path, "alerts:\n  run_in_serve: false\n"), {})
    assert loaded.alerts == AlertsConfig(interval=30.0, run_in_serve=False)


def test_anything_but_true_or_false_is_reported(tmp_path: Path) -> None:
    assert check_config(_write(tmp_path, "alerts:\n  run_in_serve: 'no'\n"), {}) == [
        "alerts.run_in_serve: expected true or false, got 'no'"
    ]
    assert check_config(_write(tmp_path, "alerts:\n  run_in_serve: 1\n"), {}) == [
        "alerts.run_in_serve: expected true or false, got 1"
    ]

"""The `live` section of the config."""

from pathlib import Path

from gateway.config.file import check_config, load_config
from gateway.config.live import LiveConfig


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "steerway.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_and_values(tmp_path: Path) -> None:
    assert load_config(_write(tmp_path, ""), {}).live == LiveConfig(
        viewer_queue=256, max_viewers=32, rows_per_second=100.0, channel_prefix="steerway:live"
    )
    text = (
        "live:\n"
        "  viewer_queue: 8\n"
        "  max_viewers: 2\n"
        "  rows_per_second: 0\n"
        "  channel_prefix: staging:live\n"
    )
    assert load_config(_write(tmp_path, text), {}).live == LiveConfig(
        viewer_queue=8, max_viewers=2, rows_per_second=0.0, channel_prefix="staging:live"
    )


def test_every_problem_is_reported(tmp_path: Path) -> None:
    text = (
        "live:\n"
        "  viewer_queue: 0\n"
        "  max_viewers: many\n"
        "  rows_per_second: -1\n"
        "  channel_prefix: ''\n"
        "  viewer_queues: 3\n"
    )
    assert check_config(_write(tmp_path, text), {}) == [
        "live: unknown field 'viewer_queues' (did you mean 'viewer_queue'?)",
        "live.viewer_queue: expected a positive integer, got 0",
        "live.max_viewers: expected a positive integer, got 'many'",
        "live.rows_per_second: expected a non-negative number, got -1",
        "live.channel_prefix: must not be empty",
    ]

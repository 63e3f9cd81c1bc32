"""`python -m benchmarks demo_data` runs and reports what it measured."""

from __future__ import annotations

import pytest

from benchmarks.cli import main


def test_it_writes_a_small_history_and_reports_the_rate(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo_data", "--requests", "300", "--days", "1", "--backends", "sqlite"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("sqlite")
    assert "300 traces" in line and "traces/s" in line and "us/trace" in line


def test_an_unknown_backend_is_refused() -> None:
    with pytest.raises(SystemExit) as exit:
        main(["demo_data", "--backends", "oracle"])
    assert exit.value.code == 2

"""`python -m benchmarks protocol` runs both protocols through real requests and reports both."""

from __future__ import annotations

import re

import pytest

from benchmarks.cli import main


def test_protocol_cost_reports_both_protocols_and_their_difference(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["protocol", "--rounds", "3", "--requests", "200"]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"^httptools: median \d+\.\d\d us CPU per request$", printed, re.M)
    assert re.search(r"^guarded: +median \d+\.\d\d us CPU per request$", printed, re.M)
    assert "over 3 rounds of 200 requests" in printed

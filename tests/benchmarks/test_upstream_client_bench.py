"""The upstream client benchmark runs both clients against a real mock provider."""

from __future__ import annotations

import pytest

from benchmarks import upstream_client


def test_both_clients_are_measured_and_compared(capsys: pytest.CaptureFixture[str]) -> None:
    assert upstream_client.main(["--requests", "30", "--seconds", "0.2", "--rounds", "1"]) == 0
    table = capsys.readouterr().out.split("medians of 1 rounds", 1)[1]
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines() if "|" in line}
    assert set(rows) >= {"client", "lean", "aiohttp", "lean ÷ aiohttp (paired)"}
    assert rows["lean ÷ aiohttp (paired)"].count("x |") == 6
    for name in ("lean", "aiohttp"):
        rps = float(rows[name].split(" | ")[3].replace(",", ""))
        assert rps > 0

"""The built-in rules in the Prometheus export: the two on the roll-ups' metrics become rules
that `promtool check rules` accepts (the p95 one compared with the same window a week
earlier), the two on the gateway's budgets and breakers are listed as skipped."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.keys.store import KeyStore
from tests.gateway.test_cli_alerts_export import promtool, steerway


@pytest.mark.parametrize("migrated_database_url", ["sqlite"], indirect=True)
async def test_built_in_rules_export_and_pass_promtool(
    engine: AsyncEngine, migrated_database_url: str, tmp_path: Path
) -> None:
    await KeyStore(engine).create_workspace("acme")
    ran = steerway(migrated_database_url, "alerts", "export", "--prometheus", "--workspace", "acme")
    assert ran.returncode == 0, ran.stderr
    (group,) = yaml.safe_load(ran.stdout)["groups"]
    exprs = {(rule["alert"], rule["labels"]["severity"]): rule["expr"] for rule in group["rules"]}
    assert sorted(exprs) == [
        ("SteerwayErrorRateAbove5", "critical"),
        ("SteerwayErrorRateAbove5", "warning"),
        ("SteerwayP95LatencyAboveTheSameHourLastWeek", "critical"),
        ("SteerwayP95LatencyAboveTheSameHourLastWeek", "warning"),
    ]
    latency = exprs[("SteerwayP95LatencyAboveTheSameHourLastWeek", "warning")]
    assert "[1h] offset 1w" in latency and "> 50" in latency
    path = tmp_path / "steerway.rules.yml"
    path.write_text(ran.stdout)
    checked = check_rules(path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def check_rules(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), "check", "rules", str(path)], capture_output=True, text=True, check=False
    )

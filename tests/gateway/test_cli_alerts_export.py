"""`steerway alerts export --prometheus` on SQLite and Postgres, run as the command itself: the
stored rules become exact PromQL, `promtool check rules` accepts the file, and `promtool test
rules` fires the error-rate rule on a scrape-shaped series."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.keys.store import KeyStore
from telemetry.alerts.rule import AlertRule
from telemetry.alerts.rule_store import create_rule

STEERWAY = str(Path(sys.executable).with_name("steerway"))

RULES = [
    AlertRule(
        name="High error rate",
        metric="error_rate",
        warning=0.02,
        critical=0.05,
        for_s=300,
        min_requests=20,
        group_by=["model"],
        labels={"team": "ml"},
    ),
    AlertRule(
        name="Slow p95",
        metric="latency_p95",
        critical=2000,
        filters={"provider": ["openai", "anthropic"]},
        window_s=600,
    ),
    AlertRule(name="Spend spike", metric="cost", condition="change_pct", warning=50, window_s=3600),
    AlertRule(name="Cache hits low", metric="cache_hit_rate", condition="below", warning=0.1),
    AlertRule(
        name="Anomalous cost", metric="anomaly_score", anomaly_kind="cost", warning=3, window_s=3600
    ),
    AlertRule(name="Spend per key", metric="cost", group_by=["key"], warning=10),
]

ERROR_RATE = (
    'sum by (model) (rate(steerway_requests_total{status_code=~"5.."}[5m])) / '
    "sum by (model) (rate(steerway_requests_total[5m]))"
)


def steerway(url: str, *args: str, config: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STEERWAY_DATABASE_URL": url}
    env.pop("STEERWAY_CONFIG", None)
    if config is not None:
        env["STEERWAY_CONFIG"] = str(config)
    return subprocess.run(
        [STEERWAY, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail(
            "promtool is missing: `make promtool` installs Debian's prometheus package "
            "(`make test` does it first)",
            pytrace=False,
        )
    return found


@pytest.fixture
async def stored(engine: AsyncEngine, migrated_database_url: str) -> str:
    for rule in RULES:
        await create_rule(engine, rule)
    return migrated_database_url


def by_name(text: str) -> dict[str, list[dict[str, object]]]:
    found: dict[str, list[dict[str, object]]] = {}
    for group in yaml.safe_load(text)["groups"]:
        for rule in group["rules"]:
            found.setdefault(rule["alert"], []).append(rule)
    return found


def test_the_rules_become_exact_promql_and_the_rest_are_listed_as_skipped(stored: str) -> None:
    ran = steerway(stored, "alerts", "export", "--prometheus")
    assert ran.returncode == 0, ran.stderr
    alerts = by_name(ran.stdout)
    assert sorted(alerts) == [
        "SteerwayCacheHitsLow",
        "SteerwayHighErrorRate",
        "SteerwaySlowP95",
        "SteerwaySpendSpike",
    ]
    critical, warning = alerts["SteerwayHighErrorRate"]
    requests = "sum by (model) (increase(steerway_requests_total[5m])) >= 20"
    assert critical["expr"] == f"({ERROR_RATE} > 0.05) and on (model) ({requests})"
    assert warning["expr"] == f"({ERROR_RATE} > 0.02) and on (model) ({requests})"
    assert critical["for"] == "5m"
    assert critical["labels"] == {
        "team": "ml",
        "severity": "critical",
        "workspace": "default",
        "steerway_rule_id": critical["labels"]["steerway_rule_id"],  # type: ignore[index]
    }
    assert warning["labels"]["severity"] == "warning"  # type: ignore[index]
    assert critical["annotations"] == {
        "summary": "High error rate: error_rate {{ $value }} over 5m "
        "(model={{ $labels.model }}) (threshold 0.05)"
    }
    [slow] = alerts["SteerwaySlowP95"]
    assert slow["expr"] == (
        "histogram_quantile(0.95, sum by (le) (rate(gen_ai_client_operation_duration_seconds_bucket"
        '{gen_ai_provider_name=~"openai|anthropic"}[10m]))) * 1000 > 2000'
    )
    assert "for" not in slow
    [spike] = alerts["SteerwaySpendSpike"]
    now = "sum(increase(steerway_cost_usd_total[1h]))"
    before = "sum(increase(steerway_cost_usd_total[1h] offset 1h))"
    assert spike["expr"] == f"(({now}) - ({before})) / abs({before}) * 100 > 50"
    [cache] = alerts["SteerwayCacheHitsLow"]
    assert cache["expr"] == (
        'sum(rate(steerway_cache_requests_total{result="hit"}[5m])) / '
        "sum(rate(steerway_requests_total[5m])) < 0.1"
    )
    header = ran.stdout.split("groups:")[0]
    for text in (header, ran.stderr):
        assert "Anomalous cost" in text and "anomaly scores are computed" in text
        assert "Spend per key" in text and "no label for key" in text
    assert "Traceback" not in ran.stderr


def test_promtool_accepts_the_file_and_fires_the_error_rate_rule(
    stored: str, tmp_path: Path
) -> None:
    tool = promtool()
    output = tmp_path / "steerway.rules.yml"
    ran = steerway(stored, "alerts", "export", "--prometheus", "--output", str(output))
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == ""
    checked = subprocess.run(
        [tool, "check", "rules", str(output)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 5 rules found" in checked.stdout
    rule_id = by_name(output.read_text())["SteerwayHighErrorRate"][0]["labels"]["steerway_rule_id"]  # type: ignore[index]
    scenario = {
        "rule_files": [output.name],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {
                        "series": 'steerway_requests_total{model="gpt-4o",status_code="200"}',
                        "values": "0+60x20",
                    },
                    {
                        "series": 'steerway_requests_total{model="gpt-4o",status_code="502"}',
                        "values": "0+6x20",
                    },
                    {
                        "series": 'steerway_requests_total{model="small",status_code="200"}',
                        "values": "0+60x20",
                    },
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "15m",
                        "alertname": "SteerwayHighErrorRate",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "model": "gpt-4o",
                                    "severity": severity,
                                    "team": "ml",
                                    "workspace": "default",
                                    "steerway_rule_id": rule_id,
                                },
                                "exp_annotations": {
                                    "summary": "High error rate: error_rate 0.09090909090909091 "
                                    f"over 5m (model=gpt-4o) (threshold {threshold})"
                                },
                            }
                            for severity, threshold in (("critical", "0.05"), ("warning", "0.02"))
                        ],
                    }
                ],
            }
        ],
    }
    tests = tmp_path / "tests.yml"
    tests.write_text(yaml.safe_dump(scenario, sort_keys=False))
    tested = subprocess.run(
        [tool, "test", "rules", tests.name],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


@pytest.mark.parametrize("migrated_database_url", ["sqlite"], indirect=True)
def test_an_unknown_workspace_is_one_line_and_a_failure(stored: str) -> None:
    ran = steerway(stored, "alerts", "export", "--prometheus", "--workspace", "nowhere")
    assert ran.returncode == 1
    assert ran.stdout == ""
    assert ran.stderr == "steerway: unknown workspace 'nowhere'\n"
    without_format = steerway(stored, "alerts", "export")
    assert without_format.returncode == 1
    assert without_format.stderr == "steerway: say which format: --prometheus\n"


@pytest.mark.parametrize("migrated_database_url", ["sqlite"], indirect=True)
async def test_one_workspace_by_slug_with_links_to_the_console(
    stored: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    acme = (await KeyStore(engine).create_workspace("acme")).workspace_id
    rule = await create_rule(
        engine, AlertRule(name="Acme spend", metric="cost", warning=5, workspace_id=acme)
    )
    config = tmp_path / "steerway.yaml"
    config.write_text("console:\n  public_url: https://steerway.example.com/\n")
    ran = steerway(stored, "alerts", "export", "--prometheus", "--workspace", "acme", config=config)
    assert ran.returncode == 0, ran.stderr
    # The built-in rules on the gateway's budgets and breakers have no equivalent at /metrics.
    assert ran.stderr == (
        "steerway: skipped 'Budget soft limit reached': the metric budget_used_pct is not "
        "exported at /metrics\n"
        "steerway: skipped 'Deployment in cooldown': the metric deployment_down is not exported "
        "at /metrics\n"
    )
    [group] = yaml.safe_load(ran.stdout)["groups"]
    assert group["name"] == "steerway-acme"
    [alert] = [r for r in group["rules"] if r["labels"]["steerway_rule_id"] == rule.id]
    assert alert["expr"] == "sum(increase(steerway_cost_usd_total[5m])) > 5"
    assert alert["labels"]["workspace"] == "acme"
    assert alert["annotations"]["console"] == (
        f"https://steerway.example.com/admin/alerts?rule={rule.id}"
    )

"""The PromQL of the Grafana dashboards and the alerting rules parses with Debian's promtool, the
Prometheus config loads its rule files, and the alerting rules fire on scrape-shaped series."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.stack_files import (
    DEPLOY,
    RULE_FILES,
    Expression,
    dashboard_expressions,
    names,
    rule_expressions,
    substitute,
)
from tests.gateway.test_cli_alerts_export import promtool


def _check_rules(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), "check", "rules", str(path)], capture_output=True, text=True, check=False
    )


def _as_recording_rules(expressions: list[Expression], path: Path) -> None:
    """promtool parses the expression of every rule it checks: one recording rule each."""
    rules = [
        {"record": f"steerway_check:expression_{index}", "expr": expression.promql}
        for index, expression in enumerate(expressions)
    ]
    path.write_text(yaml.safe_dump({"groups": [{"name": "check", "rules": rules}]}))


def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    expressions = dashboard_expressions()
    assert len(expressions) >= 30
    path = tmp_path / "dashboards.rules.yml"
    _as_recording_rules(expressions, path)
    checked = _check_rules(path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(expressions)} rules found" in checked.stdout


def test_a_query_that_does_not_parse_is_reported(tmp_path: Path) -> None:
    broken = [Expression("broken", "sum by (le (rate(steerway_requests_total[1m]))")]
    path = tmp_path / "broken.rules.yml"
    _as_recording_rules(broken, path)
    checked = _check_rules(path)
    assert checked.returncode != 0
    assert "steerway_check:expression_0" in checked.stdout + checked.stderr


def test_the_alerting_rules_and_the_prometheus_config_pass_promtool() -> None:
    for path in RULE_FILES:
        checked = _check_rules(path)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    assert len(rule_expressions()) >= 10
    config = DEPLOY / "prometheus" / "prometheus.yml"
    checked = subprocess.run(
        [promtool(), "check", "config", str(config)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in checked.stdout


def test_the_recorder_and_replica_alerts_fire_on_scrape_shaped_series(tmp_path: Path) -> None:
    [rules] = RULE_FILES
    (tmp_path / rules.name).write_text(rules.read_text())
    gateway_1 = 'instance="gateway-1:9464",job="steerway"'
    gateway_2 = 'instance="gateway-2:9464",job="steerway"'
    scenario = {
        "rule_files": [rules.name],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": f"up{{{gateway_1}}}", "values": "1x10"},
                    {"series": f"up{{{gateway_2}}}", "values": "1 1 1 0x7"},
                    {
                        "series": f"steerway_telemetry_dropped_total{{{gateway_1}}}",
                        "values": "0x10",
                    },
                    {
                        "series": f"steerway_telemetry_dropped_total{{{gateway_2}}}",
                        "values": "0 0 0 0 0 40 40 40 40 40 40",
                    },
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "6m",
                        "alertname": "SteerwayReplicaDown",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "critical",
                                    "instance": "gateway-2:9464",
                                    "job": "steerway",
                                },
                                "exp_annotations": {
                                    "summary": "Gateway replica gateway-2:9464 has not answered "
                                    "a scrape for 1 minute"
                                },
                            }
                        ],
                    },
                    {
                        "eval_time": "6m",
                        "alertname": "SteerwayRecorderDropping",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "critical",
                                    "instance": "gateway-2:9464",
                                },
                                "exp_annotations": {
                                    "summary": "gateway-2:9464: the recorder's queue was full and "
                                    "40 trace bundles were dropped"
                                },
                            }
                        ],
                    },
                    {"eval_time": "2m", "alertname": "SteerwayReplicaDown", "exp_alerts": []},
                ],
            }
        ],
    }
    path = tmp_path / "tests.yml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    tested = subprocess.run(
        [promtool(), "test", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_names_reads_metrics_and_labels_and_not_functions_strings_or_durations() -> None:
    found = names(
        'histogram_quantile(0.95, sum by (le, gen_ai_request_model) (rate(a_seconds_bucket{x=~"b_c|d", '
        'y!="rate(e_total)"}[5m] offset 1h))) / on (instance) group_left (zone) '
        "sum without (job) (f_total) and bool 1e3 > inf"
    )
    assert found.selectors == [
        ("a_seconds_bucket", frozenset({"x", "y"})),
        ("f_total", frozenset()),
    ]
    assert found.grouping == {"le", "gen_ai_request_model", "instance", "zone", "job"}


def test_substitute_puts_durations_and_all_values_in_and_refuses_an_unknown_variable() -> None:
    text = 'rate(m{model=~"$model", x=~"${model}"}[$__rate_interval]) [[model]] [$__range]'
    assert substitute(text, {"model": ".*"}) == 'rate(m{model=~".*", x=~".*"}[1m]) .* [6h]'
    with pytest.raises(ValueError, match=r"unknown Grafana variable \$provider"):
        substitute('m{provider=~"$provider"}', {"model": ".*"})

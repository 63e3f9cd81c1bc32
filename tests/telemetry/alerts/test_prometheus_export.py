"""The mapping of one rule to PromQL, for the cases the command's tests do not store."""

from __future__ import annotations

import yaml

from telemetry.alerts.prometheus_export import duration, export_rules, expression
from telemetry.alerts.rule import AlertRule


def test_durations_take_the_largest_whole_unit() -> None:
    assert [duration(s) for s in (60, 300, 3600, 5400, 86400, 604800, 90)] == [
        "1m",
        "5m",
        "1h",
        "90m",
        "1d",
        "1w",
        "90s",
    ]


def test_several_filter_values_are_one_escaped_regex_and_groups_are_renamed_labels() -> None:
    rule = AlertRule(
        name="tokens",
        metric="output_tokens",
        warning=1e6,
        filters={"model": ["gpt-4.1", 'a"b']},
        group_by=["provider"],
    )
    assert expression(rule, 1e6) == (
        "sum by (gen_ai_provider_name) (increase(gen_ai_client_token_usage_sum"
        '{gen_ai_token_type="output",gen_ai_request_model=~"gpt\\\\-4\\\\.1|a\\"b"}[5m])) > 1e+06'
    )


def test_retries_map_and_a_cache_rule_split_by_model_is_skipped_with_its_reason() -> None:
    retries = AlertRule(name="retries", metric="retries", warning=10, group_by=["model"])
    cache = AlertRule(name="hits", metric="cache_hits", warning=1, filters={"model": ["m"]})
    export = export_rules([retries, cache], {})
    assert "sum by (model) (increase(steerway_retries_total[5m])) > 10" in export.text
    [skipped] = export.skipped
    assert skipped.rule is cache
    assert skipped.reason == "the exported series of cache_hits have no label for model"


def test_the_summary_keeps_prometheus_placeholders_whole_and_names_the_series_labels() -> None:
    rule = AlertRule(
        name="p99",
        metric="latency_p99",
        warning=900,
        group_by=["model"],
        message="{rule} at {value:.3} ms for {labels[model]}{group} ({threshold:>6})",
    )
    [group] = yaml.safe_load(export_rules([rule], {}).text)["groups"]
    [alert] = group["rules"]
    assert alert["annotations"]["summary"] == (
        "p99 at {{ $value }} ms for {{ $labels.gen_ai_request_model }}"
        " (model={{ $labels.gen_ai_request_model }}) (   900)"
    )


def test_a_label_prometheus_cannot_name_skips_the_rule() -> None:
    rule = AlertRule(name="r", metric="requests", warning=1, labels={"on-call": "ml"})
    [skipped] = export_rules([rule], {}).skipped
    assert skipped.reason == "the label name 'on-call' is not a Prometheus label name"

"""The `alerts` section of the config."""

from pathlib import Path

from gateway.config.alerts import AlertsConfig
from gateway.config.file import check_config, load_config


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


CHANNELS_AND_RULES = """
alerts:
  channels:
    - name: ops hook
      kind: webhook
      settings: {url: "https://hooks.example/steerway", timeout_s: 5}
      secrets: {signing_secret: "${OPS_HOOK_SECRET}"}
    - name: on-call
      workspace: team-a
      kind: pagerduty
      secrets: {routing_key: "${PD_KEY}"}
  rules:
    - name: Error rate by model
      metric: error_rate
      group_by: [model]
      window: 5m
      critical: 0.05
      for: 2m
      min_requests: 20
      channels: [ops hook]
    - name: Deployments
      workspace: team-a
      metric: deployment_down
      group_by: [deployment]
      warning: 0
      channels: [on-call]
"""
ENVIRON = {"OPS_HOOK_SECRET": "whsec-from-env", "PD_KEY": "pd-routing-key-from-env"}


def test_channels_and_rules_keep_secrets_as_references(tmp_path: Path) -> None:
    alerts = load_config(_write(tmp_path, CHANNELS_AND_RULES), ENVIRON).alerts
    hook, on_call = alerts.channels
    assert (hook.path, hook.workspace, hook.channel.name) == (
        "alerts.channels[0]",
        "default",
        "ops hook",
    )
    assert hook.channel.secrets == {"signing_secret": "${OPS_HOOK_SECRET}"}
    assert hook.channel.settings == {"url": "https://hooks.example/steerway", "timeout_s": 5}
    assert (on_call.workspace, on_call.channel.secrets) == ("team-a", {"routing_key": "${PD_KEY}"})
    errors, down = alerts.rules
    assert (errors.path, errors.workspace, errors.channels) == (
        "alerts.rules[0]",
        "default",
        ("ops hook",),
    )
    assert (errors.rule.window_s, errors.rule.for_s, errors.rule.channel_ids) == (300, 120, [])
    assert (down.workspace, down.rule.metric, down.channels) == (
        "team-a",
        "deployment_down",
        ("on-call",),
    )
    assert "from-env" not in repr(alerts)


BAD = """
alerts:
  channels:
    - name: hook
      kind: webhook
      settings: {url: "https://hooks.example/x"}
      secrets: {signing_secret: whsec-written-in-the-file}
    - name: pager
      kind: pagerduty
      secrets: {routing_key: "${PD_KEY}"}
      colour: red
    - name: pager
      kind: pagerduty
      secrets: {routing_key: "${PD_KEY}"}
    - name: slack
      kind: slack
      secrets: {}
  rules:
    - name: Budgets
      metric: budget_used_pct
      window: 1h
      warning: 80
    - name: Latency
      metric: latency_p95
      condition: change_pct
      compare_to: last_week
      warning: 50
      critical: 20
    - metric: errors
      critical: 1
    - name: Bad channels
      metric: errors
      critical: 1
      channels: hook
    - name: Latency
      metric: latency_p95
      critical: 900
"""


def test_every_problem_names_its_path(tmp_path: Path) -> None:
    assert check_config(_write(tmp_path, BAD), {"PD_KEY": "k"}) == [
        "alerts.channels[0].secrets.signing_secret: expected a ${ENV_NAME} reference: never "
        "the secret itself",
        "alerts.channels[1]: unknown field 'colour'",
        "alerts.channels[2].name: a second channel named 'pager' in 'default'",
        "alerts.channels[3]: channel 'slack' (slack): missing secret 'webhook_url'",
        "alerts.rules[0].window: budget_used_pct is read as it stands at each evaluation, not "
        "over a window: leave window out",
        "alerts.rules[1].critical: must be at least the warning threshold",
        "alerts.rules[2]: missing required field 'name'",
        "alerts.rules[3].channels: expected a list of channel names",
    ]


def test_an_unset_secret_variable_is_reported(tmp_path: Path) -> None:
    assert check_config(_write(tmp_path, CHANNELS_AND_RULES), {"PD_KEY": "k"}) == [
        "alerts.channels[0].secrets.signing_secret: environment variable OPS_HOOK_SECRET is not set"
    ]

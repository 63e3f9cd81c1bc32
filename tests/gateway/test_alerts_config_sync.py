"""The config file's alert channels and rules applied to the database at start, on both
backends: made, changed, removed, never taking over what the console made, and errors that
stop the start with the path of the entry."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.config.file import ConfigError, GatewayConfig, load_config
from gateway.keys.store import KeyStore
from server.alerts_setup import prepare_alerts
from telemetry.alerts import AlertRule, ChannelConfig
from telemetry.alerts.channel_store import list_channels
from telemetry.alerts.rule_store import create_channel, create_rule, load_rules
from telemetry.schema import DEFAULT_WORKSPACE_ID, audit_log
from tests.gateway.test_alerts_config import CHANNELS_AND_RULES, ENVIRON


def _config(tmp_path: Path, text: str) -> GatewayConfig:
    path = tmp_path / "steerway.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path, ENVIRON)


async def _from_file(engine: AsyncEngine) -> tuple[dict[str, AlertRule], dict[str, ChannelConfig]]:
    rules = {r.name: r for r in await load_rules(engine) if r.managed_by == "config"}
    channels = {
        c.channel.name: c.channel
        for c in await list_channels(engine, None)
        if c.managed_by == "config"
    }
    return rules, channels


async def test_made_changed_and_removed_by_name(engine: AsyncEngine, tmp_path: Path) -> None:
    team = await KeyStore(engine).create_workspace("team-a")
    await prepare_alerts(engine, _config(tmp_path, CHANNELS_AND_RULES))
    rules, channels = await _from_file(engine)
    assert sorted(rules) == ["Deployments", "Error rate by model"]
    assert sorted(channels) == ["on-call", "ops hook"]
    errors, down = rules["Error rate by model"], rules["Deployments"]
    assert (errors.workspace_id, errors.channel_ids) == (
        DEFAULT_WORKSPACE_ID,
        [channels["ops hook"].id],
    )
    assert (down.workspace_id, down.channel_ids) == (team.workspace_id, [channels["on-call"].id])
    assert channels["ops hook"].secrets == {"signing_secret": "${OPS_HOOK_SECRET}"}

    await prepare_alerts(engine, _config(tmp_path, CHANNELS_AND_RULES))  # nothing to do
    assert await _from_file(engine) == (rules, channels)

    changed = CHANNELS_AND_RULES.replace("critical: 0.05", "critical: 0.08").replace(
        "timeout_s: 5", "timeout_s: 7"
    )
    removed = changed[: changed.index("    - name: Deployments")]
    removed = removed.replace(
        """    - name: on-call
      workspace: team-a
      kind: pagerduty
      secrets: {routing_key: "${PD_KEY}"}
""",
        "",
    )
    await prepare_alerts(engine, _config(tmp_path, removed))
    after_rules, after_channels = await _from_file(engine)
    assert sorted(after_rules) == ["Error rate by model"] and sorted(after_channels) == ["ops hook"]
    assert after_rules["Error rate by model"].id == errors.id
    assert after_rules["Error rate by model"].critical == 0.08
    assert after_channels["ops hook"].id == channels["ops hook"].id
    assert after_channels["ops hook"].settings["timeout_s"] == 7
    assert await _audited(engine) == [
        ("alert_channel.create", "default/ops hook"),
        ("alert_channel.create", "team-a/on-call"),
        ("alert_rule.create", "default/Error rate by model"),
        ("alert_rule.create", "team-a/Deployments"),
        ("alert_channel.update", "default/ops hook"),
        ("alert_rule.update", "default/Error rate by model"),
        ("alert_rule.delete", "team-a/Deployments"),
        ("alert_channel.delete", "team-a/on-call"),
    ]


async def _audited(engine: AsyncEngine) -> list[tuple[str, str]]:
    """The audit log's entries by the config file: action and `<workspace slug>/<name>`."""
    slugs = {w.workspace_id: w.slug for w in await KeyStore(engine).list_workspaces()}
    query = (
        sa.select(audit_log.c.action, audit_log.c.workspace_id, audit_log.c.after)
        .where(audit_log.c.actor == "config file")
        .order_by(audit_log.c.audit_id)
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    return [(action, f"{slugs[workspace]}/{after['name']}") for action, workspace, after in rows]


async def test_two_processes_starting_together_apply_it_once(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    await KeyStore(engine).create_workspace("team-a")
    config = _config(tmp_path, CHANNELS_AND_RULES)
    await asyncio.gather(prepare_alerts(engine, config), prepare_alerts(engine, config))
    rules, channels = await _from_file(engine)
    assert sorted(rules) == ["Deployments", "Error rate by model"]
    assert sorted(channels) == ["on-call", "ops hook"]
    assert len(await list_channels(engine, None)) == 2


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (
            ("workspace: team-a", "workspace: team-z"),
            "alerts.channels[1].workspace: no workspace 'team-z'",
        ),
        (
            ("channels: [ops hook]", "channels: [ops hook, nowhere]"),
            "alerts.rules[0].channels[1]: no channel named 'nowhere' in workspace 'default'",
        ),
    ],
)
async def test_an_entry_that_cannot_be_applied_stops_the_start(
    engine: AsyncEngine, tmp_path: Path, change: tuple[str, str], error: str
) -> None:
    await KeyStore(engine).create_workspace("team-a")
    with pytest.raises(ConfigError) as raised:
        await prepare_alerts(engine, _config(tmp_path, CHANNELS_AND_RULES.replace(*change)))
    assert raised.value.problems == [error]


async def test_what_the_console_made_is_never_taken_over(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    await KeyStore(engine).create_workspace("team-a")
    await create_rule(engine, AlertRule(name="Error rate by model", metric="errors", critical=1.0))
    with pytest.raises(ConfigError) as raised:
        await prepare_alerts(engine, _config(tmp_path, CHANNELS_AND_RULES))
    assert raised.value.problems == [
        "alerts.rules[0].name: a rule named 'Error rate by model' made in the console or API "
        "exists in workspace 'default'; rename one of them"
    ]
    await create_channel(
        engine,
        ChannelConfig(kind="slack", name="ops hook", secrets={"webhook_url": "${SLACK_URL}"}),
        workspace_id=DEFAULT_WORKSPACE_ID,
    )
    with pytest.raises(ConfigError) as raised:
        await prepare_alerts(engine, _config(tmp_path, CHANNELS_AND_RULES))
    assert raised.value.problems == [
        "alerts.channels[0].name: a channel named 'ops hook' made in the console or API exists "
        "in workspace 'default'; rename one of them"
    ]

"""What a process that evaluates alerts does with the database before its first round: apply
the config file's channels and rules, and give every workspace the built-in rules it was never
given. `steerway serve` and `steerway worker` both run it at start. What the file changed is in
the audit log, by the actor "config file"."""

from __future__ import annotations

import logging
from typing import Final

from sqlalchemy.ext.asyncio import AsyncEngine

from admin_ui.audit import Actor, record_change
from gateway.config.file import ConfigError, GatewayConfig
from telemetry.alerts.builtin_rules import install_builtins
from telemetry.alerts.config_sync import SyncError, log_report, sync_from_file
from telemetry.db_outage import is_unavailable

logger = logging.getLogger("steerway.alerts")
CONFIG_FILE: Final = Actor("config file", "cli")


async def prepare_alerts(engine: AsyncEngine, config: GatewayConfig) -> None:
    """`ConfigError` (naming the entry) when the file's alerts cannot be applied. While the
    database is unreachable this is skipped with a warning: the next start applies them."""
    try:
        report = await sync_from_file(engine, config.alerts.channels, config.alerts.rules)
        log_report(report)
        for change in report.changes:
            await record_change(
                engine,
                actor=CONFIG_FILE,
                action=change.action,
                target_type=change.target_type,
                target_id=change.target_id,
                workspace_id=change.workspace_id,
                after={"name": change.label.partition("/")[2], "managed_by": "config"},
            )
        made = await install_builtins(engine)
    except SyncError as error:
        raise ConfigError([str(error)]) from None
    except Exception as error:
        if not is_unavailable(error):
            raise
        logger.warning(
            "alerts from the config file and built-in rules not applied: database unreachable"
        )
        return
    if made:
        logger.info("built-in alert rules given to workspaces: %d", made)

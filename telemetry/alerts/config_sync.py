"""Applying the config file's alert channels and rules to the database, at start.

Each is matched by name within its workspace: made when new, changed when it differs, and
marked `managed_by: config`, so the admin API refuses to change or delete it (the file alone
does). One the file no longer has is deleted (a rule with its alerts' history). A channel or
rule of the same name made in the console is never taken over: that is an error naming the
entry, as is an unknown workspace or channel. Processes starting together apply it one after
the other (a Postgres advisory lock; on SQLite a file lock beside the database), so the later
ones find it applied. Problems that would stop it (an unknown workspace or channel, a name the
console already uses) are found before anything is changed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Final

import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from telemetry.alerts.channel_store import (
    ChannelInUse,
    StoredChannel,
    add_channel,
    delete_channel,
    list_channels,
    replace_channel,
)
from telemetry.alerts.config_items import MANAGED_BY_CONFIG, FileChannel, FileRule
from telemetry.alerts.rule import AlertRule, RuleError
from telemetry.alerts.rule_store import (
    create_rule,
    delete_rule,
    load_rules,
    update_rule,
)
from telemetry.ids import uuid7_hex
from telemetry.schema import workspaces
from telemetry.sync_lock import config_sync_lock

logger = logging.getLogger("steerway.telemetry.alerts.config_sync")

SYNC_LOCK_KEY: Final = 0x5374_6657_0003
"""The config sync's advisory lock (the evaluators' and the roll-up folder's are others)."""


class SyncError(Exception):
    """The file's alerts cannot be applied; `path` names the entry or field."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.reason = message


@dataclass(frozen=True, slots=True)
class SyncChange:
    """One channel or rule the file made, changed or removed, for the log and the audit log."""

    action: str
    """As the admin API's audit entries name it: `alert_rule.create`, `alert_channel.delete`."""
    target_id: str
    workspace_id: str
    label: str
    """`<workspace slug>/<name>`."""

    @property
    def target_type(self) -> str:
        return self.action.partition(".")[0]


@dataclass(slots=True)
class SyncReport:
    changes: list[SyncChange] = field(default_factory=list)

    def add(self, action: str, target_id: str, workspace_id: str, label: str) -> None:
        self.changes.append(SyncChange(action, target_id, workspace_id, label))


async def sync_from_file(
    engine: AsyncEngine, channels: Sequence[FileChannel], rules: Sequence[FileRule]
) -> SyncReport:
    """Make the database's config-managed channels and rules what the file says."""
    async with config_sync_lock(engine, "alerts", SYNC_LOCK_KEY):
        return await _sync(engine, channels, rules)


async def _sync(
    engine: AsyncEngine, channels: Sequence[FileChannel], rules: Sequence[FileRule]
) -> SyncReport:
    report = SyncReport()
    slugs = await _workspace_ids(engine)
    ids_by_slug = {slug: id_ for id_, slug in slugs.items()}
    stored = await list_channels(engine, None)
    existing = {(rule.workspace_id, rule.name): rule for rule in await load_rules(engine)}
    _check(channels, rules, ids_by_slug, stored, existing)
    kept_channels = await _apply_channels(engine, channels, ids_by_slug, stored, report)
    stored = await list_channels(engine, None)
    by_name = {(s.workspace_id, s.channel.name): s.channel.id for s in stored}
    kept_rules: set[str] = set()
    for item in rules:
        workspace_id = ids_by_slug[item.workspace]
        wanted = _with_channels(item, workspace_id, by_name)
        current = existing.get((workspace_id, item.rule.name))
        label = f"{item.workspace}/{item.rule.name}"
        if current is None:
            made = msgspec.structs.replace(wanted, id=uuid7_hex(), managed_by=MANAGED_BY_CONFIG)
            kept_rules.add((await _stored_rule(create_rule(engine, made), item)).id)
            report.add("alert_rule.create", made.id, workspace_id, label)
            continue
        kept_rules.add(current.id)
        wanted = msgspec.structs.replace(
            wanted, id=current.id, built_in=current.built_in, managed_by=MANAGED_BY_CONFIG
        )
        if wanted != current:
            await _stored_rule(update_rule(engine, wanted), item)
            report.add("alert_rule.update", current.id, workspace_id, label)
    for (workspace_id, name), rule in sorted(existing.items()):
        if rule.managed_by == MANAGED_BY_CONFIG and rule.id not in kept_rules:
            await delete_rule(engine, rule.id)
            label = f"{slugs.get(workspace_id, workspace_id)}/{name}"
            report.add("alert_rule.delete", rule.id, workspace_id, label)
    for found in await list_channels(engine, None):
        if found.managed_by == MANAGED_BY_CONFIG and found.channel.id not in kept_channels:
            try:
                await delete_channel(engine, found)
            except ChannelInUse as error:
                raise SyncError(
                    "alerts.channels",
                    f"the channel '{found.channel.name}' was removed from the file but rules "
                    f"still notify it: {error}",
                ) from None
            label = f"{slugs.get(found.workspace_id, found.workspace_id)}/{found.channel.name}"
            report.add("alert_channel.delete", found.channel.id, found.workspace_id, label)
    return report


def _check(
    channels: Sequence[FileChannel],
    rules: Sequence[FileRule],
    ids_by_slug: dict[str, str],
    stored: Sequence[StoredChannel],
    existing: dict[tuple[str, str], AlertRule],
) -> None:
    """Everything that would stop the file from being applied, found before anything is
    changed: an unknown workspace, a name the console already uses, an unknown channel."""
    entries = [(i.path, i.workspace) for i in channels] + [(i.path, i.workspace) for i in rules]
    for path, workspace in entries:
        if workspace not in ids_by_slug:
            raise SyncError(f"{path}.workspace", f"no workspace '{workspace}'")
    console_channels = {
        (s.workspace_id, s.channel.name) for s in stored if s.managed_by != MANAGED_BY_CONFIG
    }
    for item in channels:
        if (ids_by_slug[item.workspace], item.channel.name) in console_channels:
            raise SyncError(
                f"{item.path}.name",
                f"a channel named '{item.channel.name}' made in the console or API exists in "
                f"workspace '{item.workspace}'; rename one of them",
            )
    known = {(s.workspace_id, s.channel.name) for s in stored} | {
        (ids_by_slug[i.workspace], i.channel.name) for i in channels
    }
    for rule in rules:
        workspace_id = ids_by_slug[rule.workspace]
        current = existing.get((workspace_id, rule.rule.name))
        if current is not None and current.managed_by != MANAGED_BY_CONFIG:
            raise SyncError(
                f"{rule.path}.name",
                f"a rule named '{rule.rule.name}' made in the console or API exists in "
                f"workspace '{rule.workspace}'; rename one of them",
            )
        for index, name in enumerate(rule.channels):
            if (workspace_id, name) not in known:
                raise SyncError(
                    f"{rule.path}.channels[{index}]",
                    f"no channel named '{name}' in workspace '{rule.workspace}'",
                )


async def _apply_channels(
    engine: AsyncEngine,
    channels: Sequence[FileChannel],
    ids_by_slug: dict[str, str],
    stored: Sequence[StoredChannel],
    report: SyncReport,
) -> set[str]:
    """Make or change the file's channels; the ids of those it has."""
    existing = {(s.workspace_id, s.channel.name): s for s in stored}
    kept: set[str] = set()
    for item in channels:
        workspace_id = ids_by_slug[item.workspace]
        current = existing.get((workspace_id, item.channel.name))
        label = f"{item.workspace}/{item.channel.name}"
        if current is None:
            made = msgspec.structs.replace(item.channel, id=uuid7_hex())
            await add_channel(engine, made, workspace_id, managed_by=MANAGED_BY_CONFIG)
            kept.add(made.id)
            report.add("alert_channel.create", made.id, workspace_id, label)
            continue
        kept.add(current.channel.id)
        wanted = msgspec.structs.replace(item.channel, id=current.channel.id)
        if wanted != current.channel:
            await replace_channel(engine, wanted)
            report.add("alert_channel.update", current.channel.id, workspace_id, label)
    return kept


def _with_channels(
    item: FileRule, workspace_id: str, by_name: dict[tuple[str, str], str]
) -> AlertRule:
    ids = []
    for index, name in enumerate(item.channels):
        found = by_name.get((workspace_id, name))
        if found is None:
            raise SyncError(
                f"{item.path}.channels[{index}]",
                f"no channel named '{name}' in workspace '{item.workspace}'",
            )
        ids.append(found)
    return msgspec.structs.replace(item.rule, workspace_id=workspace_id, channel_ids=ids)


async def _stored_rule(storing: Awaitable[AlertRule], item: FileRule) -> AlertRule:
    try:
        return await storing
    except RuleError as error:
        raise SyncError(f"{item.path}.{error.field}", error.reason) from None


async def _workspace_ids(engine: AsyncEngine) -> dict[str, str]:
    """Workspace id → slug."""
    async with engine.connect() as connection:
        rows = await connection.execute(sa.select(workspaces.c.workspace_id, workspaces.c.slug))
        return {workspace_id: slug for workspace_id, slug in rows}


def log_report(report: SyncReport) -> None:
    for change in report.changes:
        logger.info("alerts from the config file: %s %s", change.action, change.label)

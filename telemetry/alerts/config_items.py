"""Channels and rules as the config file declares them (`alerts.channels`, `alerts.rules`),
each with the path of its entry in the file, for `config_sync` to apply."""

from __future__ import annotations

from typing import Final

import msgspec

from telemetry.alerts.channel_config import ChannelConfig
from telemetry.alerts.rule import AlertRule

MANAGED_BY_CONFIG: Final = "config"
DEFAULT_WORKSPACE_SLUG: Final = "default"


class FileChannel(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    """Where it is in the file: `alerts.channels[0]`."""
    workspace: str
    """The workspace's slug."""
    channel: ChannelConfig


class FileRule(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    workspace: str
    rule: AlertRule
    """Checked, without channels: they are named in `channels`."""
    channels: tuple[str, ...] = ()
    """Names of channels of the rule's workspace (from the file or made in the console)."""

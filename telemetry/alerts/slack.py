"""Slack channel: a message to an incoming webhook, whose URL is the secret `webhook_url`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from telemetry.alerts.attempts import DeliverySettings, Progress
from telemetry.alerts.http_post import post
from telemetry.alerts.kind import ChannelKind
from telemetry.alerts.notification import Notification
from telemetry.alerts.slack_message import slack_message


class SlackSettings(DeliverySettings, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


async def send(
    settings: SlackSettings,
    secrets: Mapping[str, str],
    notification: Notification,
    progress: Progress,
) -> None:
    await post_message(settings, secrets, slack_message(notification), progress)


async def post_message(
    settings: DeliverySettings,
    secrets: Mapping[str, str],
    message: dict[str, Any],
    progress: Progress,
) -> None:
    """Any Slack message to the channel's incoming webhook (a report's too)."""
    await post(
        secrets["webhook_url"],
        msgspec.json.encode(message),
        headers=lambda: {"Content-Type": "application/json"},
        settings=settings,
        progress=progress,
    )


KIND = ChannelKind(
    name="slack",
    settings_type=SlackSettings,
    send=send,
    required_secrets=frozenset({"webhook_url"}),
)

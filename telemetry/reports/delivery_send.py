"""Sending a made report to notification channels: email (a summary with the files attached),
webhook (signed JSON with the download links) and Slack (the headline figures and a link to the
console).

Every channel at once and each bounded by its own deadline (the alerts' delivery core,
`deliver_with`), so a recipient that hangs or fails never holds back another. Nothing raises:
each recipient's outcome is a `DeliveryResult` with its secrets masked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from telemetry.alerts.attempts import Progress
from telemetry.alerts.channel_config import ChannelConfig
from telemetry.alerts.delivery import DeliveryResult, SendOne, deliver_with
from telemetry.alerts.slack import post_message
from telemetry.alerts.smtp import EmailSettings, send_message
from telemetry.alerts.webhook import WebhookSettings, post_signed
from telemetry.ids import uuid7_hex
from telemetry.reports.delivery_messages import (
    Made,
    email_message,
    slack_message,
    webhook_payload,
)
from telemetry.reports.document import ReportDocument

REPORT_KINDS = frozenset({"email", "webhook", "slack"})
"""The channel kinds a report goes to; PagerDuty pages about alerts and takes no reports."""


def _sender(channel: ChannelConfig, made: Made) -> SendOne:
    async def email(settings: Any, secrets: Mapping[str, str], progress: Progress) -> None:
        assert isinstance(settings, EmailSettings)
        message = email_message(
            made,
            sender=settings.from_address,
            recipients=settings.to,
            subject_prefix=settings.subject_prefix,
        )
        await send_message(settings, secrets, message, progress)

    async def webhook(settings: Any, secrets: Mapping[str, str], progress: Progress) -> None:
        assert isinstance(settings, WebhookSettings)
        delivery_id = uuid7_hex()
        body = webhook_payload(made, delivery_id=delivery_id, sent_at=datetime.now(UTC))
        await post_signed(
            settings, secrets, body, event="report", delivery_id=delivery_id, progress=progress
        )

    async def slack(settings: Any, secrets: Mapping[str, str], progress: Progress) -> None:
        await post_message(settings, secrets, slack_message(made), progress)

    return {"email": email, "webhook": webhook, "slack": slack}[channel.kind]


def _refused(channel: ChannelConfig, instance_id: str) -> DeliveryResult:
    """A channel of a kind that takes no reports: failed before anything is tried."""
    return DeliveryResult(
        channel_id=channel.id,
        channel_name=channel.name,
        kind=channel.kind,
        status="failed",
        attempts=0,
        started_at=datetime.now(UTC),
        duration_ms=0.0,
        fingerprint=f"report:{instance_id}",
        error=f"a {channel.kind} channel takes no reports (only {', '.join(sorted(REPORT_KINDS))})",
    )


async def send_report(
    *,
    instance_id: str,
    document: ReportDocument,
    files: Mapping[str, bytes],
    channels: Sequence[ChannelConfig],
    console_url: str,
    environ: Mapping[str, str] | None = None,
    master_key: str | None = None,
) -> list[DeliveryResult]:
    """One result per channel, in the channels' order."""
    made = Made(instance_id=instance_id, document=document, files=files, console_url=console_url)

    async def one(channel: ChannelConfig) -> DeliveryResult:
        if channel.kind not in REPORT_KINDS:
            return _refused(channel, instance_id)
        return await deliver_with(
            channel,
            _sender(channel, made),
            fingerprint=f"report:{instance_id}",
            environ=environ,
            master_key=master_key,
        )

    return list(await asyncio.gather(*(one(channel) for channel in channels)))

"""Delivering a notification to channels: each delivery bounded by its channel's deadline, every
channel at once, so a channel that hangs or fails never holds back another.

A delivery never raises: whatever happens becomes a `DeliveryResult` whose error text has every
secret of the channel masked, ready for the delivery log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec

from telemetry.alerts.attempts import DeliveryFailed, Progress
from telemetry.alerts.channel_config import ChannelConfig, SecretError, resolve_secrets
from telemetry.alerts.notification import Notification, fingerprint_of
from telemetry.alerts.scrubbing import Scrubber

logger = logging.getLogger("steerway.telemetry.alerts")

DEADLINE_GRACE_S = 0.25
"""Senders keep to the deadline themselves and say how they missed it; the cut-off after this
grace is for one that overruns anyway."""

DeliveryStatus = Literal["sent", "failed"]


class DeliveryResult(msgspec.Struct, frozen=True, kw_only=True):
    channel_id: str
    channel_name: str
    kind: str
    status: DeliveryStatus
    attempts: int
    started_at: datetime
    duration_ms: float
    fingerprint: str
    http_status: int | None = None
    """The last HTTP status received (HTTP channels)."""
    smtp_reply: str | None = None
    """The last SMTP reply (email)."""
    error: str | None = None


SendOne = Callable[[Any, Mapping[str, str], Progress], Awaitable[None]]
"""(the channel's parsed settings, its resolved secrets, progress) -> None: one message's
sending, raising `DeliveryFailed` when the channel gave up."""


async def deliver(
    channel: ChannelConfig,
    notification: Notification,
    *,
    environ: Mapping[str, str] | None = None,
    master_key: str | None = None,
) -> DeliveryResult:
    async def send(settings: Any, secrets: Mapping[str, str], progress: Progress) -> None:
        await channel.kind_spec.send(settings, secrets, notification, progress)

    return await deliver_with(
        channel,
        send,
        fingerprint=notification.fingerprint,
        environ=environ,
        master_key=master_key,
    )


async def deliver_with(
    channel: ChannelConfig,
    send: SendOne,
    *,
    fingerprint: str,
    environ: Mapping[str, str] | None = None,
    master_key: str | None = None,
) -> DeliveryResult:
    """One message to one channel by `send`, bounded by the channel's deadline, its secrets
    resolved for the sending and masked in what is reported (alerts and reports alike)."""
    started_at = datetime.now(UTC)
    start = time.monotonic()
    settings = channel.parsed_settings()
    progress = Progress(deadline=start + settings.deadline_s)
    scrub = Scrubber(())
    error: str | None = None
    try:
        secrets = resolve_secrets(channel, environ=environ, master_key=master_key)
        scrub = Scrubber(secrets.values())
        async with asyncio.timeout(settings.deadline_s + DEADLINE_GRACE_S):
            await send(settings, secrets, progress)
    except (DeliveryFailed, SecretError) as failure:
        error = str(failure)
    except TimeoutError:
        error = f"not delivered within the channel's deadline of {settings.deadline_s:g} s"
    except Exception as failure:
        error = f"unexpected {type(failure).__name__}: {failure}"
    result = DeliveryResult(
        channel_id=channel.id,
        channel_name=channel.name,
        kind=channel.kind,
        status="sent" if error is None else "failed",
        attempts=progress.attempts,
        started_at=started_at,
        duration_ms=round((time.monotonic() - start) * 1000, 3),
        fingerprint=fingerprint,
        http_status=progress.http_status,
        smtp_reply=None if progress.smtp_reply is None else scrub(progress.smtp_reply),
        error=None if error is None else scrub(error),
    )
    _log(result)
    return result


async def deliver_all(
    channels: Iterable[ChannelConfig],
    notification: Notification,
    *,
    environ: Mapping[str, str] | None = None,
    master_key: str | None = None,
) -> list[DeliveryResult]:
    """One result per channel, in the channels' order."""
    return list(
        await asyncio.gather(
            *(
                deliver(channel, notification, environ=environ, master_key=master_key)
                for channel in channels
            )
        )
    )


def sample_notification(*, workspace_id: str = "", console_url: str = "") -> Notification:
    labels = {"source": "test"}
    return Notification(
        rule_id="test",
        rule_name="Test notification",
        severity="warning",
        state="firing",
        fingerprint=fingerprint_of("test", labels),
        summary="A test from Steerway: this channel is set up and receives notifications.",
        started_at=datetime.now(UTC),
        workspace_id=workspace_id,
        labels=labels,
        value=1.0,
        threshold=1.0,
        console_url=console_url,
        test=True,
    )


async def test_message(
    channel: ChannelConfig,
    *,
    workspace_id: str = "",
    console_url: str = "",
    environ: Mapping[str, str] | None = None,
    master_key: str | None = None,
) -> DeliveryResult:
    """The console's "send a test" action: a notification marked as a test (`test: true`)."""
    notification = sample_notification(workspace_id=workspace_id, console_url=console_url)
    return await deliver(channel, notification, environ=environ, master_key=master_key)


def _log(result: DeliveryResult) -> None:
    if result.status == "sent":
        logger.info(
            "notification sent to %s channel %r in %d attempt(s), %.0f ms",
            result.kind,
            result.channel_name,
            result.attempts,
            result.duration_ms,
        )
    else:
        logger.warning(
            "notification to %s channel %r failed after %d attempt(s), %.0f ms: %s",
            result.kind,
            result.channel_name,
            result.attempts,
            result.duration_ms,
            result.error,
        )

"""Alert notifications: delivering one notification to webhook, Slack, email and PagerDuty
channels (docs/alerts.md, "Channels")."""

from telemetry.alerts.channel_config import (
    ChannelConfig,
    SecretError,
    resolve_secrets,
    seal_secrets,
)
from telemetry.alerts.delivery import DeliveryResult, deliver, deliver_all, test_message
from telemetry.alerts.notification import Notification, fingerprint_of

__all__ = [
    "ChannelConfig",
    "DeliveryResult",
    "Notification",
    "SecretError",
    "deliver",
    "deliver_all",
    "fingerprint_of",
    "resolve_secrets",
    "seal_secrets",
    "test_message",
]

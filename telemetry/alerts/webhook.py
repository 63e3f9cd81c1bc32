"""Webhook channel: the versioned JSON payload, POSTed with an HMAC-SHA256 signature."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import urlsplit

from telemetry.alerts.attempts import DeliverySettings, Progress
from telemetry.alerts.http_post import post
from telemetry.alerts.kind import ChannelKind
from telemetry.alerts.notification import Notification
from telemetry.alerts.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from telemetry.alerts.webhook_payload import PAYLOAD_VERSION, webhook_payload
from telemetry.ids import uuid7_hex


class WebhookSettings(DeliverySettings, frozen=True, kw_only=True, forbid_unknown_fields=True):
    url: str = ""
    """Where to POST; a URL that carries a token belongs in the `url` secret instead."""


async def send(
    settings: WebhookSettings,
    secrets: Mapping[str, str],
    notification: Notification,
    progress: Progress,
) -> None:
    delivery_id = uuid7_hex()
    body = webhook_payload(notification, delivery_id=delivery_id, sent_at=datetime.now(UTC))
    await post_signed(
        settings, secrets, body, event="alert", delivery_id=delivery_id, progress=progress
    )


async def post_signed(
    settings: WebhookSettings,
    secrets: Mapping[str, str],
    body: bytes,
    *,
    event: str,
    delivery_id: str,
    progress: Progress,
) -> None:
    """POST a JSON body to the channel's URL, signed afresh on each attempt; `event` is the
    `X-Steerway-Event` header (`alert`, `report`)."""
    secret = secrets["signing_secret"]

    def headers() -> dict[str, str]:
        timestamp = str(int(time.time()))
        return {
            "Content-Type": "application/json",
            "X-Steerway-Event": event,
            "X-Steerway-Payload-Version": PAYLOAD_VERSION,
            "X-Steerway-Delivery": delivery_id,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(secret, timestamp, body),
        }

    url = secrets.get("url") or settings.url
    await post(url, body, headers=headers, settings=settings, progress=progress)


def _check(settings: WebhookSettings, secret_names: frozenset[str]) -> str | None:
    if bool(settings.url) == ("url" in secret_names):
        return "give the URL once: as the setting 'url' or as the secret 'url'"
    if settings.url and urlsplit(settings.url).scheme not in {"http", "https"}:
        return "setting 'url' must be an http:// or https:// URL"
    return None


KIND = ChannelKind(
    name="webhook",
    settings_type=WebhookSettings,
    send=send,
    required_secrets=frozenset({"signing_secret"}),
    optional_secrets=frozenset({"url"}),
    check=_check,
)

"""The webhook's JSON body, version 1 (docs/alerts.md). Fields are only ever added within a
version; a change to one means a new `version`."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from telemetry.alerts.notification import Notification, Severity, State

PAYLOAD_VERSION = "1"


class WebhookAlert(msgspec.Struct, frozen=True, kw_only=True):
    rule_id: str
    rule_name: str
    severity: Severity
    state: State
    fingerprint: str
    summary: str
    labels: dict[str, str]
    value: float | None
    threshold: float | None
    unit: str
    started_at: datetime
    ended_at: datetime | None
    console_url: str


class WebhookPayload(msgspec.Struct, frozen=True, kw_only=True):
    version: str
    event: Literal["alert.firing", "alert.resolved"]
    delivery_id: str
    """The same across a delivery's retries: a receiver that saw it already can skip it."""
    sent_at: datetime
    workspace_id: str
    test: bool
    alert: WebhookAlert


def webhook_payload(notification: Notification, *, delivery_id: str, sent_at: datetime) -> bytes:
    n = notification
    payload = WebhookPayload(
        version=PAYLOAD_VERSION,
        event="alert.firing" if n.state == "firing" else "alert.resolved",
        delivery_id=delivery_id,
        sent_at=sent_at,
        workspace_id=n.workspace_id,
        test=n.test,
        alert=WebhookAlert(
            rule_id=n.rule_id,
            rule_name=n.rule_name,
            severity=n.severity,
            state=n.state,
            fingerprint=n.fingerprint,
            summary=n.summary,
            labels=dict(n.labels),
            value=n.value,
            threshold=n.threshold,
            unit=n.unit,
            started_at=n.started_at,
            ended_at=n.ended_at,
            console_url=n.console_url,
        ),
    )
    return msgspec.json.encode(payload)

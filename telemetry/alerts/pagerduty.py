"""PagerDuty channel: Events API v2, one alert per fingerprint (`dedup_key`), so a resolve
closes the incident its firing opened."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from telemetry.alerts.attempts import DeliverySettings, Progress
from telemetry.alerts.http_post import post
from telemetry.alerts.kind import ChannelKind
from telemetry.alerts.notification import Notification

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
_SUMMARY_MAX = 1024


class PagerDutySettings(DeliverySettings, frozen=True, kw_only=True, forbid_unknown_fields=True):
    events_url: str = EVENTS_URL
    source: str = "steerway"
    """The `payload.source`: where the problem is; the gateway's name, say."""
    component: str = ""
    group: str = ""


def pagerduty_event(
    settings: PagerDutySettings, routing_key: str, notification: Notification
) -> dict[str, Any]:
    n = notification
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger" if n.state == "firing" else "resolve",
        "dedup_key": n.fingerprint,
    }
    if n.state == "resolved":
        return event
    summary = f"{'[test] ' if n.test else ''}{n.rule_name}: {n.summary}"
    payload: dict[str, Any] = {
        "summary": summary if len(summary) <= _SUMMARY_MAX else summary[: _SUMMARY_MAX - 1] + "…",
        "severity": n.severity,
        "source": settings.source,
        "timestamp": msgspec.json.decode(msgspec.json.encode(n.started_at)),
        "class": n.rule_name,
        "custom_details": {
            "rule_id": n.rule_id,
            "workspace_id": n.workspace_id,
            "value": n.value,
            "threshold": n.threshold,
            "unit": n.unit,
            "labels": dict(n.labels),
            "fingerprint": n.fingerprint,
            "test": n.test,
        },
    }
    if settings.component:
        payload["component"] = settings.component
    if settings.group:
        payload["group"] = settings.group
    event["payload"] = payload
    event["client"] = "Steerway"
    if n.console_url:
        event["client_url"] = n.console_url
        event["links"] = [{"href": n.console_url, "text": "Open in Steerway"}]
    return event


async def send(
    settings: PagerDutySettings,
    secrets: Mapping[str, str],
    notification: Notification,
    progress: Progress,
) -> None:
    body = msgspec.json.encode(pagerduty_event(settings, secrets["routing_key"], notification))
    await post(
        settings.events_url,
        body,
        headers=lambda: {"Content-Type": "application/json"},
        settings=settings,
        progress=progress,
    )


KIND = ChannelKind(
    name="pagerduty",
    settings_type=PagerDutySettings,
    send=send,
    required_secrets=frozenset({"routing_key"}),
)

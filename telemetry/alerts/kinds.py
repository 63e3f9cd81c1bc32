"""The channel kinds, by name."""

from __future__ import annotations

from typing import Literal

from telemetry.alerts import pagerduty, slack, smtp, webhook
from telemetry.alerts.kind import ChannelKind

KindName = Literal["webhook", "slack", "email", "pagerduty"]

KINDS: dict[str, ChannelKind] = {
    kind.name: kind for kind in (webhook.KIND, slack.KIND, smtp.KIND, pagerduty.KIND)
}

"""What a channel kind declares: its settings, the secrets it takes, and how it sends."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from telemetry.alerts.attempts import DeliverySettings, Progress
from telemetry.alerts.notification import Notification

Send = Callable[[Any, Mapping[str, str], Notification, Progress], Awaitable[None]]
"""(the kind's settings, the resolved secrets, the notification, progress) -> None, raising
`DeliveryFailed` when the channel gave up."""


@dataclass(frozen=True)
class ChannelKind:
    name: str
    settings_type: type[DeliverySettings]
    send: Send
    required_secrets: frozenset[str] = frozenset()
    optional_secrets: frozenset[str] = frozenset()
    check: Callable[[Any, frozenset[str]], str | None] = field(default=lambda _s, _names: None)
    """A check across settings and the names of the secrets given; returns a problem or None."""

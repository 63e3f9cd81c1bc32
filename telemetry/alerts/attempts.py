"""How hard a channel tries: the settings every kind shares, the backoff between attempts, and
the record of how far a delivery got (kept outside the sender, so a delivery cut off by its
deadline still reports its attempts and last reply)."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Annotated

import msgspec

Positive = Annotated[float, msgspec.Meta(gt=0)]
NonNegative = Annotated[float, msgspec.Meta(ge=0)]


class DeliverySettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    timeout_s: Positive = 10.0
    """One attempt: connecting, sending and reading the reply."""
    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=20)] = 4
    backoff_s: NonNegative = 0.5
    """The first wait between attempts; each later one doubles, up to `backoff_max_s`."""
    backoff_max_s: NonNegative = 8.0
    retry_after_max_s: NonNegative = 30.0
    """The longest `Retry-After` honoured; a receiver asking for more ends the delivery."""
    deadline_s: Positive = 60.0
    """The whole delivery, every attempt and wait included."""


class DeliveryFailed(Exception):
    """The delivery ended without success; the message says why (and is scrubbed before it is
    shown anywhere)."""


@dataclass
class Progress:
    deadline: float
    """On the `time.monotonic()` clock."""
    attempts: int = 0
    http_status: int | None = None
    smtp_reply: str | None = None

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


def backoff_delay(settings: DeliverySettings, attempts_made: int) -> float:
    """Exponential backoff with jitter: half the step fixed, half random, so receivers that
    failed together are not retried in step."""
    step = min(settings.backoff_max_s, settings.backoff_s * 2 ** (attempts_made - 1))
    return step / 2 + random.uniform(0, step / 2)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or an HTTP date); None when absent or
    unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


async def wait_before_retry(progress: Progress, delay: float, reason: str) -> None:
    if delay >= progress.remaining():
        raise DeliveryFailed(
            f"{reason}; not retried: the next attempt would start after the delivery deadline"
        )
    await asyncio.sleep(delay)


def attempt_timeout(settings: DeliverySettings, progress: Progress) -> float:
    return max(0.001, min(settings.timeout_s, progress.remaining()))

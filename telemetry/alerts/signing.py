"""The webhook signature: HMAC-SHA256 over `<timestamp>.<body>` with the channel's secret.

The timestamp is inside the signed text so a receiver can refuse an old request replayed with
its signature; `verify` is what a receiver written in Python runs (docs/alerts.md has it).
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Steerway-Signature"
TIMESTAMP_HEADER = "X-Steerway-Timestamp"
DEFAULT_TOLERANCE_S = 300


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def verify(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    if not timestamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)

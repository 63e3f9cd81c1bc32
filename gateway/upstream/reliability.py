"""How the gateway reacts to a failed provider attempt: retry, fall back, or give up.

Connection errors, timeouts, unreadable answers, 408, 429 and 5xx are worth another attempt;
the client's own mistakes (400, 404, 422) never are. A context-window or content-filter refusal
is not retried on the same model but may send the request to a fallback model.
"""

from __future__ import annotations

import random

from gateway.config.file import CooldownConfig, RetryPolicy
from gateway.errors import GatewayError
from gateway.upstream.health import CooldownPolicy
from providers.errors import UpstreamFailure

RETRYABLE_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})
CONTEXT_WINDOW_CODES = frozenset(
    {"context_length_exceeded", "string_above_max_length", "request_too_large"}
)
CONTEXT_WINDOW_PHRASES = (
    "context length",
    "context window",
    "maximum context",
    "prompt is too long",
    "too many tokens",
    "input is too long",
    "input token count",
    "exceeds the maximum number of tokens",
)
CONTENT_FILTER_CODES = frozenset({"content_filter", "content_policy_violation"})


class AttemptFailed(Exception):
    """A provider attempt failed; `error` is what the client sees if nothing else is tried."""

    def __init__(self, failure: UpstreamFailure, error: GatewayError) -> None:
        super().__init__(failure.message)
        self.failure = failure
        self.error = error


def classify(failure: UpstreamFailure) -> str:
    """retryable | context_window | content_filter | provider (not retried, may fall back) |
    client (the request itself is at fault: neither retried nor sent elsewhere)."""
    if failure.kind != "http":
        return "retryable"
    status = failure.status or 0
    if status in RETRYABLE_STATUSES:
        return "retryable"
    code = (failure.error_code or "").lower()
    message = failure.message.lower()
    if code in CONTEXT_WINDOW_CODES or any(p in message for p in CONTEXT_WINDOW_PHRASES):
        return "context_window"
    if code in CONTENT_FILTER_CODES:
        return "content_filter"
    if status in (401, 403):
        return "provider"
    if status >= 500:
        return "retryable"
    return "client"


def fallback_trigger(kind: str) -> str | None:
    """The `fallback_on` entry that lets a failure of this kind move to a fallback model."""
    if kind in ("retryable", "provider"):
        return "error"
    if kind in ("context_window", "content_filter"):
        return kind
    return None


def counts_against_health(kind: str) -> bool:
    """Only the provider's own failures move a deployment towards a cooldown."""
    return kind in ("retryable", "provider")


def retry_delay(policy: RetryPolicy, retry: int, failure: UpstreamFailure) -> float | None:
    """Seconds to wait before retry number `retry` (0-based): exponential backoff with full
    jitter, or the provider's `retry-after(-ms)`. None when the provider asks for a longer
    wait than `max_backoff`: that deployment is then skipped rather than waited for."""
    asked = _retry_after(failure)
    if asked is not None:
        return asked if asked <= policy.max_backoff else None
    ceiling = min(policy.max_backoff, policy.backoff * (2**retry))
    return random.uniform(0, ceiling)


def _retry_after(failure: UpstreamFailure) -> float | None:
    for raw, scale in ((failure.retry_after_ms, 0.001), (failure.retry_after, 1.0)):
        if raw:
            try:
                value = float(raw) * scale
            except ValueError:
                continue
            if value >= 0:
                return value
    return None


def cooldown_policy(config: CooldownConfig) -> CooldownPolicy:
    return CooldownPolicy(failures=config.failures, window=config.window, period=config.period)
